package capture

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/pkg/testenv"
)

// repoFile returns the path of a file of the repository.
func repoFile(t testing.TB, rel string) string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "../../../..", rel)
}

// testEnv is one test's database, topics, pipeline and capture.
type testEnv struct {
	t       testing.TB
	dsn     string
	db      *pgx.Conn
	p       *pipeline.Pipeline
	kt      testenv.KafkaTest
	client  *kgo.Client
	codec   *codec.Codec
	metrics *Metrics
	cap     *Capture
	stop    func()
	why     string // what consume's want func last missed
	observe func(time.Duration)
	latency *LatencySampler // when set, given to the capture
	log     *zap.Logger     // when set, the capture's logger
	setup   func(*Capture)  // when set, called before the capture runs
}

// newEnv makes a database holding the example tables, a pipeline whose
// topics, slot and publication are the test's own, and creates the topics.
// edit may change the pipeline before use.
func newEnv(t testing.TB, edit func(p *pipeline.Pipeline)) *testEnv {
	t.Helper()
	ctx := context.Background()
	e := &testEnv{t: t, dsn: testenv.Postgres(t), kt: testenv.Kafka(t)}
	var err error
	if e.db, err = pgx.Connect(ctx, e.dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close(context.Background()) })
	schema, err := os.ReadFile(repoFile(t, "pipelines/freshet.sql"))
	if err != nil {
		t.Fatal(err)
	}
	e.exec(string(schema))
	if e.p, err = pipeline.Load(repoFile(t, "pipelines/freshet.yaml")); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(t.Name()))
	name := "t" + hex.EncodeToString(sum[:6])
	e.p.Capture.Slot, e.p.Capture.Publication = name, name
	e.p.Capture.Heartbeat = 200 * time.Millisecond
	e.p.Capture.Snapshot.Mode = pipeline.SnapshotNever
	for i := range e.p.Capture.Tables {
		e.p.Capture.Tables[i].Topic = e.kt.Topic(e.p.Capture.Tables[i].Topic)
	}
	e.p.Capture.Outbox.Topic = e.kt.Topic(e.p.Capture.Outbox.Topic)
	if edit != nil {
		edit(e.p)
	}
	if e.client, err = kafka.NewClient(kafka.Config{Brokers: e.kt.Seeds}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.client.Close)
	var specs []kafka.TopicSpec
	for _, topic := range []string{e.topic(pipeline.TopicContentChanges), e.topic(pipeline.TopicUserProfiles)} {
		s := kafka.TopicSpec{Name: topic, Partitions: 3}
		specs = append(specs, s, s.DLQ())
	}
	if _, err := kafka.EnsureTopics(ctx, kadm.NewClient(e.client), specs...); err != nil {
		t.Fatal(err)
	}
	if e.codec, err = codec.New(); err != nil {
		t.Fatal(err)
	}
	return e
}

// reconnect replaces the test's connection, after a restart of the server
// broke it.
func (e *testEnv) reconnect() {
	e.t.Helper()
	e.db.Close(context.Background())
	var err error
	if e.db, err = pgx.Connect(context.Background(), e.dsn); err != nil {
		e.t.Fatal(err)
	}
}

func (e *testEnv) topic(name string) string { return e.kt.Topic(name) }

func (e *testEnv) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.db.Exec(context.Background(), sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}

// start runs a capture until the test ends, and waits until it streams.
func (e *testEnv) start() *Capture {
	e.t.Helper()
	e.metrics = NewMetrics(prometheus.NewRegistry())
	log := e.log
	if log == nil {
		log = zaptest.NewLogger(e.t).Named("capture")
	}
	c, err := New(Options{DSN: e.dsn, Pipeline: e.p, Client: e.client, Codec: e.codec, Metrics: e.metrics, Latency: e.latency,
		StatusInterval: 100 * time.Millisecond, TableWait: 100 * time.Millisecond, AckObserver: e.observe}, log)
	if err != nil {
		e.t.Fatal(err)
	}
	if e.setup != nil {
		e.setup(c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	e.cap = c
	e.stop = func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("Run: %v", err)
		}
		e.stop = func() {}
	}
	e.t.Cleanup(func() { e.stop() })
	waitFor(e.t, 30*time.Second, "capture to stream", func() bool { return c.Ready() == nil })
	return c
}

func waitFor(t testing.TB, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// record is a consumed record, decoded.
type record struct {
	Topic     string
	Partition int32
	Key       string
	Value     []byte
	Event     events.Event // nil for a tombstone or a DLQ record
	Headers   map[string]string
}

// consume reads topics from the start until want(records) is true, or fails
// the test after d.
func (e *testEnv) consume(d time.Duration, want func([]record) bool, topics ...string) []record {
	e.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kt.Seeds...), kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var out []record
	for !want(out) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			e.t.Fatalf("consumed %d records in %s without what the test waits for %s", len(out), d, e.why)
		}
		fs.EachRecord(func(r *kgo.Record) {
			rec := record{Topic: r.Topic, Partition: r.Partition, Key: string(r.Key), Value: r.Value, Headers: map[string]string{}}
			for _, h := range r.Headers {
				rec.Headers[h.Key] = string(h.Value)
			}
			if r.Value != nil && len(r.Headers) == 0 {
				ev, _, err := e.codec.DecodeEvent(ctx, r.Value)
				if err != nil {
					e.t.Fatalf("decode record of %s: %v", r.Topic, err)
				}
				rec.Event = ev
			}
			out = append(out, rec)
		})
	}
	return out
}

// atLeast is a want func for consume: at least n records.
func atLeast(n int) func([]record) bool { return func(r []record) bool { return len(r) >= n } }

func changes(recs []record) []*events.ContentChange {
	var out []*events.ContentChange
	for _, r := range recs {
		if c, ok := r.Event.(*events.ContentChange); ok {
			out = append(out, c)
		}
	}
	return out
}

func testLogger(t testing.TB) *zap.Logger { return zaptest.NewLogger(t) }
