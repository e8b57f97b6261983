package servers_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/freshet/freshet/pkg/servers"
)

func TestClickHouse(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a real server")
	}
	ctx := ctxFor(t, 60*time.Second)
	t0 := time.Now()
	ch, err := servers.StartClickHouse(ctx, servers.ClickHouseOptions{})
	startOrSkip(t, err)
	t.Logf("started in %v", time.Since(t0))
	defer ch.Stop(context.Background())

	if err := ch.CreateDatabase(ctx, "metrics_test"); err != nil {
		t.Fatal(err)
	}
	conn, err := clickhouse.Open(ch.Options("metrics_test"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("native ping: %v", err)
	}

	var epoch string
	if err := conn.QueryRow(ctx, "SELECT toString(toDateTime(1700000000))").Scan(&epoch); err != nil || epoch != "2023-11-14 22:13:20" {
		t.Fatalf("toString(toDateTime(1700000000)) = %q, %v; want 2023-11-14 22:13:20 (server in UTC)", epoch, err)
	}
	// LowCardinality needs the profile setting on 18.16; the batch names its
	// columns, as 18.16 requires.
	if err := conn.Exec(ctx, `CREATE TABLE beacons (day Date, route LowCardinality(String), lcp Float64)
		ENGINE = MergeTree PARTITION BY day ORDER BY (day, route)`); err != nil {
		t.Fatal(err)
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO beacons (day, route, lcp)")
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	for i, route := range []string{"/", "/a", "/a"} {
		if err := batch.Append(day, route, float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	var routes uint64
	var total float64
	if err := conn.QueryRow(ctx, "SELECT uniqExact(route), sum(lcp) FROM beacons").Scan(&routes, &total); err != nil {
		t.Fatal(err)
	}
	if routes != 2 || total != 3 {
		t.Fatalf("uniqExact(route), sum(lcp) = %d, %v; want 2, 3", routes, total)
	}

	t.Run("create database rejects odd names", func(t *testing.T) {
		for _, name := range []string{"", "a-b", "x`; DROP DATABASE default", "1abc"} {
			if err := ch.CreateDatabase(ctx, name); err == nil {
				t.Errorf("CreateDatabase(%q) succeeded", name)
			}
		}
	})

	pid, addrs, dir := ch.Pid(), []string{ch.NativeAddr(), ch.HTTPAddr()}, ch.Dir()
	stopAndCheckGone(t, ch, pid, addrs, dir)
}

func TestClickHouseRestartAndPersistentFolder(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a real server")
	}
	ctx := ctxFor(t, 60*time.Second)
	dir := filepath.Join(openTempDir(t), "ch")
	opts := servers.ClickHouseOptions{Dir: dir}
	ch, err := servers.StartClickHouse(ctx, opts)
	startOrSkip(t, err)
	defer ch.Stop(context.Background())
	if err := ch.CreateDatabase(ctx, "kept"); err != nil {
		t.Fatal(err)
	}

	old, native := ch.Pid(), ch.NativeAddr()
	if err := ch.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if ch.Pid() == old || ch.NativeAddr() != native {
		t.Fatalf("after restart: pid %d (was %d), addr %s (was %s)", ch.Pid(), old, ch.NativeAddr(), native)
	}
	checkGone(t, old, nil, "")

	pid, addrs := ch.Pid(), []string{ch.NativeAddr(), ch.HTTPAddr()}
	stopAndCheckGone(t, ch, pid, addrs, "")
	if _, err := os.Stat(filepath.Join(dir, "data", "metadata", "kept")); err != nil {
		t.Fatalf("database not kept in the persistent folder: %v", err)
	}

	ch, err = servers.StartClickHouse(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Stop(context.Background())
	conn, err := clickhouse.Open(ch.Options("kept"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = 'kept'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("database kept after a new start: count = %d, %v; want 1", n, err)
	}
}
