package servers_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/servers"
)

const crashHelperEnv = "FRESHET_SERVERS_CRASH_HELPER"

// started is what the helper process reports about the servers it runs.
type started struct {
	Pids     []int    `json:"pids"`
	Children []int    `json:"children"` // of every server process
	Addrs    []string `json:"addrs"`
	Dirs     []string `json:"dirs"`
}

// TestCrashHelper is not a test: run by TestKilledParentLeavesNothing in a
// child process, it starts every server, reports them on stdout and waits
// to be killed.
func TestCrashHelper(t *testing.T) {
	if os.Getenv(crashHelperEnv) != "1" {
		t.Skip("helper process for TestKilledParentLeavesNothing")
	}
	ctx := context.Background()
	var s started
	pg, err := servers.StartPostgres(ctx, servers.PostgresOptions{})
	if err == nil {
		s.Pids, s.Addrs, s.Dirs = append(s.Pids, pg.Pid()), append(s.Addrs, pg.Addr()), append(s.Dirs, pg.Dir())
	} else if !errors.Is(err, servers.ErrNotInstalled) {
		t.Fatal(err)
	}
	ch, err := servers.StartClickHouse(ctx, servers.ClickHouseOptions{})
	if err == nil {
		s.Pids, s.Addrs, s.Dirs = append(s.Pids, ch.Pid()), append(s.Addrs, ch.NativeAddr(), ch.HTTPAddr()), append(s.Dirs, ch.Dir())
	} else if !errors.Is(err, servers.ErrNotInstalled) {
		t.Fatal(err)
	}
	v, err := servers.StartVarnish(ctx, servers.VarnishOptions{VCL: fmt.Sprintf(xkeyVCL, "127.0.0.1", "9")})
	if err == nil {
		s.Pids, s.Addrs, s.Dirs = append(s.Pids, v.Pid()), append(s.Addrs, v.Addr(), v.AdminAddr()), append(s.Dirs, v.Dir())
	} else if !errors.Is(err, servers.ErrNotInstalled) {
		t.Fatal(err)
	}
	for _, pid := range s.Pids {
		s.Children = append(s.Children, childPids(t, pid)...)
	}
	b, _ := json.Marshal(s)
	fmt.Printf("SERVERS %s\n", b)
	time.Sleep(time.Minute) // killed long before
}

// TestKilledParentLeavesNothing kills (SIGKILL, no cleanup at all) a
// process that runs every server, and checks that the servers die with it
// and that RemoveStaleTempDirs then removes its folders.
func TestKilledParentLeavesNothing(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts real servers")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashHelperEnv+"=1")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if l, ok := strings.CutPrefix(sc.Text(), "SERVERS "); ok {
				lines <- l
			}
		}
		close(lines)
	}()
	var s started
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("helper ended without reporting its servers")
		}
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("helper did not report its servers within 60s")
	}
	if len(s.Pids) == 0 {
		startOrSkip(t, fmt.Errorf("no server installed: %w", servers.ErrNotInstalled))
	}
	for _, a := range s.Addrs {
		if c, err := net.DialTimeout("tcp", a, time.Second); err != nil {
			t.Fatalf("server at %s not up in the helper: %v", a, err)
		} else {
			c.Close()
		}
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	// The kernel delivers the death signals at once; the servers' own
	// children (postgres backends, the varnish worker) follow their leader.
	deadline := time.Now().Add(15 * time.Second)
	for _, pid := range append(s.Pids, s.Children...) {
		for (servers.GroupAlive(pid) || servers.ProcessAlive(pid)) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if len(s.Children) == 0 {
		t.Error("the helper reported no child processes (postgres backends, varnish worker)")
	}
	checkPidsGone(t, s.Children)
	checkGone(t, s.Pids[0], s.Addrs, "")
	for _, pid := range s.Pids[1:] {
		checkGone(t, pid, nil, "")
	}

	removed, err := servers.RemoveStaleTempDirs()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range s.Dirs {
		if !slices.Contains(removed, d) {
			t.Errorf("stale folder %s not removed (removed %v)", d, removed)
		}
		checkGone(t, 0, nil, d)
	}
}
