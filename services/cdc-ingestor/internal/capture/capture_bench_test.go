package capture

import (
	"context"
	"os/exec"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/services/cdc-ingestor/internal/pgoutput"
)

// The capture benchmarks run one fixed workload each and report their
// figures as metrics; run them once:
//
//	go test -run '^$' -bench . -benchtime 1x ./services/cdc-ingestor/internal/capture/
//
// Figures and how to read them: docs/cdc-ingestor.md.

const benchRows = 200_000

// writeBacklog inserts rows content rows in transactions of 1000, as
// realistic rows (title, summary, a 200-byte body, tags, section, url).
func writeBacklog(b *testing.B, e *testEnv, rows int) {
	for first := 1_000_000; first < 1_000_000+rows; first += 1000 {
		e.exec(`INSERT INTO content (id, title, summary, body, tags, section, url, author, region)
			OVERRIDING SYSTEM VALUE SELECT g, 'Title ' || g, 'A summary of item ' || g, repeat('body text ', 20), '{go,kafka,postgres}', 'tech', '/bench/' || g, 'ada', 'eu'
			FROM generate_series($1::bigint, $1::bigint + 999) g`, first)
	}
}

// rawDecode reads slot until rows row messages were decoded by pgoutput.Parse,
// and returns the time it took: the floor of any pgoutput consumer here.
func rawDecode(b *testing.B, dsn, slot, pub string, rows int) time.Duration {
	ctx := context.Background()
	conn, err := pgconn.Connect(ctx, replicationDSN(dsn))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	start := time.Now()
	args := []string{"proto_version '1'", "publication_names '" + pub + "'"}
	if err := pglogrepl.StartReplication(ctx, conn, slot, 0, pglogrepl.StartReplicationOptions{PluginArgs: args}); err != nil {
		b.Fatal(err)
	}
	n := 0
	for n < rows {
		raw, err := conn.ReceiveMessage(ctx)
		if err != nil {
			b.Fatal(err)
		}
		cd, ok := raw.(*pgproto3.CopyData)
		if !ok || len(cd.Data) == 0 {
			continue
		}
		switch cd.Data[0] {
		case pglogrepl.XLogDataByteID:
			x, err := pglogrepl.ParseXLogData(cd.Data[1:])
			if err != nil {
				b.Fatal(err)
			}
			m, err := pgoutput.Parse(x.WALData)
			if err != nil {
				b.Fatal(err)
			}
			if ins, ok := m.(*pgoutput.Insert); ok {
				_ = string(ins.New[0].Data)
				n++
			}
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			k, _ := pglogrepl.ParsePrimaryKeepaliveMessage(cd.Data[1:])
			if k.ReplyRequested {
				_ = pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: k.ServerWALEnd})
			}
		}
	}
	return time.Since(start)
}

// recvlogical reads slot with Postgres's own pg_recvlogical up to endLSN,
// writing the pgoutput stream to /dev/null, and returns the time it took: how
// fast the server's walsender hands the WAL out, with no Go client at all.
func recvlogical(b *testing.B, dsn, slot, pub, endLSN string) time.Duration {
	bin := testenv.PostgresServer(b).Bin("pg_recvlogical")
	start := time.Now()
	out, err := exec.Command(bin, "-d", dsn, "-S", slot, "--start", "--no-loop", "-E", endLSN,
		"-o", "proto_version=1", "-o", "publication_names="+pub, "-f", "/dev/null").CombinedOutput()
	if err != nil {
		b.Fatalf("pg_recvlogical: %v\n%s", err, out)
	}
	return time.Since(start)
}

