package testenv

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/servers"
)

// Environment variables read by this package.
const (
	// RequireServersEnv set to 1 turns a missing server binary into a test
	// failure instead of a skip. CI sets it.
	RequireServersEnv = "FRESHET_REQUIRE_SERVERS"
	// KeepTestdataEnv set to 1 keeps the servers' folders (and the
	// per-test databases in them) after the run, for debugging; their
	// paths are printed when the package's tests end.
	KeepTestdataEnv = "FRESHET_KEEP_TESTDATA"
)

// Need names a server that Main starts before the tests run.
type Need int

// The servers a package can ask Main to start up front. Servers that are
// not listed start on first use instead; listing them only moves the start
// (done concurrently) before the first test.
const (
	NeedPostgres Need = iota + 1
	NeedClickHouse
	NeedKafka
)

// String returns the server's name, e.g. "postgres".
func (n Need) String() string {
	switch n {
	case NeedPostgres:
		return "postgres"
	case NeedClickHouse:
		return "clickhouse"
	case NeedKafka:
		return "kafka"
	}
	return fmt.Sprintf("Need(%d)", int(n))
}

const (
	startTimeout = 90 * time.Second
	stopTimeout  = 30 * time.Second
	opTimeout    = 30 * time.Second
)

// lazy starts a server once, on first use.
type lazy[T any] struct {
	once sync.Once
	val  T
	err  error
}

func (l *lazy[T]) get(start func() (T, error)) (T, error) {
	l.once.Do(func() { l.val, l.err = start() })
	return l.val, l.err
}

type stopper interface{ Stop(context.Context) error }

// env is the state of the package's test binary.
var env struct {
	inMain atomic.Bool

	postgres   lazy[*servers.Postgres]
	clickhouse lazy[*servers.ClickHouse]
	kafka      lazy[*servers.Kfake]

	mu       sync.Mutex
	closed   bool
	running  []stopper // stopped in reverse order by shutdown
	kept     []string  // folders kept with FRESHET_KEEP_TESTDATA=1
	prefixes map[testing.TB]string
}

var seq atomic.Int64 // makes names unique within the test binary

// Main runs the package's tests and stops every server they started, also
// when tests fail or the run is interrupted (SIGINT, SIGTERM). Call it from
// TestMain; it does not return. needs are started before the first test.
func Main(m *testing.M, needs ...Need) {
	os.Exit(run(m, needs))
}

func run(m *testing.M, needs []Need) (code int) {
	flag.Parse() // testing.Short below needs the flags
	env.inMain.Store(true)
	if removed, err := servers.RemoveStaleTempDirs(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: removing folders of earlier killed runs: %v\n", err)
	} else if len(removed) > 0 {
		fmt.Fprintf(os.Stderr, "testenv: removed %d folders left by killed test runs\n", len(removed))
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			fmt.Fprintf(os.Stderr, "testenv: %v: stopping servers\n", s)
			shutdown()
			os.Exit(1)
		case <-done:
		}
	}()
	defer func() {
		signal.Stop(sigs)
		close(done)
		if err := shutdown(); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}()

	if !testing.Short() {
		var wg sync.WaitGroup
		for _, n := range needs {
			wg.Go(func() {
				// Errors are kept and reported by the first test that asks.
				switch n {
				case NeedPostgres:
					_, _ = postgresServer()
				case NeedClickHouse:
					_, _ = clickhouseServer()
				case NeedKafka:
					_, _ = kafkaServer()
				}
			})
		}
		wg.Wait()
	}
	return m.Run()
}

// shutdown stops every running server, most recent first. Later calls
// find nothing to stop.
func shutdown() error {
	env.mu.Lock()
	env.closed = true
	running := env.running
	env.running = nil
	kept := env.kept
	env.kept = nil
	env.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	var errs []error
	for i := len(running) - 1; i >= 0; i-- {
		if err := running[i].Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range kept {
		fmt.Fprintf(os.Stderr, "testenv: %s=1: kept %s\n", KeepTestdataEnv, d)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stop servers: %w", err)
	}
	return nil
}

// register records a started server for shutdown, or stops it at once if
// the run is already shutting down.
func register(s stopper) error {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.closed {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		return errors.Join(errors.New("testenv: the test run is shutting down"), s.Stop(ctx))
	}
	env.running = append(env.running, s)
	return nil
}

// unregister forgets a server stopped before the end of the run.
func unregister(s stopper) {
	env.mu.Lock()
	defer env.mu.Unlock()
	for i, r := range env.running {
		if r == s {
			env.running = append(env.running[:i], env.running[i+1:]...)
			return
		}
	}
}

func keepTestdata() bool { return os.Getenv(KeepTestdataEnv) == "1" }

func requireServers() bool { return os.Getenv(RequireServersEnv) == "1" }

// serverDir returns "" (a temporary folder the server removes) or, with
// FRESHET_KEEP_TESTDATA=1, a folder that is kept and reported at the end.
func serverDir(kind string) (string, error) {
	if !keepTestdata() {
		return "", nil
	}
	d, err := os.MkdirTemp("", "freshet-keep-"+kind+"-*")
	if err != nil {
		return "", err
	}
	// Postgres runs as user postgres and varnishd reads its VCL as
	// another user: let them in.
	if err := os.Chmod(d, 0o755); err != nil {
		return "", err
	}
	env.mu.Lock()
	env.kept = append(env.kept, d)
	env.mu.Unlock()
	return d, nil
}

// check stops the test when a server could not be had: a skip naming the
// apt-get command when its binary is missing (a failure when
// FRESHET_REQUIRE_SERVERS=1), a failure otherwise.
func check(tb testing.TB, what string, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	var ni *servers.NotInstalledError
	switch {
	case !errors.As(err, &ni):
		tb.Fatalf("%s: %v", what, err)
	case requireServers():
		tb.Fatalf("%s: %v (%s=1: servers are required)", what, err, RequireServersEnv)
	default:
		tb.Skipf("%s: %v (set %s=1 to fail instead of skipping)", what, err, RequireServersEnv)
	}
}

// ready fails tb when Main is not in charge, and skips it in -short mode
// when it needs a server binary.
func ready(tb testing.TB, binary bool) {
	tb.Helper()
	if !env.inMain.Load() {
		tb.Fatal("testenv: call testenv.Main(m) from TestMain, so that servers are stopped after the tests")
	}
	if binary && testing.Short() {
		tb.Skip("testenv: -short: skipping a test that starts real servers")
	}
}

func ctxFor(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

var unsafeName = regexp.MustCompile(`[^a-z0-9_]+`)

// uniqueName returns a name for tb that is unique in the test binary,
// readable (it holds the test's name), made of [a-z0-9_] and at most max
// bytes long.
func uniqueName(tb testing.TB, max int) string {
	n := fmt.Sprintf("t%d_", seq.Add(1))
	name := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(tb.Name()), "_"), "_")
	if len(n)+len(name) > max {
		name = name[len(n)+len(name)-max:]
	}
	return n + name
}
