package sink_test

import (
	"context"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/services/metrics-sink/internal/sink"
	"github.com/freshet/freshet/services/metrics-sink/internal/sinktest"
)

// A sink that reads again rows an earlier instance stored without
// committing, in batches smaller than what was stored (a kill between
// insert and commit with two batches in flight, then a restart with
// smaller batches), stores each row once: the first check of a partition
// must cover every stored offset past the batch, not only the batch's
// range.
func TestRereadInSmallerBatchesStoresOnce(t *testing.T) {
	const n = 300
	e := newEnv(t)
	evs := make([]events.Event, n)
	for i := range evs {
		evs[i] = sinktest.LatencySample(i)
	}
	e.prod.Events(evs...)

	// The earlier instance: everything stored in one batch.
	first, err := sink.New(e.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	sinktest.WaitRows(t, e.conn, "latency_samples", n, 60*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_ = first.Close(context.Background())

	// The next one finds nothing committed (a group of its own) and reads
	// every record again, ten at a time.
	e.cfg.Group = e.kt.Group("again")
	e.cfg.BatchRows = 10
	e.start(t)
	deadline := time.Now().Add(60 * time.Second)
	for committedRecords(e.kt.Seeds, e.cfg.Group) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the second sink committed %d of %d records within 60s", committedRecords(e.kt.Seeds, e.cfg.Group), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := e.count(t, "SELECT count() FROM latency_samples"); got != n {
		t.Fatalf("latency_samples holds %d rows after the second sink read every record again; want %d", got, n)
	}
}

// committedRecords sums the offsets group committed (0 while the group
// does not exist yet).
func committedRecords(seeds []string, group string) int64 {
	n, _ := sinktest.Committed(seeds, group)
	return n
}
