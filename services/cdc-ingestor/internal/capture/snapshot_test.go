package capture

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/pkg/testenv"
)

func snapshotEnv(t *testing.T, chunk, rows int) *testEnv {
	e := newEnv(t, func(p *pipeline.Pipeline) {
		p.Capture.Snapshot.Mode = pipeline.SnapshotInitial
		p.Capture.Snapshot.ChunkSize = chunk
	})
	e.exec(`INSERT INTO content (id, title, url) OVERRIDING SYSTEM VALUE SELECT g, 'seed ' || g, '/s/' || g FROM generate_series(1000, 999 + $1::int) g`, rows)
	return e
}

func (e *testEnv) snapshotsDone() bool {
	done, err := e.cap.SnapshotsDone(context.Background(), e.db)
	return err == nil && done
}

// finalState reads the table: key → "title/version".
func (e *testEnv) finalState() map[string]string {
	rows, err := e.db.Query(context.Background(), "SELECT id::text, title, version FROM content")
	if err != nil {
		e.t.Fatal(err)
	}
	state, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var id, title string
		var v int64
		err := r.Scan(&id, &title, &v)
		return [2]string{id, fmt.Sprint(title, "/", v)}, err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range state {
		out[s[0]] = s[1]
	}
	return out
}

// matches reports whether the last event of every key on the topic is the
// table's state: the row's title and version, or a delete for a key the
// table no longer has, and whether every row of the table has events.
func matches(recs []record, want map[string]string) (bool, string) {
	last := map[string]*events.ContentChange{}
	for _, c := range changes(recs) {
		last[c.ContentID] = c
	}
	for id, st := range want {
		c := last[id]
		if c == nil {
			return false, "no event for row " + id
		}
		if c.Op == events.OpDelete || fmt.Sprint(c.Title, "/", c.Version) != st {
			return false, fmt.Sprintf("row %s: last event %s %q v%d, table has %s", id, c.Op, c.Title, c.Version, st)
		}
	}
	for id, c := range last {
		if _, ok := want[id]; !ok && c.Op != events.OpDelete {
			return false, fmt.Sprintf("key %s is not in the table but its last event is %s", id, c.Op)
		}
	}
	return true, ""
}

func (e *testEnv) checkFinalState() {
	e.t.Helper()
	want := e.finalState()
	e.consume(60*time.Second, func(recs []record) bool {
		ok, why := matches(recs, want)
		e.why = why
		return ok
	}, e.topic(pipeline.TopicContentChanges))
}

// writer updates, deletes and inserts rows until stop is closed. When the
// server ends its connection (a restart) it connects again and goes on: a
// write whose commit it did not see may or may not have happened, and
// the tests compare the topic with the table as it ends.
func writer(t *testing.T, dsn string, lo, hi int, stop <-chan struct{}) (done <-chan struct{}, writes *atomic.Int64) {
	ch := make(chan struct{})
	writes = new(atomic.Int64)
	go func() {
		defer close(ch)
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Error(err)
			return
		}
		defer func() { conn.Close(ctx) }()
		next := 900000
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			if conn.IsClosed() {
				c, err := pgx.Connect(ctx, dsn)
				if err != nil {
					time.Sleep(50 * time.Millisecond) // the server is not back yet
					continue
				}
				conn = c
			}
			id := lo + rand.IntN(hi-lo)
			var err error
			switch n % 10 {
			case 0:
				_, err = conn.Exec(ctx, "DELETE FROM content WHERE id = $1", id)
			case 1:
				next++
				_, err = conn.Exec(ctx, "INSERT INTO content (id, title, url) OVERRIDING SYSTEM VALUE VALUES ($1, 'new', $2)", next, fmt.Sprint("/n/", next))
			default:
				_, err = conn.Exec(ctx, "UPDATE content SET title = $2 WHERE id = $1", id, fmt.Sprint("w", n))
			}
			if err != nil && conn.IsClosed() {
				continue
			}
			if err != nil {
				t.Error(err)
				return
			}
			writes.Add(1)
		}
	}()
	return ch, writes
}

func TestSnapshotWithConcurrentWrites(t *testing.T) {
	t.Parallel()
	e := snapshotEnv(t, 50, 3000)
	stop := make(chan struct{})
	e.start()
	done, writes := writer(t, e.dsn, 1000, 4000, stop)
	waitFor(t, 60*time.Second, "the snapshot to finish", e.snapshotsDone)
	during := writes.Load()
	close(stop)
	<-done
	if during == 0 {
		t.Fatal("no write happened while the snapshot ran: the test shows nothing")
	}
	var snapRows float64
	for _, n := range []string{"public.content"} {
		snapRows += testutil.ToFloat64(e.metrics.SnapshotRows.WithLabelValues(n))
	}
	t.Logf("%d writes while snapshotting (%d in all); %.0f snapshot rows emitted", during, writes.Load(), snapRows)
	e.checkFinalState()
}

