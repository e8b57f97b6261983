// Package itest holds what the invalidator's tests share: a producer of
// content changes, readers of the topics it writes, and waits on a
// consumer group's progress. Tests only.
package itest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/services/invalidator/internal/engine"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Topics are a test's topic names.
type Topics struct {
	Content, Purges, Latency string
}

// NewTopics returns kt's names of the invalidator's topics.
func NewTopics(kt testenv.KafkaTest) Topics {
	return Topics{Content: kt.Topic("content.changes"), Purges: kt.Topic("edge.purges"), Latency: kt.Topic("pipeline.latency")}
}

// Kafka is a test's client of the package's broker.
type Kafka struct {
	t     testing.TB
	Seeds []string
	Cl    *kgo.Client
	Adm   *kadm.Client
	Codec *codec.Codec
}

// NewKafka connects to kt's broker.
func NewKafka(t testing.TB, kt testenv.KafkaTest) *Kafka {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kt.Seeds...), kgo.ProducerLinger(time.Millisecond), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	c, err := codec.New()
	if err != nil {
		t.Fatal(err)
	}
	return &Kafka{t: t, Seeds: kt.Seeds, Cl: cl, Adm: kadm.NewClient(cl), Codec: c}
}

// Changes produces content changes to topic and waits for the acks. A
// change without an event id gets one from its content id and version; a
// change without a commit time is committed now.
func (k *Kafka) Changes(topic string, cs ...events.ContentChange) {
	k.t.Helper()
	rs := make([]*kgo.Record, len(cs))
	for i, c := range cs {
		if c.EventID == "" {
			c.EventID = events.ID("test-change", c.ContentID, fmt.Sprint(c.Version))
		}
		if c.Source.CommitTime.IsZero() {
			c.Source.CommitTime = time.Now()
		}
		v, err := k.Codec.EncodeEvent(context.Background(), topic, c)
		if err != nil {
			k.t.Fatal(err)
		}
		rs[i] = &kgo.Record{Topic: topic, Key: []byte(c.ContentID), Value: v}
	}
	k.Produce(rs...)
}

// Produce produces records as they are and waits for the acks.
func (k *Kafka) Produce(rs ...*kgo.Record) {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := k.Cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		k.t.Fatal(err)
	}
}

// ReadAll reads every record topic holds now.
func (k *Kafka) ReadAll(topic string) []*kgo.Record {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := k.Adm.ListEndOffsets(ctx, topic)
	if err != nil {
		k.t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if len(want) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Seeds...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		k.t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			k.t.Fatalf("read %s: %v (missing %v)", topic, ctx.Err(), want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, r)
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return out
}

// DLQ reads the dead-letter topic of topic.
func (k *Kafka) DLQ(topic string) []*kgo.Record { return k.ReadAll(kafka.DLQTopic(topic)) }

// Audits decodes edge.purges.
func (k *Kafka) Audits(topic string) []*events.PurgeAudit {
	k.t.Helper()
	var out []*events.PurgeAudit
	for _, r := range k.ReadAll(topic) {
		ev, _, err := k.Codec.DecodeTyped(context.Background(), r.Value)
		if err != nil {
			k.t.Fatal(err)
		}
		out = append(out, ev.(*events.PurgeAudit))
	}
	return out
}

// Samples decodes pipeline.latency.
func (k *Kafka) Samples(topic string) []*events.LatencySample {
	k.t.Helper()
	var out []*events.LatencySample
	for _, r := range k.ReadAll(topic) {
		ev, _, err := k.Codec.DecodeTyped(context.Background(), r.Value)
		if err != nil {
			k.t.Fatal(err)
		}
		out = append(out, ev.(*events.LatencySample))
	}
	return out
}

// CaughtUp reports whether group committed the end offset of every
// partition of topic.
func (k *Kafka) CaughtUp(group, topic string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := k.Adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return false
	}
	committed, err := k.Adm.FetchOffsets(ctx, group)
	if err != nil {
		return false
	}
	ok := true
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset == 0 {
			return
		}
		c, found := committed.Lookup(topic, o.Partition)
		if !found || c.At < o.Offset {
			ok = false
		}
	})
	return ok
}

// Eventually polls cond every 20ms until it holds or timeout passes, then
// fails with what(): the test's view of what is missing.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not after %s: %s", timeout, what())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Header returns the value of header key of r.
func Header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// StartEngine runs an engine with cfg (its registry of its own) until the
// test ends, and waits until it is ready.
func StartEngine(t testing.TB, cfg engine.Config) *engine.Engine {
	t.Helper()
	eng, _ := startEngine(t, cfg)
	return eng
}

// StartEngineStoppable is StartEngine, and returns a function that stops
// the engine gracefully before the test ends (safe to call twice).
func StartEngineStoppable(t testing.TB, cfg engine.Config) (stop func()) {
	t.Helper()
	_, stop = startEngine(t, cfg)
	return stop
}

func startEngine(t testing.TB, cfg engine.Config) (*engine.Engine, func()) {
	t.Helper()
	eng, err := engine.New(cfg, nil, engine.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := eng.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			_ = eng.Close(context.Background())
		})
	}
	t.Cleanup(stop)
	Eventually(t, 30*time.Second, func() bool { return eng.Ready() == nil }, func() string { return fmt.Sprint(eng.Ready()) })
	return eng, stop
}
