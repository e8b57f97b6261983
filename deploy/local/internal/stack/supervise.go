package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/freshet/freshet/pkg/servers"
)

// restartPolicy says when a service that exited is started again: after
// first, doubled at each exit that comes less than stable after the
// previous start, up to max; a service that had been up for stable or more
// before it exited waits first again.
type restartPolicy struct {
	first, max, stable time.Duration
}

// defaultRestart is the policy of `make run`.
var defaultRestart = restartPolicy{first: time.Second, max: 30 * time.Second, stable: time.Minute}

// errServiceStopped is returned by start once the stack stopped the service.
var errServiceStopped = errors.New("service stopped")

// service is a Freshet service the stack runs, and restarts when it exits.
type service struct {
	name  string
	admin string // host:port of /healthz, /readyz, /metrics
	log   string
	path  string   // the binary
	env   []string // its whole environment
	pid   string   // the pid file, Dir/run/<name>.pid

	mu      sync.Mutex
	cmd     *servers.Command // the current process
	started time.Time        // when cmd started
	stopped bool             // stopped by the stack: never started again
}

// start starts the service's process and writes its pid file.
func (svc *service) start() (*servers.Command, error) {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	if svc.stopped {
		return nil, errServiceStopped
	}
	cmd, err := servers.StartCommand(servers.CommandOptions{Name: svc.name, Path: svc.path, Env: svc.env, LogFile: svc.log})
	if err != nil {
		return nil, err
	}
	svc.cmd, svc.started = cmd, time.Now()
	if err := os.WriteFile(svc.pid, []byte(strconv.Itoa(cmd.Pid())+"\n"), 0o644); err != nil {
		_ = cmd.Kill(context.Background())
		return nil, fmt.Errorf("%s: write pid file: %w", svc.name, err)
	}
	return cmd, nil
}

// current returns the current process and when it started.
func (svc *service) current() (*servers.Command, time.Time) {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	return svc.cmd, svc.started
}

// stop stops the service for good: no restart follows. Safe to call twice.
func (svc *service) stop(ctx context.Context, grace time.Duration) error {
	svc.mu.Lock()
	svc.stopped = true
	cmd := svc.cmd
	svc.mu.Unlock()
	if cmd == nil {
		return nil
	}
	err := cmd.Stop(ctx, grace)
	if rmErr := os.Remove(svc.pid); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) && err == nil {
		err = rmErr
	}
	return err
}

func (svc *service) isStopped() bool {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	return svc.stopped
}

// runDir holds the services' pid files.
func (s *Stack) runDir() string { return filepath.Join(s.dir, "run") }

// supervise restarts svc each time it exits (a crash, a kill -9, an exit
// with an error), with the same environment, ports and log file, until ctx
// is done or the stack stops the service (Ctrl-C): it prints each exit,
// with the end of the service's log, and each restart, after the waits of
// s.restart (defaultRestart when zero).
func (s *Stack) supervise(ctx context.Context, svc *service) {
	policy := s.restart
	if policy == (restartPolicy{}) {
		policy = defaultRestart
	}
	backoff := policy.first
	for {
		cmd, started := svc.current()
		select {
		case <-ctx.Done():
			return
		case <-cmd.Done():
		}
		if ctx.Err() != nil || svc.isStopped() {
			return
		}
		if time.Since(started) >= policy.stable {
			backoff = policy.first
		}
		fmt.Fprintf(s.out, "freshet: %s exited (%v); restarting it in %s. Log: %s\n%s\n",
			svc.name, cmd.Err(), backoff, svc.log, indent(lastLines(cmd.Output(), 10)))
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, policy.max)
			t := time.Now()
			cmd, err := svc.start()
			if errors.Is(err, errServiceStopped) {
				return
			}
			if err != nil {
				fmt.Fprintf(s.out, "freshet: %s: restart failed (%v); trying again in %s\n", svc.name, err, backoff)
				continue
			}
			if err := waitReady(ctx, svc, cmd, s.cfg.ReadyTimeout); err != nil {
				if ctx.Err() == nil && !svc.isStopped() {
					fmt.Fprintf(s.out, "freshet: %s restarted (pid %d) but is not ready: %v\n", svc.name, cmd.Pid(), err)
				}
			} else {
				fmt.Fprintf(s.out, "freshet: %s restarted (pid %d), ready in %s\n", svc.name, cmd.Pid(), time.Since(t).Round(10*time.Millisecond))
			}
			break
		}
	}
}

// indent prefixes every line of text with two spaces.
func indent(text string) string {
	if text == "" {
		return ""
	}
	return "  " + strings.ReplaceAll(strings.TrimRight(text, "\n"), "\n", "\n  ")
}
