package app

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/testenv"
)

// TestKillNineMidSnapshot kills the ingestor with SIGKILL while it
// snapshots a 20,000-row table (chunks of 500) and a writer changes it,
// starts it again, and checks that the topic ends with every row's latest
// state: the snapshot resumes from its last acked chunk.
func TestKillNineMidSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the ingestor as a process against real Postgres")
	}
	ctx := context.Background()
	s := newStackWith(t, "mode: initial", "chunk_size: 500")
	db, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	const rows = 20000
	if _, err := db.Exec(ctx, `INSERT INTO content (id, title, url) OVERRIDING SYSTEM VALUE SELECT g, 'seed', '/s/' || g FROM generate_series(1000, 999 + $1::int) g`, rows); err != nil {
		t.Fatal(err)
	}
	progress := func() (done bool, n int64) {
		_ = db.QueryRow(ctx, "SELECT coalesce(bool_and(done), false), coalesce(sum(rows), 0) FROM freshet_cdc.snapshots WHERE slot = $1", s.slot).Scan(&done, &n)
		return done, n
	}
	s.start()
	waitProgress := func(rows int64) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			if _, n := progress(); n >= rows {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the snapshot did not reach %d rows", rows)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitProgress(1000)
	// Changes while the snapshot runs, and while the ingestor is down.
	if _, err := db.Exec(ctx, `UPDATE content SET title = 'changed' WHERE id % 97 = 0`); err != nil {
		t.Fatal(err)
	}
	// Hold the snapshot between two chunks, so that the kill lands in its
	// middle however fast the machine: a lock on the table stops the next
	// chunk's read until the lock's transaction ends, after the kill.
	release := testenv.HoldTable(t, s.dsn, "content", func() bool { _, n := progress(); return n >= 2000 })
	s.kill9()
	done, n := progress()
	if done {
		t.Fatalf("the snapshot finished (%d rows) while its table was locked", n)
	}
	t.Logf("killed after %d snapshot rows", n)
	release()
	if _, err := db.Exec(ctx, `DELETE FROM content WHERE id % 101 = 0`); err != nil {
		t.Fatal(err)
	}
	s.start()
	deadline := time.Now().Add(120 * time.Second)
	for {
		if done, _ := progress(); done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the snapshot did not finish after the restart")
		}
		time.Sleep(50 * time.Millisecond)
	}

	want := map[string]string{}
	rs, err := db.Query(ctx, "SELECT id::text, title FROM content")
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var id, title string
		if err := rs.Scan(&id, &title); err != nil {
			t.Fatal(err)
		}
		want[id] = title
	}
	rs.Close()

	c, err := codec.New()
	if err != nil {
		t.Fatal(err)
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(s.kt.Seeds...), kgo.ConsumeTopics(s.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	last := map[string]*events.ContentChange{}
	cctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	why := ""
	for {
		fs := consumer.PollFetches(cctx)
		if cctx.Err() != nil {
			t.Fatalf("the topic does not end with the table's state: %s", why)
		}
		fs.EachRecord(func(r *kgo.Record) {
			ev, _, err := c.DecodeEvent(cctx, r.Value)
			if err != nil {
				t.Fatal(err)
			}
			ch := ev.(*events.ContentChange)
			last[ch.ContentID] = ch
		})
		why = ""
		for id, title := range want {
			if e := last[id]; e == nil || e.Op == events.OpDelete || e.Title != title {
				why = fmt.Sprintf("row %s (%s): last event %+v", id, title, e)
				break
			}
		}
		for id, e := range last {
			if _, ok := want[id]; !ok && e.Op != events.OpDelete && why == "" {
				why = fmt.Sprintf("deleted row %s: last event %s", id, e.Op)
			}
		}
		if why == "" {
			break
		}
	}
	s.stop()
}
