package capture

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/pipeline"
)

// refuseProduce makes the broker refuse (with a retriable error) the
// produce requests to the test's topics while on is true.
func refuseProduce(e *testEnv, on *atomic.Bool) {
	// Recent produce requests name topics by id: learn the test's.
	details, err := kadm.NewClient(e.client).ListTopics(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	ids := map[[16]byte]bool{}
	for name, d := range details {
		if strings.HasPrefix(name, e.kt.Prefix+".") {
			ids[d.ID] = true
		}
	}
	cl := e.kt.Cluster
	cl.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		pr := req.(*kmsg.ProduceRequest)
		ours := false
		for _, t := range pr.Topics {
			ours = ours || strings.HasPrefix(t.Topic, e.kt.Prefix+".") || ids[t.TopicID]
		}
		if !ours || !on.Load() {
			return nil, nil, false // handled by the broker as usual
		}
		cl.KeepControl()
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, t := range pr.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = kerr.NotLeaderForPartition.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
}

// TestKafkaOutageMidStream: while the broker refuses every produce, the
// slot is not confirmed past the first change not acked, whatever else
// (heartbeats) commits meanwhile; once the broker is back, every change
// arrives and the slot moves on.
func TestKafkaOutageMidStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var outage atomic.Bool
	refuseProduce(e, &outage)
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
