package servers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults shared by every launcher.
const (
	// DefaultReadyTimeout is how long Start waits for a server to answer
	// when the options leave ReadyTimeout at zero.
	DefaultReadyTimeout = 30 * time.Second
	// DefaultStopTimeout is how long Stop waits for a graceful shutdown
	// before it kills the process group, when StopTimeout is zero.
	DefaultStopTimeout = 10 * time.Second

	// portAttempts is how many free ports Start tries when another process
	// takes the port between picking it and the server binding it.
	portAttempts = 5
	// logTailBytes bounds how much of a log an error quotes.
	logTailBytes = 4096
)

// errExited is returned by waitReady when the process ended before it
// answered.
var errExited = errors.New("exited before it was ready")

// FreePort returns a TCP port on 127.0.0.1 that was free when it was
// picked. Another process may take it before the caller binds it: the
// launchers of this package retry with a new port when that happens.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// freePort is FreePort, replaced in tests to hand out a taken port.
var freePort = FreePort

// pickPorts returns ports with each zero replaced by a distinct free port.
func pickPorts(ports ...int) ([]int, error) {
	out := append([]int(nil), ports...)
	used := map[int]bool{}
	for _, p := range ports {
		used[p] = true
	}
	for i := range out {
		for out[i] == 0 {
			p, err := freePort()
			if err != nil {
				return nil, err
			}
			if !used[p] {
				used[p] = true
				out[i] = p
			}
		}
	}
	return out, nil
}

// spawner starts every child process from one goroutine locked to its OS
// thread, which never exits. Pdeathsig fires when the thread that forked
// the child dies, not the process (https://go.dev/issue/27505); forking
// from a thread that lives as long as the process makes "the parent died"
// mean what it says.
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func spawn(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread must outlive every child
			for r := range spawner.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	r := spawnReq{cmd: cmd, done: make(chan error, 1)}
	spawner.reqs <- r
	return <-r.done
}

// procAttr returns the attributes every server process gets: its own
// process group (so Stop can kill it and its children at once, and a
// terminal's Ctrl-C reaches the test first), SIGKILL when the parent dies,
// and optionally another user.
func procAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
}

// process is a started server process whose output goes to a log file.
type process struct {
	name     string
	cmd      *exec.Cmd
	logPath  string
	logStart int64         // size of the log when this process started
	done     chan struct{} // closed once the process has been waited for
	waitErr  error         // valid after done is closed
}

// startProcess starts path with args, appending its stdout and stderr to
// logPath.
func startProcess(name, logPath string, cred *syscall.Credential, env []string, path string, args ...string) (*process, error) {
	return startProcessAs(name, logPath, "", cred, env, path, args...)
}

// startProcessIn starts path in the working directory dir (empty: the
// caller's) as the calling user.
func startProcessIn(name, logPath, dir string, env []string, path string, args ...string) (*process, error) {
	return startProcessAs(name, logPath, dir, nil, env, path, args...)
}

func startProcessAs(name, logPath, dir string, cred *syscall.Credential, env []string, path string, args ...string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", name, err)
	}
	var start int64
	if fi, err := logf.Stat(); err == nil {
		start = fi.Size()
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = env
	cmd.Dir = dir
	cmd.SysProcAttr = procAttr(cred)
	if err := spawn(cmd); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, logStart: start, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// pid returns the process id, which is also its process group id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// output returns the tail of what this process wrote to its log.
func (p *process) output() string { return tailFile(p.logPath, p.logStart) }

// waitReady calls check until it succeeds, the process exits, ctx ends or
// timeout passes. check gets a context bounded to one attempt.
func (p *process) waitReady(ctx context.Context, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		last = check(actx)
		acancel()
		if last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s %w (%v)", p.name, errExited, p.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %w (last check: %v)", p.name, timeout, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// stop sends sig to the process, waits up to grace (or until ctx ends) for
// it to exit, then kills its whole process group and waits for the group
// to be gone. It is safe to call on a process that already exited.
func (p *process) stop(ctx context.Context, sig syscall.Signal, grace time.Duration) error {
	var ctxErr error
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(sig)
		t := time.NewTimer(grace)
		select {
		case <-p.done:
		case <-t.C:
		case <-ctx.Done():
			ctxErr = ctx.Err()
		}
		t.Stop()
	}
	pgid := p.pid()
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("stop %s (pid %d): still running after SIGKILL", p.name, pgid)
		}
	}
	// Whatever the leader left in its group (it is gone, so the group id
	// cannot have been reused while members remain) is killed too.
	if err := waitGroupGone(pgid, 10*time.Second); err != nil {
		return fmt.Errorf("stop %s: %w", p.name, err)
	}
	if ctxErr != nil {
		return fmt.Errorf("stop %s: killed, graceful shutdown cut short: %w", p.name, ctxErr)
	}
	return nil
}

// waitGroupGone waits until no live (non-zombie) process is left in the
// process group pgid.
func waitGroupGone(pgid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pids := groupMembers(pgid)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v of group %d still alive", pids, pgid)
		}
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		time.Sleep(20 * time.Millisecond)
	}
}

