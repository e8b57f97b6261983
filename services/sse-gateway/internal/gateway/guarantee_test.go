package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/freshet/freshet/pkg/kafka"
)

// The guarantee: deliveries produced while the gateway is killed mid-stream
// (connections cut without a word) and while a graceful shutdown tells the
// client to reconnect, all reach the client, once each, in order, through
// whichever replica it comes back to.
func TestEveryDeliveryArrivesAcrossKillAndShutdown(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.Gateway.History = 8 // small: part of the resume comes from Kafka
	tok := e.token("hana", time.Hour, "breaking")

	const total = 300
	var wantUser, wantChannel []string
	var mu sync.Mutex
	produced := make(chan struct{})
	var step sync.WaitGroup
	step.Add(1)
	// The client is there before the first delivery: a new stream starts at
	// the present, so what came before it is not its to get.
	a := e.start(cfg)
	s := e.subscribe(a.Gateway, streamURL(a.Gateway, tok, "breaking"), nil)
	s.waitFor(t, "ready", func(r []received) bool { return countType(r, "ready") == 1 })
	go func() { // a steady stream of deliveries for hana and her channel
		defer close(produced)
		for i := range total {
			to := "u:hana"
			if i%3 == 0 {
				to = "c:breaking"
			}
			ids := e.produce(mkDelivery(to, fmt.Sprintf("item%d", i%17), i))
			mu.Lock()
			if to == "u:hana" {
				wantUser = append(wantUser, ids...)
			} else {
				wantChannel = append(wantChannel, ids...)
			}
			mu.Unlock()
			if i == total/3 {
				step.Done()
			}
			time.Sleep(time.Millisecond)
		}
	}()

	step.Wait()
	s.waitFor(t, "some deliveries", hasDeliveries(10))
	a.Close(context.Background()) // kill: sockets closed, no last event
	<-s.done
	s.done <- nil
	a.cancel()

	b := e.start(cfg)
	s2 := e.subscribe(b.Gateway, streamURL(b.Gateway, tok, "breaking"), s.client)
	s2.waitFor(t, "deliveries after the kill", hasDeliveries(10))
	b.stop(t) // graceful: "reconnect", then closed
	<-s2.done
	s2.done <- nil
	if ev := s2.events(); ev[len(ev)-1].Type != "reconnect" || !strings.Contains(ev[len(ev)-1].Data, "shutdown") {
		t.Fatalf("the last event before a shutdown is %+v, want reconnect (shutdown)", ev[len(ev)-1])
	}

	<-produced
	c := e.start(cfg)
	s3 := e.subscribe(c.Gateway, streamURL(c.Gateway, tok, "breaking"), s.client)
	s3.waitFor(t, "the rest", func([]received) bool {
		return len(s.deliveries())+len(s2.deliveries())+len(s3.deliveries()) >= total
	})
	time.Sleep(200 * time.Millisecond)
	all := append(append(s.deliveries(), s2.deliveries()...), s3.deliveries()...)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("deliveries: %d before the kill, %d before the shutdown, %d after", len(s.deliveries()), len(s2.deliveries()), len(s3.deliveries()))
	wantPerRecipient(t, all, wantUser, wantChannel)
}

// When retention removed part of what a client missed, it gets a "missed"
// event naming the lost offsets, then everything still retained.
func TestStreamMissedAfterRetention(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.Gateway.History = 1
	g := e.start(cfg)
	tok := e.token("ivan", time.Hour)

	s := e.subscribe(g.Gateway, streamURL(g.Gateway, tok), nil)
	s.waitFor(t, "ready", func(r []received) bool { return countType(r, "ready") == 1 })
	first := e.produce(mkDelivery("u:ivan", "x", 0))
	s.waitFor(t, "1 delivery", hasDeliveries(1))
	wantIDs(t, s.deliveries(), first)
	s.close()

	var ids []string
	for i := 1; i <= 6; i++ {
		ids = append(ids, e.produce(mkDelivery("u:ivan", "x", i))...)
	}
	// Retention: remove everything before the last 3 records of ivan's partition.
	p := g.partition("ivan")
	adm := kadm.NewClient(e.producer)
	ends, err := adm.ListEndOffsets(context.Background(), e.deliveries)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(e.deliveries, p)
	waitConsumed(t, g.Gateway, p, end.Offset) // so that the history is what the test expects
	o := kadm.Offsets{}
	o.Add(kadm.Offset{Topic: e.deliveries, Partition: p, At: end.Offset - 3})
	if _, err := adm.DeleteRecords(context.Background(), o); err != nil {
		t.Fatal(err)
	}

	s2 := e.subscribe(g.Gateway, streamURL(g.Gateway, tok), s.client)
	got := s2.waitFor(t, "missed and 3 deliveries", hasDeliveries(3))
	time.Sleep(100 * time.Millisecond)
	got = s2.events()
	if got[0].Type != "ready" || got[1].Type != "missed" || !strings.Contains(got[1].Data, `"reason":"retention"`) {
		t.Fatalf("second event %+v, want missed", got[1])
	}
	wantIDs(t, s2.deliveries(), ids[3:])
}

