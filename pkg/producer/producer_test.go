package producer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.NeedKafka) }

func TestProduce(t *testing.T) {
	ctx := context.Background()
	kt := testenv.Kafka(t)
	cl, err := kafka.NewClient(kafka.Config{Brokers: kt.Seeds}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topic := kt.Topic("content.changes")
	if _, err := kafka.EnsureTopics(ctx, kadm.NewClient(cl), kafka.TopicSpec{Name: topic, Partitions: 3}); err != nil {
		t.Fatal(err)
	}
	c, err := codec.New()
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(cl, c, Options{App: "cms", Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	id, err := p.Produce(ctx, "k1", events.ContentChange{Op: events.OpUpdate, ContentID: "42", Title: "Hello", Tags: []string{"go"}})
	if err != nil {
		t.Fatal(err)
	}
	if id != events.ID("producer", "cms", "k1") {
		t.Fatalf("id %s is not derived from the idempotency key", id)
	}
	again, _ := p.Produce(ctx, "k1", events.ContentChange{Op: events.OpUpdate, ContentID: "42", Title: "Hello"})
	if again != id {
		t.Fatalf("the same idempotency key gave ids %s and %s", id, again)
	}
	for name, ev := range map[string]events.ContentChange{
		"no content id": {Op: events.OpCreate},
		"truncate":      {Op: events.OpTruncate, ContentID: "1"},
	} {
		if _, err := p.Produce(ctx, "k2", ev); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: error %v, want ErrInvalid", name, err)
		}
	}
	if _, err := p.Produce(ctx, "", events.ContentChange{Op: events.OpCreate, ContentID: "1"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("no idempotency key: error %v, want ErrInvalid", err)
	}

	consumer, err := kgo.NewClient(kgo.SeedBrokers(kt.Seeds...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var got []*events.ContentChange
	for len(got) < 2 {
		fs := consumer.PollFetches(cctx)
		if cctx.Err() != nil {
			t.Fatalf("%d records on the topic, want 2", len(got))
		}
		fs.EachRecord(func(r *kgo.Record) {
			ev, _, err := c.DecodeEvent(cctx, r.Value)
			if err != nil {
				t.Fatal(err)
			}
			ch := ev.(*events.ContentChange)
			if string(r.Key) != "42" || ch.Source.Origin != events.OriginProducer || ch.Source.DB != "cms" || ch.EventID != id {
				t.Fatalf("record key %q, event %+v", r.Key, ch)
			}
			got = append(got, ch)
		})
	}
}
