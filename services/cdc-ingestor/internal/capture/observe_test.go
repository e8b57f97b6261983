package capture

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/pipeline"
)

// Commit-to-ack samples reach pipeline.latency, naming the event measured.
func TestLatencySamples(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	topic := e.topic(pipeline.TopicPipelineLatency)
	if _, err := kafka.EnsureTopics(context.Background(), kadm.NewClient(e.client), kafka.TopicSpec{Name: topic, Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	e.latency = NewLatencySampler(e.client, e.codec, topic, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.latency.Run(ctx) }()
	defer func() { cancel(); <-done }()
	e.start()
	e.exec(insertContent, 100, "x", "/l")
	change := changes(e.consume(30*time.Second, atLeast(1), e.topic(pipeline.TopicContentChanges)))[0]
	recs := e.consume(30*time.Second, atLeast(1), topic)
	ls, ok := recs[0].Event.(*events.LatencySample)
	if !ok {
		t.Fatalf("record on %s is %T", topic, recs[0].Event)
	}
	if ls.SubjectEventID != change.EventID || ls.Stage != "commit_to_ack" || ls.Service != "cdc-ingestor" || ls.Duration <= 0 || ls.Duration > time.Minute {
		t.Fatalf("sample = %+v; want commit_to_ack of %s", ls, change.EventID)
	}
	if ls.EventID != events.ID(change.EventID, "cdc-ingestor", "commit_to_ack") {
		t.Fatalf("sample id %s is not deterministic", ls.EventID)
	}
	if n := testutil.CollectAndCount(e.metrics.CommitToAck); n != 1 {
		t.Fatalf("commit_to_ack histogram: %d series", n)
	}
}

// The slot's lag is a metric, and past capture.slot_lag_warning a warning.
func TestSlotLagWarning(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(p *pipeline.Pipeline) { p.Capture.SlotLagWarning = 1 })
	core, logs := observer.New(zapcore.InfoLevel)
	e.log = zap.New(core)
	e.start()
	e.exec(insertContent, 100, "x", "/w")
	waitFor(t, 20*time.Second, "the slot lag warning", func() bool {
		return logs.FilterMessageSnippet("slot lag is past").Len() > 0
	})
	entry := logs.FilterMessageSnippet("slot lag is past").All()[0]
	if entry.ContextMap()["lag_bytes"].(int64) < 1 {
		t.Fatalf("warning fields = %v", entry.ContextMap())
	}
	waitFor(t, 20*time.Second, "the lag metric", func() bool { return testutil.ToFloat64(e.metrics.SlotLag) > 0 })
}
