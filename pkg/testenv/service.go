package testenv

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/servers"
)

// serviceEnv, set to 1, makes a test binary run its package's service
// instead of its tests (ServiceMain).
const serviceEnv = "FRESHET_TEST_RUN_SERVICE"

// ServiceMain is Main for a package whose tests run its service as a separate
// process (StartService), to kill it with SIGKILL mid-stream. In the process
// that StartService starts, it calls service, which runs the service and
// exits (lifecycle.Main does); everywhere else it is Main(m, needs...).
//
//	func TestMain(m *testing.M) {
//		testenv.ServiceMain(m, func() { lifecycle.Main("invalidator", app.Main) }, testenv.NeedKafka)
//	}
//
// It does not return.
func ServiceMain(m *testing.M, service func(), needs ...Need) {
	if os.Getenv(serviceEnv) == "1" {
		os.Args = os.Args[:1] // the service's flags, not the test binary's
		service()
		os.Exit(0)
	}
	Main(m, needs...)
}

// ServiceOptions configures StartService.
type ServiceOptions struct {
	// Name names the service in errors and logs, e.g. "personalizer".
	Name string
	// Env holds the service's FRESHET_* variables. The process gets the
	// test's environment, these, FRESHET_LOG_FORMAT=console and
	// FRESHET_ADMIN_ADDR (a free port; AdminAddr tells which).
	Env []string
	// Dir is the working directory. Empty means the test's.
	Dir string
	// ReadyTimeout bounds the wait for /readyz. Zero means 60s.
	ReadyTimeout time.Duration
}

// Service is a Freshet service that a test runs as a separate process: the
// test binary itself, started again in ServiceMain's service mode. It dies
// with the test binary (pkg/servers' Pdeathsig), and is killed when the test
// ends; when the test failed, its output is logged.
type Service struct {
	name  string
	admin string
	cmd   *servers.Command
	once  sync.Once
	err   error
}

// StartService starts the package's service and waits until its /readyz
// answers 200. It fails tb when the process exits first or is not ready in
// time, with the process's output.
func StartService(tb testing.TB, opts ServiceOptions) *Service {
	tb.Helper()
	ready(tb, false)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	admin := l.Addr().String()
	l.Close()
	env := append(os.Environ(), serviceEnv+"=1", "FRESHET_ADMIN_ADDR="+admin, "FRESHET_LOG_FORMAT=console")
	cmd, err := servers.StartCommand(servers.CommandOptions{
		Name:    opts.Name,
		Path:    os.Args[0],
		Args:    []string{"-test.run=^$"}, // should service mode be lost, run no test
		Env:     append(env, opts.Env...),
		Dir:     opts.Dir,
		LogFile: filepath.Join(tb.TempDir(), opts.Name+".log"),
	})
	if err != nil {
		tb.Fatal(err)
	}
	s := &Service{name: opts.Name, admin: admin, cmd: cmd}
	tb.Cleanup(func() {
		if err := s.Kill(); err != nil {
			tb.Errorf("testenv: %v", err)
		}
		if tb.Failed() {
			tb.Logf("%s output:\n%s", s.name, s.Output())
		}
	})
	timeout := opts.ReadyTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		if resp, err := hc.Get("http://" + admin + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case <-cmd.Done():
			tb.Fatalf("%s exited before it was ready (%v)", s.name, cmd.Err())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s not ready after %v", s.name, timeout)
		}
	}
}

// AdminAddr is the host:port of the service's /healthz, /readyz and
// /metrics.
func (s *Service) AdminAddr() string { return s.admin }

// Pid is the process id.
func (s *Service) Pid() int { return s.cmd.Pid() }

// Done is closed when the process has exited.
func (s *Service) Done() <-chan struct{} { return s.cmd.Done() }

// Output returns the tail of what the process wrote.
func (s *Service) Output() string { return s.cmd.Output() }

// Kill sends SIGKILL and returns once the process is gone. It may be called
// from any goroutine (a kfake control function, say), and more than once.
func (s *Service) Kill() error {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.err = s.cmd.Kill(ctx)
	})
	return s.err
}

// Stop sends SIGTERM and waits up to 30s for the process to exit, and fails
// tb unless it exited by itself with status 0: a graceful shutdown.
func (s *Service) Stop(tb testing.TB) {
	tb.Helper()
	var err error
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		err = s.cmd.Stop(ctx, 30*time.Second)
		s.err = err
	})
	if err == nil {
		err = s.cmd.Err()
	}
	if err != nil {
		tb.Errorf("%s: graceful stop: %v", s.name, err)
	}
}
