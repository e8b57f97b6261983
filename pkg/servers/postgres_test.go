package servers_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/freshet/freshet/pkg/servers"
)

func TestPostgres(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a real server")
	}
	ctx := ctxFor(t, 60*time.Second)
	pg, err := servers.StartPostgres(ctx, servers.PostgresOptions{})
	startOrSkip(t, err)
	pid, addr, dir := pg.Pid(), pg.Addr(), pg.Dir()
	defer pg.Stop(context.Background())

	conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	var one int
	var walLevel string
	if err := conn.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("select 1 = %d, %v", one, err)
	}
	if err := conn.QueryRow(ctx, "show wal_level").Scan(&walLevel); err != nil || walLevel != "logical" {
		t.Fatalf("wal_level = %q, %v; want logical", walLevel, err)
	}
	conn.Close(ctx)

	t.Run("database with slot is dropped", func(t *testing.T) {
		const db = "Slotted-DB"
		if err := pg.CreateDatabase(ctx, db); err != nil {
			t.Fatal(err)
		}
		c, err := pgx.Connect(ctx, pg.DSN(db))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "select pg_create_logical_replication_slot('s1', 'pgoutput')"); err != nil {
			t.Fatal(err)
		}
		// An active slot: a replication connection streaming from it.
		if _, err := c.Exec(ctx, "select pg_create_logical_replication_slot('s2', 'test_decoding')"); err != nil {
			t.Fatal(err)
		}
		rc, err := pgconn.Connect(ctx, pg.DSN(db)+"&replication=database")
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close(context.Background())
		if err := pglogrepl.StartReplication(ctx, rc, "s2", 0, pglogrepl.StartReplicationOptions{}); err != nil {
			t.Fatal(err)
		}
		var active int
		if err := c.QueryRow(ctx, "select count(*) from pg_replication_slots where active").Scan(&active); err != nil || active != 1 {
			t.Fatalf("active slots = %d, %v; want 1", active, err)
		}
		if err := pg.DropDatabase(ctx, db); err != nil {
			t.Fatal(err)
		}
		admin, err := pgx.Connect(ctx, pg.DSN("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close(context.Background())
		var slots, dbs int
		if err := admin.QueryRow(ctx, "select count(*) from pg_replication_slots").Scan(&slots); err != nil {
			t.Fatal(err)
		}
		if err := admin.QueryRow(ctx, "select count(*) from pg_database where datname = $1", db).Scan(&dbs); err != nil {
			t.Fatal(err)
		}
		if slots != 0 || dbs != 0 {
			t.Fatalf("after DropDatabase: %d slots, %d databases named %q; want 0 and 0", slots, dbs, db)
		}
	})

	t.Run("restart keeps data and port", func(t *testing.T) {
		if err := pg.CreateDatabase(ctx, "kept"); err != nil {
			t.Fatal(err)
		}
		old := pg.Pid()
		if err := pg.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		if pg.Pid() == old || pg.Addr() != addr {
			t.Fatalf("after restart: pid %d (was %d), addr %s (was %s)", pg.Pid(), old, pg.Addr(), addr)
		}
		checkGone(t, old, nil, "")
		c, err := pgx.Connect(ctx, pg.DSN("kept"))
		if err != nil {
			t.Fatalf("database lost across restart: %v", err)
		}
		c.Close(ctx)
		pid = pg.Pid()
	})

	backends := childPids(t, pid)
	if len(backends) == 0 {
		t.Fatal("found no postgres backend processes")
	}
	stopAndCheckGone(t, pg, pid, []string{addr}, dir)
	checkPidsGone(t, backends)
}

func TestPostgresPersistentFolder(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a real server")
	}
	ctx := ctxFor(t, 60*time.Second)
	dir := filepath.Join(openTempDir(t), "pg")
	logFile := filepath.Join(t.TempDir(), "pg.log")
	opts := servers.PostgresOptions{Dir: dir, LogFile: logFile}
	pg, err := servers.StartPostgres(ctx, opts)
	startOrSkip(t, err)
	if err := pg.CreateDatabase(ctx, "survivor"); err != nil {
		t.Fatal(err)
	}
	pid, addr := pg.Pid(), pg.Addr()
	if err := pg.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	checkGone(t, pid, []string{addr}, "")
	if _, err := os.Stat(filepath.Join(dir, "data", "PG_VERSION")); err != nil {
		t.Fatalf("persistent folder not kept: %v", err)
	}

	pg, err = servers.StartPostgres(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop(context.Background())
	c, err := pgx.Connect(ctx, pg.DSN("survivor"))
	if err != nil {
		t.Fatalf("database not reused: %v", err)
	}
	c.Close(ctx)
	log, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), "database system is ready to accept connections"); n != 2 {
		t.Errorf("log %s shows %d starts, want 2", logFile, n)
	}
}

func TestPostgresBadSettingQuotesLog(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a real server")
	}
	ctx := ctxFor(t, 60*time.Second)
	_, err := servers.StartPostgres(ctx, servers.PostgresOptions{Settings: map[string]string{"wal_level": "bogus"}})
	if err == nil {
		t.Fatal("started with wal_level=bogus")
	}
	skipIfNotInstalled(t, err)
	if !strings.Contains(err.Error(), `invalid value for parameter "wal_level"`) {
		t.Fatalf("error does not quote the server's log: %v", err)
	}
	t.Logf("the error reads:\n%v", err)
}

func TestPostgresUnreachableFolder(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a real server")
	}
	if os.Geteuid() != 0 {
		t.Skip("only root hands the folder to user postgres")
	}
	parent := t.TempDir() // mode 0700, owned by root
	_, err := servers.StartPostgres(ctxFor(t, 30*time.Second), servers.PostgresOptions{Dir: filepath.Join(parent, "pg")})
	skipIfNotInstalled(t, err)
	if err == nil || !strings.Contains(err.Error(), "cannot enter /tmp/") || !strings.Contains(err.Error(), "chmod o+x") {
		t.Fatalf("err = %v; want one naming the folder postgres cannot enter", err)
	}
}
