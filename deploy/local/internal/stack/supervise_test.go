package stack

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/servers"
)

// fakeServiceEnv makes this test binary a fake service (see TestMain):
// "serve" answers /readyz on FRESHET_ADMIN_ADDR until SIGTERM; "crash"
// answers it, then exits 1 after 100 ms.
const fakeServiceEnv = "FRESHET_STACK_FAKE_SERVICE"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeServiceEnv); mode != "" {
		os.Exit(fakeService(mode))
	}
	os.Exit(m.Run())
}

func fakeService(mode string) int {
	srv := &http.Server{Addr: os.Getenv("FRESHET_ADMIN_ADDR"), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	go func() { _ = srv.ListenAndServe() }()
	if mode == "crash" {
		time.Sleep(100 * time.Millisecond)
		fmt.Println("fake service: crashing")
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	return 0
}

// syncBuffer is the runner's output, written by the supervisors.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitOutput waits until the output holds want n times.
func (b *syncBuffer) waitOutput(t *testing.T, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(b.String(), want) < n {
		if time.Now().After(deadline) {
			t.Fatalf("no %d× %q in the runner's output:\n%s", n, want, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// supervised starts this test binary as a fake service in mode, under a
// supervisor, with short restart waits.
func supervised(t *testing.T, mode string) (*Stack, *service, *syncBuffer, context.CancelFunc) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts processes; skipped in -short mode")
	}
	dir := t.TempDir()
	out := &syncBuffer{}
	s := &Stack{cfg: Config{ReadyTimeout: 30 * time.Second}, dir: dir, out: out,
		restart: restartPolicy{first: 20 * time.Millisecond, max: 80 * time.Millisecond, stable: time.Second}}
	if err := os.MkdirAll(s.runDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	admin := fmt.Sprintf("127.0.0.1:%d", freeRun(t, 1))
	svc := &service{name: "fake", admin: admin, log: filepath.Join(dir, "fake.log"), path: exe,
		env: append(os.Environ(), fakeServiceEnv+"="+mode, "FRESHET_ADMIN_ADDR="+admin), pid: filepath.Join(s.runDir(), "fake.pid")}
	cmd, err := svc.start()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		_ = svc.stop(context.Background(), 5*time.Second)
	})
	if err := waitReady(ctx, svc, cmd, 30*time.Second); err != nil && mode == "serve" {
		t.Fatal(err)
	}
	go s.supervise(ctx, svc)
	return s, svc, out, cancel
}

// A service killed with SIGKILL is restarted, with a line for the exit and
// one for the restart, and its pid file names the new process; after a
// minute of life (here: restartStable) the wait is the first one again.
// Once the stack stops it, it is not restarted and its pid file is gone.
func TestSupervisorRestartsAKilledService(t *testing.T) {
	s, svc, out, _ := supervised(t, "serve")
	first := readPidFile(t, svc.pid)
	for i := 1; i <= 2; i++ {
		pid := readPidFile(t, svc.pid)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		out.waitOutput(t, "freshet: fake restarted (pid ", i)
		if now := readPidFile(t, svc.pid); now == pid || !servers.ProcessAlive(now) {
			t.Fatalf("pid file after restart %d: %d (was %d), alive %v", i, now, pid, servers.ProcessAlive(now))
		}
		time.Sleep(s.restart.stable + 100*time.Millisecond)
	}
	if got := strings.Count(out.String(), "freshet: fake exited (signal: killed); restarting it in 20ms."); got != 2 {
		t.Errorf("want two exits reported with the first wait (20ms), each after a stable run:\n%s", out)
	}
	if servers.ProcessAlive(first) {
		t.Errorf("the killed process %d is alive", first)
	}

	last := readPidFile(t, svc.pid)
	if err := svc.stop(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * s.restart.max)
	if servers.ProcessAlive(last) || strings.Count(out.String(), "restarted") != 2 {
		t.Errorf("the service was restarted after the stack stopped it (alive %v):\n%s", servers.ProcessAlive(last), out)
	}
	if _, err := os.Stat(svc.pid); !os.IsNotExist(err) {
		t.Errorf("pid file left after stop: %v", err)
	}
}

// A service that keeps exiting soon after its start is restarted after
// waits that double up to the longest (here 20, 40, 80, 80 ms), each
// announced with the exit's status and the end of its log.
func TestSupervisorBacksOff(t *testing.T) {
	_, _, out, cancel := supervised(t, "crash")
	out.waitOutput(t, "freshet: fake exited (exit status 1); restarting it in ", 5)
	cancel()
	var waits []string
	for _, l := range strings.Split(out.String(), "\n") {
		if _, rest, ok := strings.Cut(l, "restarting it in "); ok {
			w, _, _ := strings.Cut(rest, ".")
			waits = append(waits, w)
		}
	}
	if want := []string{"20ms", "40ms", "80ms", "80ms", "80ms"}; strings.Join(waits[:5], " ") != strings.Join(want, " ") {
		t.Errorf("waits %v; want %v first:\n%s", waits, want, out)
	}
	if !strings.Contains(out.String(), "  fake service: crashing") {
		t.Errorf("the exit lines do not show the end of the service's log:\n%s", out)
	}
}

func readPidFile(t *testing.T, path string) int {
	t.Helper()
	var pid int
	b, err := os.ReadFile(path)
	if err == nil {
		_, err = fmt.Sscan(string(b), &pid)
	}
	if err != nil {
		t.Fatalf("pid file %s: %v", path, err)
	}
	return pid
}