func TestSnapshotResumesAfterStop(t *testing.T) {
	t.Parallel()
	e := snapshotEnv(t, 50, 2000)
	e.start()
	// Held between two chunks by a lock on the table, the snapshot cannot
	// finish before the stop, however fast the machine.
	release := testenv.HoldTable(t, e.dsn, "content", func() bool {
		var rows int64
		_ = e.db.QueryRow(context.Background(), "SELECT coalesce(sum(rows), 0) FROM freshet_cdc.snapshots WHERE slot = $1", e.p.Capture.Slot).Scan(&rows)
		return rows > 0
	})
	e.stop()
	release()
	if e.snapshotsDone() {
		t.Fatal("the snapshot finished while its table was locked")
	}
	e.exec(`UPDATE content SET title = 'while stopped' WHERE id % 7 = 0`)
	e.start()
	waitFor(t, 60*time.Second, "the snapshot to finish after the restart", e.snapshotsDone)
	e.checkFinalState()
}

func TestResnapshotOnRequest(t *testing.T) {
	t.Parallel()
	e := snapshotEnv(t, 100, 300)
	e.start()
	waitFor(t, 30*time.Second, "the initial snapshot", e.snapshotsDone)
	if err := e.cap.Resnapshot(context.Background(), "content"); err != nil {
		t.Fatal(err)
	}
	n := 303 // the table's rows: 3 from freshet.sql and 300 seeded
	e.consume(30*time.Second, func(recs []record) bool {
		snap := 0
		for _, c := range changes(recs) {
			if c.Source.Origin == events.OriginSnapshot {
				snap++
			}
		}
		return snap >= 2*n
	}, e.topic(pipeline.TopicContentChanges))
	if err := e.cap.Resnapshot(context.Background(), "nope"); err == nil {
		t.Fatal("Resnapshot of a table that is not captured succeeded")
	}
}

// TestPostgresRestartMidSnapshot restarts the package's Postgres (so it
// does not run in parallel) once the first chunks of a snapshot are on the
// topic, while a writer updates, deletes and inserts rows: the snapshot
// goes on from its last acked chunk, and the topic ends with every row's
// latest state.
func TestPostgresRestartMidSnapshot(t *testing.T) {
	const chunk, rows = 50, 5000
	e := snapshotEnv(t, chunk, rows)
	e.start()
	ctx := context.Background()
	stop := make(chan struct{})
	done, writes := writer(t, e.dsn, 1000, 1000+rows, stop)
	stopWriter := sync.OnceFunc(func() { close(stop); <-done })
	t.Cleanup(stopWriter)
	progress := func() (finished bool, n int64) {
		if err := e.db.QueryRow(ctx, "SELECT coalesce(bool_and(done), false), coalesce(sum(rows), 0) FROM freshet_cdc.snapshots WHERE slot = $1", e.p.Capture.Slot).Scan(&finished, &n); err != nil {
			t.Fatalf("read snapshot progress: %v", err)
		}
		return finished, n
	}
	// Progress is written once a chunk's events are acked, so they are on
	// the topic.
	waitFor(t, 30*time.Second, "two chunks on the topic", func() bool { _, n := progress(); return n >= 2*chunk })
	// A fast shutdown waits for the walsender, which waits for this client
	// to confirm its last position: a client that never confirms past WAL
	// that sends nothing (snapshot progress, aborted writes) held it until
	// wal_sender_timeout, and the harness's stop timeout killed the server.
	if err := testenv.PostgresServer(t).Restart(ctx); err != nil {
		t.Fatal(err)
	}
	e.reconnect()
	// The capture connects again only after a backoff: the table still says
	// where the restart stopped the snapshot.
	finished, n := progress()
	if finished {
		t.Fatal("the snapshot finished before the restart: the test shows nothing")
	}
	after := writes.Load()
	waitFor(t, 30*time.Second, "the snapshot to finish after the restart", e.snapshotsDone)
	during := writes.Load() - after
	stopWriter()
	if during == 0 {
		t.Fatal("no write happened while the snapshot went on after the restart: the test shows nothing")
	}
	if testutil.ToFloat64(e.metrics.Reconnects) == 0 {
		t.Fatal("the capture never connected again: the restart did not interrupt it")
	}
	t.Logf("restarted after %d of %d snapshot rows and %d writes; %d writes while the snapshot went on (%d in all)", n, rows+3, after, during, writes.Load())
	e.checkFinalState()
}
