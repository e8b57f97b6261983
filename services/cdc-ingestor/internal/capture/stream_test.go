package capture

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/pkg/testenv"
)

const insertContent = `INSERT INTO content (id, title, body, tags, section, url, author, audience) OVERRIDING SYSTEM VALUE VALUES ($1, $2, 'body', '{go,kafka}', 'tech', $3, 'ada', 'subscribers')`

func TestOperations(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.start()
	topic := e.topic(pipeline.TopicContentChanges)

	e.exec(insertContent, 100, "Hello", "/a")
	e.exec(`UPDATE content SET title = 'Hello again', url = '/b', tags = '{go}' WHERE id = 100`)
	e.exec(`DELETE FROM content WHERE id = 100`)
	tx, err := e.db.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for id := 101; id <= 103; id++ {
		if _, err := tx.Exec(context.Background(), insertContent, id, fmt.Sprint("Row ", id), fmt.Sprint("/r", id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.exec(`TRUNCATE content`)

	got := changes(e.consume(30*time.Second, atLeast(7), topic))
	byKey := map[string][]*events.ContentChange{}
	for _, c := range got {
		byKey[c.ContentID] = append(byKey[c.ContentID], c)
	}

	t.Run("insert", func(t *testing.T) {
		c := byKey["100"][0]
		if c.Op != events.OpCreate || c.Title != "Hello" || c.URLPath != "/a" || !slices.Equal(c.Tags, []string{"go", "kafka"}) ||
			c.Section != "tech" || c.Kind != "article" || c.Version != 1 || c.Attributes["author"] != "ada" || c.Body == nil || *c.Body != "body" {
			t.Fatalf("create event = %+v", c)
		}
		if c.Source.Origin != events.OriginReplication || c.Source.TxID == 0 || c.Source.CommitLSN == 0 || c.Source.LSN == 0 || c.Source.Table != "public.content" {
			t.Fatalf("source = %+v", c.Source)
		}
		if c.EventID != events.ChangeID(c.Source.DB, "public.content", c.Source.LSN, "100") {
			t.Fatalf("event id %s is not ChangeID(db, table, lsn, key)", c.EventID)
		}
	})
	t.Run("update with the old row (REPLICA IDENTITY FULL)", func(t *testing.T) {
		c := byKey["100"][1]
		if c.Op != events.OpUpdate || c.Title != "Hello again" || c.URLPath != "/b" || c.Version != 2 {
			t.Fatalf("update event = %+v", c)
		}
		if c.Before == nil || c.Before.URLPath != "/a" || c.Before.Title != "Hello" || !slices.Equal(c.Before.Tags, []string{"go", "kafka"}) || c.Before.Version != 1 {
			t.Fatalf("before = %+v; want the old url, title, tags and version", c.Before)
		}
	})
	t.Run("delete", func(t *testing.T) {
		c := byKey["100"][2]
		if c.Op != events.OpDelete || c.URLPath != "/b" || c.Title != "Hello again" || len(c.MissingFields) != 0 {
			t.Fatalf("delete event = %+v; want the deleted row (FULL)", c)
		}
	})
	t.Run("multi-row transaction", func(t *testing.T) {
		var first *events.ContentChange
		for id := 101; id <= 103; id++ {
			list := byKey[fmt.Sprint(id)]
			if len(list) != 1 {
				t.Fatalf("content %d: %d events, want 1", id, len(list))
			}
			c := list[0]
			if first == nil {
				first = c
			}
			if c.Source.TxID != first.Source.TxID || c.Source.CommitLSN != first.Source.CommitLSN || !c.Source.CommitTime.Equal(first.Source.CommitTime) {
				t.Fatalf("events of one transaction differ in txid or commit: %+v vs %+v", c.Source, first.Source)
			}
			if c.Source.Seq != int64(id-101) {
				t.Fatalf("content %d: seq %d, want %d", id, c.Source.Seq, id-101)
			}
		}
	})
	t.Run("truncate", func(t *testing.T) {
		c := byKey[""]
		if len(c) != 1 || c[0].Op != events.OpTruncate {
			t.Fatalf("truncate events = %+v", c)
		}
	})
	t.Run("order per key", func(t *testing.T) {
		ops := []events.Op{}
		for _, c := range byKey["100"] {
			ops = append(ops, c.Op)
		}
		if !slices.Equal(ops, []events.Op{events.OpCreate, events.OpUpdate, events.OpDelete}) {
			t.Fatalf("ops of key 100 = %v", ops)
		}
	})
}

// bigText is incompressible enough to be stored out of line (TOAST).
const bigText = `(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 600))`

func TestUnchangedToast(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.exec(`ALTER TABLE content REPLICA IDENTITY DEFAULT`)
	e.start()
	e.exec(`INSERT INTO content (id, title, url, body) OVERRIDING SYSTEM VALUE VALUES (7, 'T', '/t', ` + bigText + `)`)
	e.exec(`UPDATE content SET title = 'T2' WHERE id = 7`) // body unchanged: not sent
	e.exec(`ALTER TABLE content REPLICA IDENTITY FULL`)
	e.exec(`UPDATE content SET title = 'T3' WHERE id = 7`) // body unchanged, but the old row has it

	got := changes(e.consume(30*time.Second, atLeast(3), e.topic(pipeline.TopicContentChanges)))
	body := got[0].Body
	if body == nil || len(*body) < 10000 {
		t.Fatalf("insert: body of %v bytes, want the whole value", got[0].Body)
	}
	if c := got[1]; c.Title != "T2" || c.Body != nil || !slices.Equal(c.MissingFields, []string{"body"}) {
		t.Fatalf("update under DEFAULT: title %q, body set %v, missing %v; want no body and missing_fields [body]", c.Title, c.Body != nil, c.MissingFields)
	}
	if c := got[2]; c.Title != "T3" || c.Body == nil || *c.Body != *body || len(c.MissingFields) != 0 {
		t.Fatalf("update under FULL: body filled %v, missing %v; want the body from the old row", c.Body != nil, c.MissingFields)
	}
	for _, c := range got {
		if c.Body != nil && strings.Contains(*c.Body, "unchanged") {
			t.Fatal("a placeholder reached an event")
		}
	}
}

func TestNewColumnWhileStreaming(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.exec(`ALTER TABLE content DROP COLUMN audience`)
	e.start()
	e.exec(`INSERT INTO content (id, title, url) OVERRIDING SYSTEM VALUE VALUES (1000, 'before', '/x1')`)
	e.exec(`ALTER TABLE content ADD COLUMN audience text`)
	e.exec(`INSERT INTO content (id, title, url, audience) OVERRIDING SYSTEM VALUE VALUES (1001, 'after', '/x2', 'subscribers')`)
	got := byID(changes(e.consume(30*time.Second, atLeast(2), e.topic(pipeline.TopicContentChanges))))
	if _, ok := got["1000"][0].Attributes["audience"]; ok {
		t.Fatalf("first event has audience before the column existed: %v", got["1000"][0].Attributes)
	}
	if a := got["1001"][0].Attributes; a["audience"] != "subscribers" {
		t.Fatalf("event after ADD COLUMN: attributes %v, want audience=subscribers", a)
	}
}

func TestKeyChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.exec(`ALTER TABLE content REPLICA IDENTITY DEFAULT`)
	e.start()
	e.exec(insertContent, 5, "x", "/k")
	e.exec(`UPDATE content SET id = 6 WHERE id = 5`)
	got := byID(changes(e.consume(30*time.Second, atLeast(3), e.topic(pipeline.TopicContentChanges))))
	if len(got["5"]) != 2 || got["5"][1].Op != events.OpDelete || len(got["6"]) != 1 || got["6"][0].Op != events.OpUpdate {
		t.Fatalf("key change: events of 5 %v, of 6 %v; want create then delete of 5, update of 6", got["5"], got["6"])
	}
	if got["5"][1].Source.TxID != got["6"][0].Source.TxID {
		t.Fatal("the delete of the old key and the update are not of one transaction")
	}
}

func TestProfiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.start()
	e.exec(`INSERT INTO user_profiles (user_id, locale, interests, follows) VALUES ('u9', 'fr', '{"go": 0.5}', '{author:ada}')`)
	e.exec(`UPDATE user_profiles SET interests = '{"bad": "weight"}' WHERE user_id = 'u9'`) // cannot be mapped: DLQ
	e.exec(`DELETE FROM user_profiles WHERE user_id = 'u9'`)
	topic := e.topic(pipeline.TopicUserProfiles)
	got := e.consume(30*time.Second, atLeast(4), topic, kafka.DLQTopic(topic))
	var profiles []*events.UserProfile
	var tombstones, dead int
	for _, r := range got {
		switch {
		case r.Topic == kafka.DLQTopic(topic):
			dead++
			if !strings.Contains(r.Headers[kafka.HeaderError], "interests") {
				t.Errorf("DLQ record error header %q does not name interests", r.Headers[kafka.HeaderError])
			}
		case r.Value == nil:
			tombstones++
			if r.Key != "u9" {
				t.Errorf("tombstone key %q", r.Key)
			}
		default:
			profiles = append(profiles, r.Event.(*events.UserProfile))
		}
	}
	if len(profiles) != 2 || dead != 1 || tombstones != 1 {
		t.Fatalf("%d profiles, %d dead letters, %d tombstones; want 2, 1, 1", len(profiles), dead, tombstones)
	}
	if p := profiles[0]; p.UserID != "u9" || p.Locale != "fr" || len(p.Interests) != 1 || p.Interests[0].Tag != "go" || !slices.Equal(p.Follows, []string{"author:ada"}) || p.Deleted {
		t.Fatalf("profile = %+v", p)
	}
	if !profiles[1].Deleted {
		t.Fatalf("delete: profile %+v, want Deleted", profiles[1])
	}
}

// A TRUNCATE of the profile table deletes every profile on its topic (a
// compacted topic has no delete-all): each user whose last record is a
// profile gets a deleted snapshot and a tombstone, a user deleted before gets
// nothing more, and a profile inserted again after the truncate, in the same
// transaction, stays.
func TestTruncateProfiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.start()
	e.exec(`INSERT INTO user_profiles (user_id, locale) VALUES ('a1', 'en'), ('a2', 'fr'), ('gone', 'de')`)
	e.exec(`DELETE FROM user_profiles WHERE user_id = 'gone'`)
	// The example schema's users were inserted before the slot existed and
	// this pipeline takes no snapshot: they are not on the topic, and the
	// truncate has nothing to delete for them.
	before := []string{"a1", "a2"}
	e.exec(`TRUNCATE user_profiles; INSERT INTO user_profiles (user_id, locale) VALUES ('a2', 'pt')`)

	topic := e.topic(pipeline.TopicUserProfiles)
	afterTruncate := func(recs []record) bool {
		for _, r := range recs {
			if u, ok := r.Event.(*events.UserProfile); ok && u.UserID == "a2" && u.Locale == "pt" {
				return true
			}
		}
		return false
	}
	got := e.consume(30*time.Second, afterTruncate, topic)
	last := map[string]record{}
	tombstones := map[string]int{}
	for _, r := range got {
		last[r.Key] = r
		if r.Value == nil {
			tombstones[r.Key]++
		}
	}
	for _, id := range before {
		r := last[id]
		if id == "a2" {
			if u, ok := r.Event.(*events.UserProfile); !ok || u.Locale != "pt" || u.Deleted {
				t.Errorf("a2, inserted again after the truncate: last record %+v", r)
			}
			if tombstones[id] != 1 {
				t.Errorf("a2: %d tombstones, want 1 (the truncate's)", tombstones[id])
			}
			continue
		}
		if r.Value != nil || tombstones[id] != 1 {
			t.Errorf("%s: last record %+v, %d tombstones; want one tombstone, last", id, r, tombstones[id])
		}
	}
	if tombstones["gone"] != 1 {
		t.Errorf("gone, deleted before the truncate: %d tombstones, want 1 (its delete's)", tombstones["gone"])
	}
	var deleted int
	for _, r := range got {
		if u, ok := r.Event.(*events.UserProfile); ok && u.Deleted && u.Source.Table != "" && r.Key != "gone" {
			deleted++
		}
	}
	if deleted != len(before) {
		t.Errorf("%d deleted snapshots for the truncate, want %d", deleted, len(before))
	}
}