// groupMembers lists the live (non-zombie) processes of process group
// pgid, from /proc. Zombies are left out: an orphan is reaped by init,
// which may take its time, and a zombie holds no port or file.
func groupMembers(pgid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		state, pg, ok := procStat(pid)
		if ok && pg == pgid && state != 'Z' && state != 'X' {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procStat reads the state and process group of pid from /proc/pid/stat.
func procStat(pid int) (state byte, pgid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	return parseProcStat(b)
}

// parseProcStat reads the state and process group from the text of a
// /proc/pid/stat file: "pid (comm) state ppid pgrp ...", where comm may
// hold spaces and parentheses.
func parseProcStat(b []byte) (state byte, pgid int, ok bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 || len(f[0]) != 1 {
		return 0, 0, false
	}
	pg, err := strconv.Atoi(f[2])
	if err != nil {
		return 0, 0, false
	}
	return f[0][0], pg, true
}

// ProcessAlive reports whether pid is a live process (a zombie counts as
// gone). Tests use it to check that Stop left nothing running.
func ProcessAlive(pid int) bool {
	state, _, ok := procStat(pid)
	return ok && state != 'Z' && state != 'X'
}

// GroupAlive reports whether any live process is left in process group
// pgid. Every server process leads its own group, so its pid is its pgid.
func GroupAlive(pgid int) bool { return len(groupMembers(pgid)) > 0 }

// tailFile returns up to the last logTailBytes of path written after
// offset from, starting at a line boundary.
func tailFile(path string, from int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	start := from
	if fi.Size()-start > logTailBytes {
		start = fi.Size() - logTailBytes
	}
	if start < 0 || start > fi.Size() {
		start = 0
	}
	b, err := io.ReadAll(io.NewSectionReader(f, start, fi.Size()-start))
	if err != nil {
		return fmt.Sprintf("(read log: %v)", err)
	}
	if start > from {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "(log is empty)"
	}
	return s
}

// withLog wraps err with the tail of the log of p.
func withLog(err error, p *process) error {
	return fmt.Errorf("%w\n--- %s log %s (tail) ---\n%s", err, p.name, p.logPath, p.output())
}

// addrInUse reports whether the output of p says that a port was taken.
func addrInUse(p *process) bool {
	out := p.output()
	return strings.Contains(out, "Address already in use") || strings.Contains(out, "address already in use")
}

// workDir is a server's folder and whether Stop removes it.
type workDir struct {
	path      string
	temporary bool
}

// prepareDir returns dir made absolute and created, or a new temporary
// folder when dir is empty. Temporary folders are named
// freshet-<kind>-<pid>-* in os.TempDir, which lets RemoveStaleTempDirs
// find the ones a killed process left behind.
func prepareDir(kind, dir string) (workDir, error) {
	if dir == "" {
		d, err := os.MkdirTemp("", fmt.Sprintf("freshet-%s-%d-*", kind, os.Getpid()))
		if err != nil {
			return workDir{}, fmt.Errorf("create temporary folder for %s: %w", kind, err)
		}
		return workDir{path: d, temporary: true}, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return workDir{}, fmt.Errorf("folder for %s: %w", kind, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return workDir{}, fmt.Errorf("create folder for %s: %w", kind, err)
	}
	return workDir{path: abs}, nil
}

// remove deletes the folder when it is temporary.
func (w workDir) remove() error {
	if !w.temporary {
		return nil
	}
	if err := os.RemoveAll(w.path); err != nil {
		return fmt.Errorf("remove %s: %w", w.path, err)
	}
	return nil
}

var staleDirRE = regexp.MustCompile(`^freshet-(postgres|clickhouse|varnish)-(\d+)-`)

// RemoveStaleTempDirs removes the temporary folders that a process killed
// before its Stop ran left in os.TempDir (their processes died with it,
// through Pdeathsig). Only folders of processes that no longer run are
// touched. It returns the folders it removed.
func RemoveStaleTempDirs() ([]string, error) {
	entries, err := os.ReadDir(os.TempDir())
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", os.TempDir(), err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		m := staleDirRE.FindStringSubmatch(e.Name())
		if m == nil || !e.IsDir() {
			continue
		}
		pid, err := strconv.Atoi(m[2])
		if err != nil || pid == os.Getpid() || ProcessAlive(pid) {
			continue
		}
		p := filepath.Join(os.TempDir(), e.Name())
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, p)
	}
	return removed, errors.Join(errs...)
}

// lookPath finds the first of names on PATH or in the extra folders
// (sbin folders are often missing from a non-root PATH).
func lookPath(names []string, extra ...string) (string, bool) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, true
		}
		for _, d := range extra {
			p := filepath.Join(d, n)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				return p, true
			}
		}
	}
	return "", false
}

// orDefault returns d when v is zero.
func orDefault(v, d time.Duration) time.Duration {
	if v <= 0 {
		return d
	}
	return v
}

// runCommand runs a short-lived helper command to completion and returns
// its combined output. It also dies with the parent.
func runCommand(ctx context.Context, cred *syscall.Credential, path string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = procAttr(cred)
	if err := spawn(cmd); err != nil {
		return "", fmt.Errorf("run %s: %w", filepath.Base(path), err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return out.String(), fmt.Errorf("run %s: %w", filepath.Base(path), ctx.Err())
	}
}
