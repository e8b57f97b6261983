package chschema_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/schemas"
	"github.com/freshet/freshet/services/metrics-sink/internal/chschema"
	"github.com/freshet/freshet/services/metrics-sink/internal/queries"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.NeedClickHouse) }

func open(t *testing.T) (driver.Conn, context.Context) {
	t.Helper()
	db := testenv.ClickHouse(t)
	conn, err := clickhouse.Open(db.Options())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return conn, ctx
}

func load(t *testing.T) []chschema.Migration {
	t.Helper()
	ms, err := chschema.Load(schemas.ClickHouse)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 2 {
		t.Fatalf("want at least 2 migrations, got %d", len(ms))
	}
	return ms
}

// shape is every column of every table of the database, with its type, and
// the engine of each table: what a migration changes.
func shape(t *testing.T, ctx context.Context, conn driver.Conn) []string {
	t.Helper()
	rows, err := conn.Query(ctx, `SELECT concat(table, '.', name, ' ', type) FROM system.columns WHERE database = currentDatabase()
		UNION ALL SELECT concat(name, ' ', engine) FROM system.tables WHERE database = currentDatabase()`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func count(t *testing.T, ctx context.Context, conn driver.Conn, q string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// Migrations run twice: the second run applies nothing and changes nothing.
func TestMigrateTwice(t *testing.T) {
	conn, ctx := open(t)
	ms := load(t)
	done, err := chschema.Migrate(ctx, conn, ms, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != len(ms) {
		t.Fatalf("first run applied %v, want all %d", done, len(ms))
	}
	before := shape(t, ctx, conn)
	done, err = chschema.Migrate(ctx, conn, ms, 0)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if len(done) != 0 {
		t.Errorf("second run applied %v", done)
	}
	if after := shape(t, ctx, conn); !slices.Equal(before, after) {
		t.Errorf("second run changed the schema:\nbefore %v\nafter  %v", before, after)
	}
	if v, err := chschema.Applied(ctx, conn); err != nil || v != len(ms) {
		t.Errorf("Applied = %d, %v; want %d", v, err, len(ms))
	}
	checkPurgeRollup(t, ctx, conn, "twice")
}

// checkPurgeRollup inserts into edge_purges a batch of target whose audit
// came in 3 parts, each with the batch's 4 attempts and 20 ms of latency,
// and a whole batch of 1 attempt (a row that names no part, as a sink
// before version 3 writes it): purge_latency_1m must count 2 batches and 5
// attempts for target, and edge_purges keep the 4 rows.
func checkPurgeRollup(t *testing.T, ctx context.Context, conn driver.Conn, target string) {
	t.Helper()
	if err := conn.Exec(ctx, `INSERT INTO edge_purges (event_id, part, parts, target, provider, outcome, attempts, finished_at, latency_from_commit_us, kafka_partition, kafka_offset)
		SELECT concat('split-', toString(number + 1)), number + 1, 3, '`+target+`', 'varnish', 'acked', 4, now(), 20000, 0, 100 + number FROM system.numbers LIMIT 3`); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx, `INSERT INTO edge_purges (event_id, target, provider, outcome, attempts, finished_at, latency_from_commit_us, kafka_partition, kafka_offset)
		SELECT 'whole', '`+target+`', 'varnish', 'acked', 1, now(), 10000, 0, 200`); err != nil {
		t.Fatal(err)
	}
	var n, attempts uint64
	if err := conn.QueryRow(ctx, "SELECT countMerge(n), sumMerge(attempts) FROM purge_latency_1m WHERE target = '"+target+"'").Scan(&n, &attempts); err != nil {
		t.Fatal(err)
	}
	if n != 2 || attempts != 5 {
		t.Errorf("purge_latency_1m for %s: %d batches, %d attempts; want 2, 5 (a batch counted once, not once per part)", target, n, attempts)
	}
	if got := count(t, ctx, conn, "SELECT count() FROM edge_purges WHERE target = '"+target+"'"); got != 4 {
		t.Errorf("edge_purges for %s: %d rows, want 4", target, got)
	}
	if part, parts := purgeParts(t, ctx, conn, "target = '"+target+"' AND event_id = 'whole'"); part != 1 || parts != 1 {
		t.Errorf("a row that names no part: part %d of %d, want 1 of 1", part, parts)
	}
}

// purgeParts reads the part and parts of the edge_purges row where cond
// holds. With event_id selected too: on 18.16, a SELECT of only columns an
// ALTER added with a DEFAULT, over a part written before the ALTER, returns
// no row when its WHERE goes to PREWHERE (see 0003_purge_parts.sql).
func purgeParts(t *testing.T, ctx context.Context, conn driver.Conn, cond string) (part, parts uint16) {
	t.Helper()
	var id string
	if err := conn.QueryRow(ctx, "SELECT event_id, part, parts FROM edge_purges WHERE "+cond).Scan(&id, &part, &parts); err != nil {
		t.Fatalf("edge_purges where %s: %v", cond, err)
	}
	return part, parts
}

// A database left by the previous schema version, with data in it, is
// brought to the current version; its rows stay, and a run that died after
// the ALTER but before recording its version (the statements re-run) is no
// error either.
func TestMigrateFromPreviousVersion(t *testing.T) {
	conn, ctx := open(t)
	ms := load(t)
	prev := len(ms) - 1
	if _, err := chschema.Migrate(ctx, conn, ms, prev); err != nil {
		t.Fatal(err)
	}
	if v, _ := chschema.Applied(ctx, conn); v != prev {
		t.Fatalf("at version %d, want %d", v, prev)
	}
	if err := conn.Exec(ctx, `INSERT INTO rum_beacons (event_id, received_at, route, vital_names, vital_values, vital_ratings, lag_event_ids, lag_ms, kafka_partition, kafka_offset)
		SELECT 'old', now(), '/a', ['LCP'], [1200.0], ['good'], [], [], 0, 7`); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx, `INSERT INTO edge_purges (event_id, target, provider, outcome, attempts, finished_at, latency_from_commit_us, kafka_partition, kafka_offset)
		SELECT 'old', 'before', 'varnish', 'acked', 2, now(), 30000, 0, 7`); err != nil {
		t.Fatal(err)
	}
	done, err := chschema.Migrate(ctx, conn, ms, 0)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if !slices.Equal(done, []int{len(ms)}) {
		t.Fatalf("upgrade applied %v, want [%d]", done, len(ms))
	}
	if n := count(t, ctx, conn, "SELECT count() FROM rum_beacons WHERE event_id = 'old' AND length(vital_navigation_types) = 0"); n != 1 {
		t.Errorf("the old row after the upgrade: %d rows", n)
	}
	if n := count(t, ctx, conn, "SELECT count() FROM web_vitals_1m"); n != 1 {
		t.Errorf("rollup rows after the upgrade: %d", n)
	}
	if part, parts := purgeParts(t, ctx, conn, "event_id = 'old'"); part != 1 || parts != 1 {
		t.Errorf("the old purge row after the upgrade: part %d of %d, want 1 of 1", part, parts)
	}
	if n := count(t, ctx, conn, "SELECT countMerge(n) FROM purge_latency_1m WHERE target = 'before'"); n != 1 {
		t.Errorf("the old purge row's rollup after the upgrade: %d batches, want 1", n)
	}
	// The ready-made queries run over the rows written before the upgrade.
	for _, name := range queries.Names() {
		res, err := queries.Run(ctx, conn, name, time.Now().Add(-time.Hour), "")
		if err != nil {
			t.Errorf("query %s after the upgrade: %v", name, err)
		} else if name == "purge_latency" && (len(res.Rows) != 1 || res.Rows[0][0] != "before") {
			t.Errorf("query purge_latency after the upgrade: %v, want the old row's batch", res.Rows)
		}
	}
	checkPurgeRollup(t, ctx, conn, "upgraded")
	// A merge of the part written before the upgrade with those written
	// after stores part and parts in it: then even 18.16 takes a WHERE on
	// both.
	if err := conn.Exec(ctx, "OPTIMIZE TABLE edge_purges FINAL"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, ctx, conn, "SELECT count() FROM edge_purges WHERE part = 1 AND parts = 1"); n != 2 {
		t.Errorf("after a merge: %d rows of part 1 of 1, want 2 (old and whole)", n)
	}
	want := shape(t, ctx, conn)
	// A run that died after the statements but before recording their
	// version: the statements run again over a schema that has them.
	conn2, ctx2 := open(t)
	if _, err := chschema.Migrate(ctx2, conn2, ms, 0); err != nil {
		t.Fatal(err)
	}
	if err := conn2.Exec(ctx2, "DROP TABLE "+chschema.MigrationsTable); err != nil {
		t.Fatal(err)
	}
	if _, err := chschema.Migrate(ctx2, conn2, ms, 0); err != nil {
		t.Fatalf("migrations over a schema whose versions were not recorded: %v", err)
	}
	if got := shape(t, ctx2, conn2); !slices.Equal(got, want) {
		t.Errorf("schema differs from an upgraded one:\n%v\n%v", got, want)
	}
	checkPurgeRollup(t, ctx2, conn2, "rerun")
}

func TestRetention(t *testing.T) {
	conn, ctx := open(t)
	if _, err := chschema.Migrate(ctx, conn, load(t), 0); err != nil {
		t.Fatal(err)
	}
	v, err := chschema.ServerVersion(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx, `INSERT INTO latency_samples (event_id, at, duration_us, kafka_partition, kafka_offset)
		SELECT concat('e', toString(number)), now() - number * 86400 * 20, 1000, 0, number FROM system.numbers LIMIT 3`); err != nil {
		t.Fatal(err)
	}
	hasTTL, err := chschema.SetTTL(ctx, conn, v, 30)
	if err != nil {
		t.Fatal(err)
	}
	if hasTTL != v.AtLeast(19, 6) {
		t.Fatalf("SetTTL on %s reported TTL %v", v, hasTTL)
	}
	if _, err := chschema.SetTTL(ctx, conn, v, 30); err != nil {
		t.Fatalf("SetTTL twice: %v", err)
	}
	n, err := chschema.DropExpired(ctx, conn, 30)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 && !hasTTL { // the raw day 40 days old and its rollup: gone; 20 days and today: kept
		t.Errorf("dropped %d partitions, want 2", n)
	}
	got := count(t, ctx, conn, "SELECT count() FROM latency_samples")
	if got != 2 {
		t.Errorf("%d rows after retention of 30 days, want 2", got)
	}
	if got := count(t, ctx, conn, "SELECT count() FROM latency_1m"); got != 2 && !hasTTL {
		t.Errorf("rollup rows after retention: %d, want 2", got)
	}
}

func TestSplit(t *testing.T) {
	got := chschema.Split("-- c\nCREATE TABLE a (x UInt8)\nENGINE = Memory;\n\n-- d\nSELECT 1;\nSELECT 2")
	want := []string{"CREATE TABLE a (x UInt8)\nENGINE = Memory", "SELECT 1", "SELECT 2"}
	if !slices.Equal(got, want) {
		t.Fatalf("Split = %q", got)
	}
	if _, err := chschema.ParseVersion("24.8.4.13"); err != nil {
		t.Fatal(err)
	}
	if v, _ := chschema.ParseVersion("18.16.1"); v.AtLeast(19, 6) || !v.AtLeast(18, 16) {
		t.Fatalf("version compare: %v", v)
	}
	if _, err := chschema.ParseVersion("x"); err == nil || !strings.Contains(err.Error(), "major.minor") {
		t.Fatal(err)
	}
}
