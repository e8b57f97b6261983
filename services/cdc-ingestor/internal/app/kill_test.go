package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/testenv"
)

func repoFile(rel string) string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "../../../..", rel)
}

// stack is a database, a pipeline file and topics of the test's own, and
// the ingestor run as a separate process.
type stack struct {
	t     *testing.T
	dsn   string
	kt    testenv.KafkaTest
	file  string
	slot  string
	topic string
	proc  *testenv.Service // the ingestor, while it runs
}

func newStack(t *testing.T) *stack { return newStackWith(t, "mode: never", "chunk_size: 10000") }

// newStackWith is newStack with the pipeline's snapshot mode and chunk size
// lines given (e.g. "mode: initial", "chunk_size: 500").
func newStackWith(t *testing.T, mode, chunk string) *stack {
	ctx := context.Background()
	s := &stack{t: t, dsn: testenv.Postgres(t), kt: testenv.Kafka(t)}
	db, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	sql, err := os.ReadFile(repoFile("pipelines/freshet.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, string(sql)); err != nil {
		t.Fatal(err)
	}
	yaml, err := os.ReadFile(repoFile("pipelines/freshet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(t.Name()))
	s.slot = "k" + hex.EncodeToString(sum[:6])
	text := string(yaml)
	for _, r := range [][2]string{
		{"publication: freshet\n", "publication: " + s.slot + "\n"},
		{"slot: freshet\n", "slot: " + s.slot + "\n"},
		{"content.changes", s.kt.Topic("content.changes")},
		{"user.profiles", s.kt.Topic("user.profiles")},
		{"content.deliveries", s.kt.Topic("content.deliveries")},
		{"mode: initial", mode},
		{"chunk_size: 10000", chunk},
	} {
		if !strings.Contains(text, r[0]) {
			t.Fatalf("pipelines/freshet.yaml no longer holds %q", r[0])
		}
		text = strings.ReplaceAll(text, r[0], r[1])
	}
	s.file = filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(s.file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s.topic = s.kt.Topic("content.changes")
	return s
}

// start runs the ingestor process, as the local stack runner would, with
// env added (later variables win), and waits until it streams.
func (s *stack) start(env ...string) {
	s.t.Helper()
	s.proc = testenv.StartService(s.t, testenv.ServiceOptions{Name: Name, Env: append([]string{
		"FRESHET_KAFKA_BROKERS=" + strings.Join(s.kt.Seeds, ","),
		"FRESHET_POSTGRES_DSN=" + s.dsn,
		"FRESHET_PIPELINE=" + s.file,
		"FRESHET_INGEST_ADDR=127.0.0.1:0",
	}, env...)})
}

// kill9 kills the ingestor with SIGKILL.
func (s *stack) kill9() {
	s.t.Helper()
	if err := s.proc.Kill(); err != nil {
		s.t.Fatal(err)
	}
}

// stop stops the ingestor with SIGTERM and checks it exited cleanly.
func (s *stack) stop() {
	s.t.Helper()
	s.proc.Stop(s.t)
}

// waitStreaming waits until the ingestor's slot is active.
func (s *stack) waitStreaming(db *pgx.Conn) {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var active bool
		err := db.QueryRow(context.Background(), "SELECT active FROM pg_replication_slots WHERE slot_name = $1", s.slot).Scan(&active)
		if err == nil && active {
			return
		}
		select {
		case <-s.proc.Done():
			s.t.Fatal("the ingestor exited")
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatal("the ingestor's slot never became active")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// produced returns the records on the topic (sum of end offsets).
func produced(t *testing.T, adm *kadm.Client, topic string) int64 {
	ends, err := adm.ListEndOffsets(context.Background(), topic)
	if err != nil {
		return 0
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// TestKillNineMidBurst kills the ingestor with SIGKILL in the middle of a
// 10,000-row write burst, starts it again, and checks that every row is on
// the topic once: the restarted ingestor streams again from the slot's
// confirmed LSN, and does not produce again what Kafka already holds.
func TestKillNineMidBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the ingestor as a process against real Postgres")
	}
	ctx := context.Background()
	s := newStack(t)
	db, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.kt.Seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	s.start()
	s.waitStreaming(db)

	const rows, perTx = 10000, 20
	burstDone := make(chan error, 1)
	go func() {
		conn, err := pgx.Connect(ctx, s.dsn)
		if err != nil {
			burstDone <- err
			return
		}
		defer conn.Close(ctx)
		for first := 100000; first < 100000+rows; first += perTx {
			if _, err := conn.Exec(ctx, `INSERT INTO content (id, title, url) OVERRIDING SYSTEM VALUE
				SELECT g, 'burst ' || g, '/b/' || g FROM generate_series($1::bigint, $1::bigint + $2::bigint - 1) g`, first, perTx); err != nil {
				burstDone <- err
				return
			}
		}
		burstDone <- nil
	}()
	deadline := time.Now().Add(60 * time.Second)
	for produced(t, adm, s.topic) < rows/5 {
		if time.Now().After(deadline) {
			t.Fatal("the ingestor produced too little before the kill")
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.kill9()
	atKill := produced(t, adm, s.topic)
	select {
	case err := <-burstDone:
		t.Logf("the burst had ended at the kill (%v): the kill still cut the stream at %d of %d records", err, atKill, rows)
		burstDone <- err
	default:
	}
	if atKill >= rows {
		t.Fatalf("all %d rows were on the topic before the kill; the test did not kill mid-stream", rows)
	}
	t.Logf("killed with %d of %d records on the topic", atKill, rows)
	if err := <-burstDone; err != nil {
		t.Fatal(err)
	}
	s.start()

	c, err := codec.New()
	if err != nil {
		t.Fatal(err)
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(s.kt.Seeds...), kgo.ConsumeTopics(s.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	ids := map[string]map[string]bool{} // content id → event ids
	cctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	total := 0
	for len(ids) < rows {
		fs := consumer.PollFetches(cctx)
		if cctx.Err() != nil {
			t.Fatalf("only %d of %d rows reached the topic after the restart", len(ids), rows)
		}
		fs.EachRecord(func(r *kgo.Record) {
			ev, _, err := c.DecodeEvent(cctx, r.Value)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			ch := ev.(*events.ContentChange)
			if ids[ch.ContentID] == nil {
				ids[ch.ContentID] = map[string]bool{}
			}
			ids[ch.ContentID][ch.EventID] = true
			total++
		})
	}
	for id, evs := range ids {
		if len(evs) != 1 {
			t.Fatalf("row %s was sent with %d different event ids; a resend must keep its id", id, len(evs))
		}
	}
	for i := 100000; i < 100000+rows; i++ {
		if ids[fmt.Sprint(i)] == nil {
			t.Fatalf("row %d is missing", i)
		}
	}
	if total != rows {
		t.Fatalf("%d records for %d rows: %d produced again after the kill", total, rows, total-rows)
	}
	t.Logf("%d records for %d rows, each once", total, rows)
	s.stop()
}
