package stack

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/freshet/freshet/pkg/testenv"
)

// TestPostgresFromPrivateFolder starts the stack's Postgres from a clone in
// a home folder only its owner can enter (mode 0700, as root's is): the
// server comes up, an earlier run's folder is taken over, the data survives
// a restart, and the user's folders keep their modes. As root, the cluster
// lives outside, linked from the stack folder.
func TestPostgresFromPrivateFolder(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real server")
	}
	if pkgs := missingPackages(requirements[:1]); len(pkgs) > 0 {
		err := &MissingPackagesError{Packages: pkgs}
		if os.Getenv(testenv.RequireServersEnv) == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	home := filepath.Join(t.TempDir(), "home") // t.TempDir's folders are 0700 too
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	stackDir := filepath.Join(home, "freshet", ".freshet")
	// The folder a run that stopped at "cannot enter" left behind.
	if err := os.MkdirAll(filepath.Join(stackDir, "postgres"), 0o755); err != nil {
		t.Fatal(err)
	}
	useSystemDataRoot(t)
	t.Chdir(repoRoot) // the runner reads pipelines/freshet.sql from there

	s := &Stack{cfg: Config{PostgresPort: freePorts(t, 1)[0], ReadyTimeout: time.Minute}, dir: stackDir, out: io.Discard}
	query := func(sql string) int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		p, err := s.startPostgres(ctx)
		if err != nil {
			t.Fatalf("postgres from a 0700 folder: %v", err)
		}
		defer func() {
			if err := p.stop(context.Background()); err != nil {
				t.Error(err)
			}
		}()
		conn, err := pgx.Connect(ctx, s.postgresDSN())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var n int
		if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatal(err)
		}
		t.Logf("postgres %s", p.where)
		return n
	}
	query("insert into content (title, url, tags) values ('private', '/private', '{}') returning 1")
	if n := query("select count(*) from content where url = '/private'"); n != 1 {
		t.Fatalf("after a restart, %d rows of the one written before", n)
	}

	if fi, err := os.Stat(home); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("home folder: %v, %v; want it left at 0700", fi.Mode(), err)
	}
	fi, err := os.Lstat(filepath.Join(stackDir, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		return // the server ran as this user, in the stack's folder
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("%s/postgres is %v; want a link to the folder outside", stackDir, fi.Mode())
	}
	target, _ := os.Readlink(filepath.Join(stackDir, "postgres"))
	if !strings.HasPrefix(target, systemDataRoot+"/") {
		t.Errorf("the cluster is in %s; want it under %s", target, systemDataRoot)
	}
}

// useSystemDataRoot points systemDataRoot at a temporary folder the
// postgres user can enter, for the test.
func useSystemDataRoot(t *testing.T) {
	t.Helper()
	root, err := os.MkdirTemp("", "freshet-system-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	old := systemDataRoot
	systemDataRoot = root
	t.Cleanup(func() {
		systemDataRoot = old
		_ = os.RemoveAll(root)
	})
}

// TestStalePostgresDirsRemoved: an outside folder is kept while its stack
// folder links to it, and removed once that link is gone (the stack folder
// was deleted to start over); folders that are not the stack's are left.
func TestStalePostgresDirsRemoved(t *testing.T) {
	root := t.TempDir()
	stack := t.TempDir()
	mk := func(name, owner string) string {
		home := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Join(home, "postgres", "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		if owner != "" {
			if err := writeStackFile(home, owner); err != nil {
				t.Fatal(err)
			}
		}
		return home
	}
	live := mk("live", stack)
	if err := os.Symlink(filepath.Join(live, "postgres"), filepath.Join(stack, "postgres")); err != nil {
		t.Fatal(err)
	}
	gone := mk("gone", filepath.Join(t.TempDir(), "deleted", ".freshet"))
	other := mk("other", "")

	removeStalePostgresDirs(root)
	for dir, want := range map[string]bool{live: true, gone: false, other: true} {
		_, err := os.Stat(dir)
		if got := err == nil; got != want {
			t.Errorf("%s exists: %v; want %v", filepath.Base(dir), got, want)
		}
	}
}

func TestSystemDirNamePerStack(t *testing.T) {
	a := systemDirName("/root/freshet/.freshet")
	b := systemDirName("/root/work/freshet/.freshet")
	if a == b || !strings.HasPrefix(a, "freshet-") || strings.ContainsAny(a, "/ ") {
		t.Errorf("names %q and %q; want distinct names starting with the checkout's", a, b)
	}
}