// A record that does not decode goes to the dead letter topic with the
// reason, and the streams go on.
func TestUndecodableRecordToDLQ(t *testing.T) {
	e := newEnv(t)
	g := e.start(e.config())
	tok := e.token("jo", time.Hour)
	s := e.subscribe(g.Gateway, streamURL(g.Gateway, tok), nil)
	s.waitFor(t, "ready", func(r []received) bool { return countType(r, "ready") == 1 })

	bad := &kgo.Record{Topic: e.deliveries, Key: []byte("jo"), Value: []byte("not avro")}
	if err := e.producer.ProduceSync(context.Background(), bad).FirstErr(); err != nil {
		t.Fatal(err)
	}
	good := e.produce(mkDelivery("u:jo", "y", 1))
	s.waitFor(t, "the good delivery", hasDeliveries(1))
	wantIDs(t, s.deliveries(), good)

	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kt.Seeds...), kgo.ConsumeTopics(kafka.DLQTopic(e.deliveries)), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fs := cl.PollFetches(ctx)
	recs := fs.Records()
	if len(recs) != 1 || string(recs[0].Value) != "not avro" {
		t.Fatalf("dead letters: %d records (%v)", len(recs), fs.Errors())
	}
	var reason string
	for _, h := range recs[0].Headers {
		if h.Key == kafka.HeaderError {
			reason = string(h.Value)
		}
	}
	if reason == "" {
		t.Fatal("the dead letter has no error header")
	}
}

// waitConsumed waits until g's consumer is past offset end-1 of partition p.
func waitConsumed(t *testing.T, g *Gateway, p int32, end int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h := g.hub.Load()
		h.mu.Lock()
		next := h.parts[p].next
		h.mu.Unlock()
		if next >= end {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the consumer is at %d of partition %d, want %d", next, p, end)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Partitions added to content.deliveries while a replica runs: it cannot
// serve them (a user's partition may have moved), so it shuts down like on
// SIGTERM (streams are told to reconnect) and Run returns
// ErrPartitionsChanged, for the process to exit and be restarted.
func TestPartitionsAddedStopTheReplica(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.Gateway.PartitionCheck = 100 * time.Millisecond
	g := e.start(cfg)
	s := e.subscribe(g.Gateway, streamURL(g.Gateway, e.token("alice", time.Hour)), nil)
	s.waitFor(t, "ready", func(r []received) bool { return countType(r, "ready") == 1 })
	select {
	case <-g.done:
		t.Fatalf("Run returned with the partitions unchanged: %v", g.err)
	case <-time.After(500 * time.Millisecond): // a few checks
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kt.Seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreatePartitions(context.Background(), 2, e.deliveries)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("add partitions: %v", err)
	}
	select {
	case <-g.done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of partitions being added")
	}
	if !errors.Is(g.err, ErrPartitionsChanged) {
		t.Fatalf("Run returned %v, want ErrPartitionsChanged", g.err)
	}
	g.err = nil // checked: the cleanup's stop expects nil
	got := s.waitFor(t, "the reconnect event", func(r []received) bool { return countType(r, "reconnect") == 1 })
	if last := got[len(got)-1]; last.Type != "reconnect" || !strings.Contains(last.Data, "shutdown") {
		t.Fatalf("the last event is %+v, want reconnect (shutdown)", last)
	}
}

// While the broker drops every fetch for a few seconds (a Kafka outage as
// the consumer sees it: each fetch's connection is closed), open streams
// stay open; once it is back, the deliveries produced meanwhile reach the
// client in order, once each, with no reconnect.
func TestBrokerOutageMidStream(t *testing.T) {
	e := newEnv(t)
	g := e.start(e.config())
	s := e.subscribe(g.Gateway, streamURL(g.Gateway, e.token("alice", time.Hour)), nil)
	s.waitFor(t, "ready", func(r []received) bool { return countType(r, "ready") == 1 })
	var want []string
	for i := range 3 {
		want = append(want, e.produce(mkDelivery("u:alice", fmt.Sprintf("a%d", i), i))...)
	}
	s.waitFor(t, "3 deliveries", hasDeliveries(3))

	var outage, done atomic.Bool
	var dropped atomic.Int64
	t.Cleanup(func() { done.Store(true) })
	cl := e.kt.Cluster
	cl.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		if done.Load() {
			cl.DropControl()
			return nil, nil, false
		}
		if !outage.Load() {
			return nil, nil, false
		}
		cl.KeepControl()
		dropped.Add(1)
		return nil, errors.New("test: broker outage"), true // closes the connection
	})
	outage.Store(true)
	for i := 3; i < 8; i++ {
		want = append(want, e.produce(mkDelivery("u:alice", fmt.Sprintf("a%d", i), i))...)
		time.Sleep(600 * time.Millisecond)
	}
	outage.Store(false)
	if dropped.Load() == 0 {
		t.Fatal("no fetch was dropped: there was no outage")
	}
	s.waitFor(t, "the deliveries of the outage", hasDeliveries(8))
	time.Sleep(200 * time.Millisecond) // a duplicate would show up by now
	wantIDs(t, s.deliveries(), want)
	if n := countType(s.events(), "reconnect"); n != 0 {
		t.Errorf("the stream was told to reconnect %d times", n)
	}
	t.Logf("%d fetches dropped during the outage", dropped.Load())
}
