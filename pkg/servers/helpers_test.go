package servers_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/servers"
)

// startOrSkip fails the test on err, or skips it when a binary is missing
// and FRESHET_REQUIRE_SERVERS is not 1.
func startOrSkip(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, servers.ErrNotInstalled) && os.Getenv("FRESHET_REQUIRE_SERVERS") != "1" {
		t.Skip(err)
	}
	t.Fatal(err)
}

// skipIfNotInstalled skips (or fails) like startOrSkip when err reports a
// missing binary, and does nothing otherwise.
func skipIfNotInstalled(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, servers.ErrNotInstalled) {
		startOrSkip(t, err)
	}
}

// openTempDir returns a temporary folder that other users can enter
// (t.TempDir's parents are private to their owner, and postgres runs as
// user postgres), removed when the test ends.
func openTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "freshet-servers-test-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// stopper is what every server has.
type stopper interface{ Stop(context.Context) error }

// stopAndCheckGone stops s and checks that nothing is left: the process
// group of pid is gone, no address accepts connections, and dir (when not
// empty) no longer exists.
func stopAndCheckGone(t *testing.T, s stopper, pid int, addrs []string, dir string) {
	t.Helper()
	if err := s.Stop(ctxFor(t, 30*time.Second)); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := s.Stop(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	checkGone(t, pid, addrs, dir)
}

func checkGone(t *testing.T, pid int, addrs []string, dir string) {
	t.Helper()
	if pid != 0 {
		if servers.ProcessAlive(pid) {
			t.Errorf("process %d still alive", pid)
		}
		if servers.GroupAlive(pid) {
			t.Errorf("process group %d still has live members", pid)
		}
	}
	for _, a := range addrs {
		if conn, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s still accepts connections", a)
		}
	}
	if dir != "" {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("folder %s still exists (stat: %v)", dir, err)
		}
	}
}

// childPids returns the live children of pid, from /proc (postgres
// backends leave the postmaster's process group, so group checks miss
// them).
func childPids(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var kids []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b)[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) && servers.ProcessAlive(p) {
			kids = append(kids, p)
		}
	}
	return kids
}

// checkPidsGone checks that none of pids is alive.
func checkPidsGone(t *testing.T, pids []int) {
	t.Helper()
	for _, p := range pids {
		if servers.ProcessAlive(p) {
			t.Errorf("process %d still alive", p)
		}
	}
}
