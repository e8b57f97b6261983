package sink_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/services/metrics-sink/internal/sink"
	"github.com/freshet/freshet/services/metrics-sink/internal/sinktest"
)

// A batch is sent when the record values it took reach BatchBytes, however
// few its rows: 3,000 latency samples under a 50,000-row bound and a long
// interval go in many inserts of about BatchBytes each, and every row
// arrives once.
func TestBatchBytesBoundsABatch(t *testing.T) {
	const n = 3000
	e := newEnv(t)
	e.cfg.BatchRows = 50_000
	e.cfg.BatchInterval = 5 * time.Second
	e.cfg.BatchBytes = 16 << 10
	var recs []*kgo.Record
	total := 0
	for i := range n {
		s := sinktest.LatencySample(i)
		v, err := e.prod.Codec().EncodeEvent(context.Background(), e.topics.Latency, &s)
		if err != nil {
			t.Fatal(err)
		}
		total += len(v)
		recs = append(recs, &kgo.Record{Topic: e.topics.Latency, Key: []byte("k"), Value: v})
	}
	// Produced before the sink starts, so that its polls find far more
	// than a batch's bytes waiting.
	e.prod.Records(recs...)
	reg := prometheus.NewRegistry()
	s, err := sink.New(e.cfg, nil, sink.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sink: %v", err)
		}
		_ = s.Close(context.Background())
	}()
	sinktest.WaitRows(t, e.conn, "latency_samples", n, 60*time.Second)
	if got := e.count(t, "SELECT count() FROM latency_samples"); got != n {
		t.Fatalf("latency_samples holds %d rows; want %d", got, n)
	}
	batches := testenv.Metric(t, reg, "freshet_sink_batches_total")
	// At most BatchBytes and one record a batch, and the batch after it
	// starts where it stopped: at least total/(BatchBytes + a record).
	least := float64(total) / float64(e.cfg.BatchBytes+2*total/n)
	if batches < least {
		t.Fatalf("%d bytes in %.0f batches; with batches of at most %d bytes there are at least %.0f", total, batches, e.cfg.BatchBytes, least)
	}
	t.Logf("%d records, %d bytes, %.0f batches (bound %d bytes)", n, total, batches, e.cfg.BatchBytes)
}