func TestOutbox(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.start()
	tx, err := e.db.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{`{"op":"update","content_id":"ob1","title":"From the outbox","tags":["x"]}`, `{"op":"create","title":"no key"}`} {
		if _, err := tx.Exec(context.Background(), `SELECT pg_logical_emit_message(true, 'freshet.outbox', $1::text)`, msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	topic := e.topic(pipeline.TopicContentChanges)
	got := e.consume(30*time.Second, atLeast(2), topic, kafka.DLQTopic(topic))
	var ok, dead int
	for _, r := range got {
		if r.Topic == topic {
			c := r.Event.(*events.ContentChange)
			if c.ContentID != "ob1" || c.Title != "From the outbox" || c.Source.Origin != events.OriginOutbox || c.Source.TxID == 0 || r.Key != "ob1" {
				t.Fatalf("outbox event = %+v", c)
			}
			ok++
		} else {
			dead++
			if !strings.Contains(r.Headers[kafka.HeaderError], "content_id") {
				t.Errorf("dead letter reason %q does not name content_id", r.Headers[kafka.HeaderError])
			}
		}
	}
	if ok != 1 || dead != 1 {
		t.Fatalf("%d events, %d dead letters; want 1, 1", ok, dead)
	}
}

// slotConfirmed returns the slot's confirmed_flush_lsn.
func slotConfirmed(t testing.TB, db *pgx.Conn, slot string) uint64 {
	t.Helper()
	var lsn uint64
	if err := db.QueryRow(context.Background(), "SELECT (confirmed_flush_lsn - '0/0')::bigint FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	return lsn
}

func TestSlotConfirmedAfterAcksAndHeartbeats(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.start()
	e.exec(insertContent, 500, "x", "/h")
	c := changes(e.consume(30*time.Second, atLeast(1), e.topic(pipeline.TopicContentChanges)))[0]
	// The change is acked; the slot moves past its commit, and with
	// heartbeats keeps moving while the table stays quiet.
	waitFor(t, 20*time.Second, "the slot to confirm past the commit", func() bool { return slotConfirmed(t, e.db, e.p.Capture.Slot) > c.Source.CommitLSN })
	before := slotConfirmed(t, e.db, e.p.Capture.Slot)
	waitFor(t, 20*time.Second, "a heartbeat to move the slot", func() bool { return slotConfirmed(t, e.db, e.p.Capture.Slot) > before })
}

func TestWaitsForTables(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.exec(`DROP TABLE user_profiles`)
	c, err := New(Options{DSN: e.dsn, Pipeline: e.p, Client: e.client, Codec: e.codec, TableWait: 50 * time.Millisecond}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	waitFor(t, 20*time.Second, "readiness to name the missing table", func() bool {
		err := c.Ready()
		return err != nil && strings.Contains(err.Error(), "public.user_profiles")
	})
	schema := `CREATE TABLE user_profiles (user_id text PRIMARY KEY, locale text, region text, interests jsonb, follows text[], segments text[], deleted boolean, updated_at timestamptz)`
	e.exec(schema)
	waitFor(t, 20*time.Second, "capture to stream once the table exists", func() bool { return c.Ready() == nil })
	e.exec(`INSERT INTO user_profiles (user_id) VALUES ('late')`)
	e.consume(30*time.Second, atLeast(1), e.topic(pipeline.TopicUserProfiles))
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestPostgresRestart restarts the package's Postgres mid-stream (so it
// does not run in parallel): streaming resumes and every committed row is
// on the topic.
func TestPostgresRestart(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	ctx := context.Background()
	const rows = 600
	committed := make(chan int, rows)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		var conn *pgx.Conn
		for id := 10001; id <= 10000+rows; {
			if conn == nil {
				c, err := pgx.Connect(ctx, e.dsn)
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				conn = c
			}
			if _, err := conn.Exec(ctx, insertContent, id, "r", fmt.Sprint("/p", id)); err != nil {
				conn.Close(ctx)
				conn = nil
				continue // not committed (or unknown): written again below
			}
			committed <- id
			id++
			time.Sleep(2 * time.Millisecond)
		}
		conn.Close(ctx)
	}()
	waitFor(t, 30*time.Second, "some rows before the restart", func() bool { return len(committed) > rows/4 })
	if err := testenv.PostgresServer(t).Restart(ctx); err != nil {
		t.Fatal(err)
	}
	<-writerDone
	close(committed)
	want := map[string]bool{}
	for id := range committed {
		want[fmt.Sprint(id)] = true
	}
	seen := map[string]bool{}
	e.consume(60*time.Second, func(recs []record) bool {
		for _, c := range changes(recs) {
			seen[c.ContentID] = true
		}
		for id := range want {
			if !seen[id] {
				return false
			}
		}
		return true
	}, e.topic(pipeline.TopicContentChanges))
	if e.metrics != nil {
		waitFor(t, 30*time.Second, "streaming again", func() bool { return e.cap.Ready() == nil })
	}
}

// byID groups events by content id, in topic order (one key is on one
// partition, in order; keys on other partitions have no order between them).
func byID(list []*events.ContentChange) map[string][]*events.ContentChange {
	out := map[string][]*events.ContentChange{}
	for _, c := range list {
		out[c.ContentID] = append(out[c.ContentID], c)
	}
	return out
}

// An event larger than Kafka accepts goes to the DLQ with its id and size,
// and the stream goes on.
func TestEventTooLarge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.start()
	e.exec(`INSERT INTO content (id, title, url, body) OVERRIDING SYSTEM VALUE VALUES (701, 'huge', '/huge', repeat('x', 2000000))`)
	e.exec(insertContent, 702, "after", "/after")
	topic := e.topic(pipeline.TopicContentChanges)
	var dead, ok bool
	e.consume(30*time.Second, func(recs []record) bool {
		for _, r := range recs {
			if r.Topic == kafka.DLQTopic(topic) && r.Key == "701" && strings.Contains(r.Headers[kafka.HeaderError], "2000") {
				dead = true
			}
			if r.Topic == topic && r.Key == "702" {
				ok = true
			}
		}
		return dead && ok
	}, topic, kafka.DLQTopic(topic))
}