// BenchmarkThroughput: a backlog of 200,000 inserted rows in the WAL, read
// by the raw decoder and by the ingestor (decode, map, Avro encode, produce
// to the broker and wait for every ack) from slots created at the same
// point. The raw decoder reads it before and after the ingestor (the first
// reader finds the WAL colder), and the faster of its two runs is the one
// compared: raw_rows/s and ratio are conservative. pg_recvlogical, Postgres's
// own client, reads it too (recvlogical_rows/s, ratio_recvlogical): the
// rate at which the server can hand the same WAL out.
func BenchmarkThroughput(b *testing.B) {
	defer debug.SetGCPercent(debug.SetGCPercent(GCPercent)) // as the service runs
	for b.Loop() {
		e := newEnv(b, nil)
		rawBefore, rawAfter, recv := e.p.Capture.Slot+"_raw1", e.p.Capture.Slot+"_raw2", e.p.Capture.Slot+"_recv"
		e.exec(`CREATE PUBLICATION ` + e.p.Capture.Publication + ` FOR TABLE content, user_profiles`)
		for _, slot := range []string{rawBefore, rawAfter, recv, e.p.Capture.Slot} {
			e.exec(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, slot)
		}
		writeBacklog(b, e, benchRows)
		var endLSN string
		if err := e.db.QueryRow(context.Background(), `SELECT pg_current_wal_lsn()::text`).Scan(&endLSN); err != nil {
			b.Fatal(err)
		}

		first := rawDecode(b, e.dsn, rawBefore, e.p.Capture.Publication, benchRows)

		var acked atomic.Int64
		done := make(chan time.Time, 1)
		e.observe = func(time.Duration) {
			if acked.Add(1) == benchRows {
				done <- time.Now()
			}
		}
		start := time.Now()
		e.start()
		end := <-done
		ingTime := end.Sub(start)
		e.stop()

		second := rawDecode(b, e.dsn, rawAfter, e.p.Capture.Publication, benchRows)
		recvRate := float64(benchRows) / recvlogical(b, e.dsn, recv, e.p.Capture.Publication, endLSN).Seconds()
		rawRate := float64(benchRows) / min(first, second).Seconds()
		ingRate := float64(benchRows) / ingTime.Seconds()
		b.ReportMetric(rawRate, "raw_rows/s")
		b.ReportMetric(ingRate, "ingest_rows/s")
		b.ReportMetric(ingRate/rawRate, "ratio")
		b.ReportMetric(recvRate, "recvlogical_rows/s")
		b.ReportMetric(ingRate/recvRate, "ratio_recvlogical")
		b.Logf("raw decoding %.0f rows/s before the ingestor, %.0f after; ingestor %.0f rows/s",
			float64(benchRows)/first.Seconds(), float64(benchRows)/second.Seconds(), ingRate)
	}
}

// BenchmarkLatency5k: rows committed at 5,000 a second (50-row transactions
// every 10ms, synchronous_commit on as in production) for 15s; the time from
// each commit to the Kafka ack of each of its events.
func BenchmarkLatency5k(b *testing.B) {
	defer debug.SetGCPercent(debug.SetGCPercent(GCPercent)) // as the service runs
	for b.Loop() {
		e := newEnv(b, nil)
		var mu sync.Mutex
		var lat []time.Duration
		e.observe = func(d time.Duration) {
			mu.Lock()
			lat = append(lat, d)
			mu.Unlock()
		}
		e.start()
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, e.dsn)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "SET synchronous_commit = on"); err != nil {
			b.Fatal(err)
		}
		const perTx, every, dur = 50, 10 * time.Millisecond, 15 * time.Second
		tick := time.NewTicker(every)
		end := time.Now().Add(dur)
		id := 1_000_000
		for time.Now().Before(end) {
			<-tick.C
			if _, err := conn.Exec(ctx, `INSERT INTO content (id, title, summary, body, tags, section, url)
				OVERRIDING SYSTEM VALUE SELECT g, 'Title ' || g, 'summary', repeat('body text ', 20), '{go,kafka}', 'tech', '/lat/' || g
				FROM generate_series($1::bigint, $1::bigint + $2::bigint - 1) g`, id, perTx); err != nil {
				b.Fatal(err)
			}
			id += perTx
		}
		tick.Stop()
		written := id - 1_000_000
		waitFor(b, 30*time.Second, "every ack", func() bool { mu.Lock(); defer mu.Unlock(); return len(lat) >= written })
		conn.Close(ctx)
		e.stop()
		slices.Sort(lat)
		pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
		b.ReportMetric(float64(written)/dur.Seconds(), "rows/s")
		b.ReportMetric(pct(0.50), "p50_ms")
		b.ReportMetric(pct(0.99), "p99_ms")
		b.ReportMetric(pct(1), "max_ms")
		b.Logf("%d rows: p50 %.1fms p95 %.1fms p99 %.1fms max %.1fms", written, pct(0.5), pct(0.95), pct(0.99), pct(1))
	}
}
