package capture

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/pipeline"
)

// TestRestartAfterAckBeforeConfirm stops the capture where a crash between
// Kafka's acks and the slot's confirmation would: after a few confirmed
// transactions, every event of the first run is on Kafka, the slot still
// before all of them, and the last transaction only half produced (three of
// its six rows never sent). The next run streams all of it again and must
// produce exactly the three missing events: each event id once on the
// topics, and nothing lost. It reads back two records at a time, so that the
// read-back takes several chunks and stops at the confirmed ones.
func TestRestartAfterAckBeforeConfirm(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	content, profiles := e.topic(pipeline.TopicContentChanges), e.topic(pipeline.TopicUserProfiles)
	dropped := map[string]bool{"2001": true, "2003": true, "2005": true}
	e.setup = func(c *Capture) {
		c.hooks.drop = func(r *kgo.Record) bool { return r.Topic == content && dropped[string(r.Key)] }
	}
	c := e.start()
	e.exec(`INSERT INTO content (id, title, url) OVERRIDING SYSTEM VALUE SELECT g, 'confirmed', '/c' || g FROM generate_series(900, 905) g`)
	e.exec(`UPDATE content SET title = 'confirmed 2' WHERE id >= 900`)
	const confirmed = 12
	old := changes(e.consume(30*time.Second, atLeast(confirmed), content))
	waitFor(t, 30*time.Second, "the slot to confirm the first rows", func() bool {
		return slotConfirmed(t, e.db, e.p.Capture.Slot) > old[len(old)-1].Source.CommitLSN
	})
	c.hooks.holdConfirm.Store(true)

	e.exec(insertContent, 1001, "a", "/r1")
	e.exec(`INSERT INTO content (id, title, url) OVERRIDING SYSTEM VALUE SELECT g, 'multi', '/m' || g FROM generate_series(1002, 1004) g`)
	e.exec(`UPDATE content SET title = 'a2' WHERE id = 1001`)
	e.exec(`DELETE FROM content WHERE id = 1002`)
	e.exec(`BEGIN; UPDATE content SET title = 'with outbox' WHERE id = 1003;
		SELECT pg_logical_emit_message(true, 'freshet.outbox', '{"op":"update","content_id":"ob1","title":"outbox","event_id":"ob-1"}'); COMMIT`)
	e.exec(`INSERT INTO user_profiles (user_id, locale) VALUES ('r1', 'en')`)
	e.exec(`DELETE FROM user_profiles WHERE user_id = 'r1'`) // a deleted profile and a tombstone
	e.exec(`TRUNCATE content`)
	e.exec(`INSERT INTO content (id, title, url) OVERRIDING SYSTEM VALUE SELECT g, 'partial', '/p' || g FROM generate_series(2000, 2005) g`)

	// 1 + 3 + 1 + 1 + 2 + 1 (truncate) + 3 of 6; profiles: 1 + 2.
	const firstContent, firstProfiles = 12, 3
	var first *events.ContentChange
	e.consume(30*time.Second, func(recs []record) bool {
		for _, c := range changes(recs) {
			if c.ContentID == "1001" && first == nil {
				first = c
			}
		}
		return len(recs) >= confirmed+firstContent
	}, content)
	e.consume(30*time.Second, atLeast(firstProfiles), profiles)
	e.stop()
	if at := slotConfirmed(t, e.db, e.p.Capture.Slot); at > first.Source.CommitLSN {
		t.Fatalf("the slot is at %X, past the first held transaction (%X): the test needs it before", at, first.Source.CommitLSN)
	}

	e.setup = func(c *Capture) { c.hooks.readBackChunk = 2 }
	e.start()
	e.exec(insertContent, 3000, "marker", "/marker")
	var marker *events.ContentChange
	e.consume(30*time.Second, func(recs []record) bool {
		for _, c := range changes(recs) {
			if c.ContentID == "3000" {
				marker = c
				return true
			}
		}
		return false
	}, content)
	// Once the slot is past the marker, everything streamed before it is
	// acked: the topics hold all they will.
	waitFor(t, 30*time.Second, "the slot to confirm the marker", func() bool { return slotConfirmed(t, e.db, e.p.Capture.Slot) > marker.Source.CommitLSN })

	recs := e.consume(30*time.Second, atLeast(int(endOffsets(t, e, content, profiles))), content, profiles)
	ids := map[string]int{}
	tombstones := map[string]int{}
	keys := map[string]bool{}
	for _, r := range recs {
		if r.Value == nil {
			tombstones[r.Key]++
			continue
		}
		ids[r.Event.ID()]++
		keys[r.Key] = true
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("event %s is %d times on the topics, want once", id, n)
		}
	}
	if tombstones["r1"] != 1 {
		t.Errorf("%d tombstones of r1, want 1", tombstones["r1"])
	}
	for _, k := range []string{"900", "905", "1001", "1002", "1003", "1004", "ob1", "", "r1", "2000", "2001", "2002", "2003", "2004", "2005", "3000"} {
		if !keys[k] {
			t.Errorf("no event of key %q: lost", k)
		}
	}
	if want := confirmed + firstContent + 3 + 1 + firstProfiles; len(recs) != want {
		t.Errorf("%d records on the topics, want %d (the first run's, the 3 it never sent, the marker)", len(recs), want)
	}
	if n := testutil.ToFloat64(e.metrics.ReplaySkipped); n != firstContent+firstProfiles {
		t.Errorf("%v events skipped as already on Kafka, want %d", n, firstContent+firstProfiles)
	}
	t.Logf("%d records, %d event ids; the restart skipped %v", len(recs), len(ids), testutil.ToFloat64(e.metrics.ReplaySkipped))
}

// endOffsets returns the sum of the end offsets of topics.
func endOffsets(t *testing.T, e *testEnv, topics ...string) int64 {
	t.Helper()
	ends, err := kadm.NewClient(e.client).ListEndOffsets(context.Background(), topics...)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	if n == 0 {
		t.Fatalf("no records on %v", topics)
	}
	return n
}
