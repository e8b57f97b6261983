package testenv_test

import (
	"bufio"
	"bytes"
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
	"github.com/freshet/freshet/pkg/testenv"
)

const helperEnv = "FRESHET_TESTENV_HELPER"

type report struct {
	Pids  []int    `json:"pids"`
	Addrs []string `json:"addrs"`
	Dirs  []string `json:"dirs"`
}

// TestLifecycleHelper is not a test: TestServersStoppedAfterRun runs it in
// a child process, where it takes servers from testenv, reports them and
// then fails, waits for a signal, or panics.
func TestLifecycleHelper(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process for TestServersStoppedAfterRun")
	}
	testenv.Postgres(t)
	pg := testenv.PostgresServer(t)
	v := testenv.Varnish(t, "vcl 4.1;\nbackend b { .host = \"127.0.0.1\"; .port = \"9\"; }\n")
	r := report{
		Pids:  []int{pg.Pid(), v.Pid()},
		Addrs: []string{pg.Addr(), v.Addr(), v.AdminAddr()},
		Dirs:  []string{pg.Dir(), v.Dir()},
	}
	b, _ := json.Marshal(r)
	fmt.Printf("SERVERS %s\n", b)
	switch mode {
	case "fail":
		t.Fatal("deliberate failure")
	case "signal":
		time.Sleep(time.Minute) // interrupted long before
	case "panic":
		panic("deliberate panic")
	case "keep":
		// passes; FRESHET_KEEP_TESTDATA=1 is set by the parent
	}
}

// TestServersStoppedAfterRun runs a test binary whose test fails, is
// interrupted, or panics, and checks that its servers are gone afterwards:
// stopped by Main (fail, signal) or killed with their parent (panic), and
// their folders removed (by Main, or by RemoveStaleTempDirs after a panic).
func TestServersStoppedAfterRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers")
	}
	tests := []struct {
		mode        string
		signal      bool
		staleFolder bool // a panic leaves the package servers' folders to the next run
		keep        bool // FRESHET_KEEP_TESTDATA=1: folders kept and named
	}{
		{mode: "fail"},
		{mode: "signal", signal: true},
		{mode: "panic", staleFolder: true},
		{mode: "keep", keep: true},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestLifecycleHelper$", "-test.count=1")
			cmd.Env = append(os.Environ(), helperEnv+"="+tt.mode, testenv.KeepTestdataEnv+"=")
			if tt.keep {
				cmd.Env = append(cmd.Env, testenv.KeepTestdataEnv+"=1")
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()

			r, output := readReport(t, stdout)
			if r == nil {
				_ = cmd.Wait()
				if strings.Contains(output, "SKIP") && !strings.Contains(output, "FAIL") {
					t.Skipf("helper skipped: %s", output)
				}
				t.Fatalf("helper reported no servers:\n%s\n%s", output, stderr.String())
			}
			for _, a := range r.Addrs {
				if c, err := net.DialTimeout("tcp", a, time.Second); err != nil {
					t.Fatalf("server at %s not up in the helper: %v", a, err)
				} else {
					c.Close()
				}
			}
			if tt.signal {
				if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
					t.Fatal(err)
				}
			}
			err = waitTimeout(cmd, 60*time.Second)
			var exitErr *exec.ExitError
			if tt.keep && err != nil {
				t.Fatalf("helper exit: %v; want success\n%s", err, stderr.String())
			}
			if !tt.keep && (!errors.As(err, &exitErr) || exitErr.ExitCode() == 0) {
				t.Fatalf("helper exit: %v; want a failure exit code\n%s", err, stderr.String())
			}

			deadline := time.Now().Add(15 * time.Second)
			for _, pid := range r.Pids {
				for servers.GroupAlive(pid) && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
				if servers.ProcessAlive(pid) || servers.GroupAlive(pid) {
					t.Errorf("server process %d still alive", pid)
				}
			}
			for _, a := range r.Addrs {
				if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
					c.Close()
					t.Errorf("%s still accepts connections", a)
				}
			}
			if tt.staleFolder {
				removed, err := servers.RemoveStaleTempDirs()
				if err != nil {
					t.Fatal(err)
				}
				// The package's Postgres is Main's to stop, which a panic
				// skips. (The test's own Varnish is stopped by t.Cleanup,
				// which runs even on a panic.)
				if !slices.Contains(removed, r.Dirs[0]) {
					t.Errorf("stale folder %s not removed; removed %v", r.Dirs[0], removed)
				}
			}
			for _, d := range r.Dirs {
				_, err := os.Stat(d)
				switch {
				case tt.keep:
					t.Cleanup(func() { os.RemoveAll(d) })
					if err != nil {
						t.Errorf("folder %s not kept: %v", d, err)
					}
					if !strings.Contains(stderr.String(), "kept "+d) {
						t.Errorf("kept folder %s not named in the output:\n%s", d, stderr.String())
					}
				case !errors.Is(err, os.ErrNotExist):
					t.Errorf("folder %s still there (%v)", d, err)
				}
			}
		})
	}
}

// readReport reads the helper's stdout until its SERVERS line or its end.
func readReport(t *testing.T, stdout interface{ Read([]byte) (int, error) }) (*report, string) {
	t.Helper()
	type result struct {
		r   *report
		out string
	}
	ch := make(chan result, 1)
	go func() {
		var out strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if l, ok := strings.CutPrefix(sc.Text(), "SERVERS "); ok {
				var r report
				if err := json.Unmarshal([]byte(l), &r); err == nil {
					ch <- result{r: &r}
					// Keep draining so the helper never blocks on stdout.
					for sc.Scan() {
					}
					return
				}
			}
			out.WriteString(sc.Text() + "\n")
		}
		ch <- result{out: out.String()}
	}()
	select {
	case res := <-ch:
		return res.r, res.out
	case <-time.After(90 * time.Second):
		t.Fatal("helper did not report within 90s")
		return nil, ""
	}
}

func waitTimeout(cmd *exec.Cmd, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		return fmt.Errorf("helper still running after %s", d)
	}
}
