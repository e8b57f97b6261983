package gateway

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/pkg/events"
)

// The personalizer writes deliveries in Kafka transactions: deliveries of an
// aborted transaction never reach a stream, live or on a resume from Kafka
// across the transaction markers.
func TestTransactionalDeliveries(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.Gateway.History = 1 // the resume below reads Kafka
	g := e.start(cfg)
	tok := e.token("quinn", time.Hour)

	txn, err := kgo.NewClient(kgo.SeedBrokers(e.kt.Seeds...), kgo.TransactionalID(e.kt.Group("personalizer")))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	ctx := context.Background()
	write := func(commit bool, ds ...*events.Delivery) []string {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, d := range ds {
			v, err := e.codec.EncodeEvent(ctx, e.deliveries, d)
			if err != nil {
				t.Fatal(err)
			}
			txn.Produce(ctx, &kgo.Record{Topic: e.deliveries, Key: []byte(d.UserID), Value: v}, nil)
			ids = append(ids, d.EventID)
		}
		if err := txn.Flush(ctx); err != nil { // before ending, or an abort drops buffered records
			t.Fatal(err)
		}
		if err := txn.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	batch := func(from int) []*events.Delivery {
		return []*events.Delivery{mkDelivery("u:quinn", fmt.Sprintf("q%d", from), from), mkDelivery("u:quinn", fmt.Sprintf("q%d", from+1), from+1)}
	}

	s := e.subscribe(g.Gateway, streamURL(g.Gateway, tok), nil)
	s.waitFor(t, "ready", func(r []received) bool { return countType(r, "ready") == 1 })
	want := write(true, batch(0)...)
	write(false, batch(2)...)
	want = append(want, write(true, batch(4)...)...)
	s.waitFor(t, "the committed deliveries", hasDeliveries(4))
	time.Sleep(200 * time.Millisecond)
	wantIDs(t, s.deliveries(), want)
	s.close()

	// Resume from the first cursor, with the history gone: from Kafka.
	first := ""
	for _, r := range s.events() {
		if r.Type == "delivery" {
			first = r.ID
			break
		}
	}
	write(false, batch(6)...)
	more := write(true, batch(8)...)
	s.client.LastEventID.Store([]byte(first))
	s2 := e.subscribe(g.Gateway, streamURL(g.Gateway, tok), s.client)
	s2.waitFor(t, "the rest", hasDeliveries(len(want)-1+len(more)))
	time.Sleep(200 * time.Millisecond)
	wantIDs(t, s2.deliveries(), append(want[1:], more...))
	if n := counterValue(t, g.metrics.resumes.WithLabelValues("kafka")); n != 1 {
		t.Fatalf("resumes from Kafka: %v, want 1", n)
	}
}
