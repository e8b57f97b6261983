package capture

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/pkg/testenv"
)

// TestKafkaOutageMidStream: while the broker refuses every produce, the
// slot is not confirmed past the first change not acked, whatever else
// (heartbeats) commits meanwhile; once the broker is back, every change
// arrives and the slot moves on.
func TestKafkaOutageMidStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var outage atomic.Bool
	testenv.RefuseProduce(t, e.kt, kerr.NotLeaderForPartition.Code, &outage)
	e.start()
	topic := e.topic(pipeline.TopicContentChanges)
	e.exec(insertContent, 800, "before", "/o0")
	e.consume(30*time.Second, atLeast(1), topic)

	outage.Store(true)
	for id := 801; id <= 850; id++ {
		e.exec(insertContent, id, "during", fmt.Sprint("/o", id))
	}
	// Several status intervals and heartbeats pass during the outage; the
	// highest LSN the slot confirmed meanwhile is kept.
	var maxConfirmed uint64
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		maxConfirmed = max(maxConfirmed, slotConfirmed(t, e.db, e.p.Capture.Slot))
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(changes(e.consume(10*time.Second, atLeast(1), topic))); n != 1 {
		t.Fatalf("%d events on the topic during the outage, want only the one before it", n)
	}
	maxConfirmed = max(maxConfirmed, slotConfirmed(t, e.db, e.p.Capture.Slot))
	outage.Store(false)

	var first *events.ContentChange
	seen := map[string]bool{}
	e.consume(60*time.Second, func(recs []record) bool {
		for _, c := range changes(recs) {
			seen[c.ContentID] = true
			if c.ContentID == "801" {
				first = c
			}
		}
		for id := 801; id <= 850; id++ {
			if !seen[fmt.Sprint(id)] {
				e.why = fmt.Sprint("row ", id, " missing")
				return false
			}
		}
		return true
	}, topic)
	// Confirming the transaction of row 801 means confirming the end of its
	// commit record, past its start (commit_lsn).
	if maxConfirmed > first.Source.CommitLSN {
		t.Fatalf("slot confirmed %X during the outage, past the commit of row 801 (%X), which was not on Kafka", maxConfirmed, first.Source.CommitLSN)
	}
	waitFor(t, 30*time.Second, "the slot to move past the outage", func() bool { return slotConfirmed(t, e.db, e.p.Capture.Slot) > first.Source.CommitLSN })
	t.Logf("during the outage the slot stayed at %X or before; row 801 committed at %X", maxConfirmed, first.Source.CommitLSN)
}
