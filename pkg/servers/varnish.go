package servers

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultVarnishStorage is the storage of a Varnish whose options leave
// Storage empty.
const DefaultVarnishStorage = "malloc,64m"

// VarnishOptions configures StartVarnish. VCL is required; the rest may be
// left zero.
type VarnishOptions struct {
	// VCL is the text of the VCL program, written to Dir/default.vcl. It
	// is compiled (varnishd -C) before the server starts: a VCL that does
	// not compile yields a *VCLError with the compiler's message.
	VCL string
	// Dir is the server's folder: default.vcl, work/ (varnishd -n) and the
	// log. Empty means a new temporary folder, removed by Stop. A folder
	// given here is kept by Stop.
	Dir string
	// Port is the HTTP port on 127.0.0.1. Zero means a free port.
	Port int
	// AdminPort is the management (CLI) port on 127.0.0.1. Zero means a
	// free port. When either port is zero and is taken before varnishd
	// binds it, Start picks new free ports and tries again.
	AdminPort int
	// Storage is the -s argument. Empty means DefaultVarnishStorage
	// (malloc,64m).
	Storage string
	// Params are run-time parameters (-p name=value), e.g. default_ttl.
	Params map[string]string
	// LogFile receives varnishd's stdout and stderr (appended). Empty means
	// Dir/varnishd.log.
	LogFile string
	// ReadyTimeout bounds the wait for an HTTP answer on Port. Zero means
	// DefaultReadyTimeout (30s).
	ReadyTimeout time.Duration
	// StopTimeout bounds the graceful shutdown (SIGTERM) before the process
	// group is killed. Zero means DefaultStopTimeout (10s).
	StopTimeout time.Duration
}

// Varnish is a running varnishd started by StartVarnish. Methods are safe
// for concurrent use.
type Varnish struct {
	opts      VarnishOptions
	dir       workDir
	bins      varnishBins
	port      int
	adminPort int
	logPath   string

	mu      sync.Mutex
	proc    *process
	stopped bool
}

type varnishBins struct{ varnishd, varnishadm, varnishstat string }

func findVarnish() (varnishBins, error) {
	notInstalled := &NotInstalledError{Binary: "varnishd", Packages: []string{"varnish", "varnish-modules"}}
	var b varnishBins
	var ok bool
	if b.varnishd, ok = lookPath([]string{"varnishd"}, "/usr/sbin"); !ok {
		return b, notInstalled
	}
	if b.varnishadm, ok = lookPath([]string{"varnishadm"}, "/usr/bin"); !ok {
		notInstalled.Binary = "varnishadm"
		return b, notInstalled
	}
	if b.varnishstat, ok = lookPath([]string{"varnishstat"}, "/usr/bin"); !ok {
		notInstalled.Binary = "varnishstat"
		return b, notInstalled
	}
	return b, nil
}

// StartVarnish checks the VCL, starts varnishd in the foreground and
// returns once varnishd answers HTTP on its port. varnishd runs with
// "-j none" (no privilege separation) so that it keeps the kill-on-parent-
// death setting: a jail switches it to another user, which clears that
// setting. The process group dies with the calling process even if Stop is
// never called.
func StartVarnish(ctx context.Context, opts VarnishOptions) (*Varnish, error) {
	if strings.TrimSpace(opts.VCL) == "" {
		return nil, errors.New("start varnish: VarnishOptions.VCL is empty")
	}
	bins, err := findVarnish()
	if err != nil {
		return nil, err
	}
	dir, err := prepareDir("varnish", opts.Dir)
	if err != nil {
		return nil, err
	}
	v := &Varnish{opts: opts, dir: dir, bins: bins, logPath: opts.LogFile}
	if v.logPath == "" {
		v.logPath = filepath.Join(dir.path, "varnishd.log")
	}
	fail := func(err error) (*Varnish, error) {
		_ = dir.remove()
		return nil, err
	}
	// The VCL compiler may run as another user: let it read the folder.
	if err := os.Chmod(dir.path, 0o755); err != nil {
		return fail(fmt.Errorf("start varnish: %w", err))
	}
	if err := os.WriteFile(v.VCLFile(), []byte(opts.VCL), 0o644); err != nil {
		return fail(fmt.Errorf("start varnish: write VCL: %w", err))
	}
	if err := compileVCL(ctx, bins.varnishd, v.WorkDir(), v.VCLFile()); err != nil {
		return fail(err)
	}
	for attempt := 1; ; attempt++ {
		ports, err := pickPorts(opts.Port, opts.AdminPort)
		if err != nil {
			return fail(err)
		}
		v.port, v.adminPort = ports[0], ports[1]
		err = v.start(ctx)
		if err == nil {
			return v, nil
		}
		fixed := opts.Port != 0 && opts.AdminPort != 0
		if fixed || attempt == portAttempts || !errors.Is(err, errPortTaken) {
			return fail(err)
		}
	}
}

// CheckVCL compiles vcl with varnishd -C and returns a *VCLError (which
// wraps ErrBadVCL) with the compiler's message when it does not compile.
func CheckVCL(ctx context.Context, vcl string) error {
	bins, err := findVarnish()
	if err != nil {
		return err
	}
	dir, err := prepareDir("varnish", "")
	if err != nil {
		return err
	}
	defer dir.remove()
	if err := os.Chmod(dir.path, 0o755); err != nil {
		return fmt.Errorf("check VCL: %w", err)
	}
	file := filepath.Join(dir.path, "check.vcl")
	if err := os.WriteFile(file, []byte(vcl), 0o644); err != nil {
		return fmt.Errorf("check VCL: %w", err)
	}
	return compileVCL(ctx, bins.varnishd, filepath.Join(dir.path, "work"), file)
}

// compileVCL runs varnishd -C, which prints the generated C (on success)
// or the compiler's complaint, and exits non-zero on a bad VCL.
func compileVCL(ctx context.Context, varnishd, workDir, file string) error {
	out, err := runCommand(ctx, nil, varnishd, "-C", "-j", "none", "-n", workDir, "-f", file)
	if err == nil {
		return nil
	}
	var exitErr interface{ ExitCode() int }
	if !errors.As(err, &exitErr) {
		return fmt.Errorf("check VCL %s: %w", file, err)
	}
	msg := out
	if i := strings.Index(msg, "Message from VCC-compiler"); i >= 0 {
		msg = msg[i:]
	} else if i := strings.Index(msg, "Error:"); i >= 0 {
		msg = msg[i:]
	}
	if len(msg) > logTailBytes {
		msg = msg[len(msg)-logTailBytes:]
	}
	return &VCLError{Message: strings.TrimSpace(msg)}
}

// start starts varnishd on the current ports and waits until it answers.
func (v *Varnish) start(ctx context.Context) error {
	storage := v.opts.Storage
	if storage == "" {
		storage = DefaultVarnishStorage
	}
	args := []string{
		"-F", "-j", "none",
		"-a", v.Addr(), "-T", v.AdminAddr(),
		"-n", v.WorkDir(), "-f", v.VCLFile(), "-s", storage,
	}
	keys := make([]string, 0, len(v.opts.Params))
	for k := range v.opts.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-p", k+"="+v.opts.Params[k])
	}
	p, err := startProcess("varnishd", v.logPath, nil, []string{"PATH=/usr/sbin:/usr/bin:/bin"}, v.bins.varnishd, args...)
	if err != nil {
		return err
	}
	err = p.waitReady(ctx, orDefault(v.opts.ReadyTimeout, DefaultReadyTimeout), v.probe)
	if err != nil {
		stopErr := p.stop(context.Background(), syscall.SIGTERM, orDefault(v.opts.StopTimeout, DefaultStopTimeout))
		if errors.Is(err, errExited) && (addrInUse(p) || strings.Contains(p.output(), "could not be listened on")) {
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return withLog(fmt.Errorf("start varnishd on %s (admin %s): %w", v.Addr(), v.AdminAddr(), errors.Join(err, stopErr)), p)
	}
	v.mu.Lock()
	v.proc = p
	v.mu.Unlock()
	return nil
}

// probe sends a request that varnishd rejects at the protocol level (a bad
// Content-Length) and expects an HTTP status line back. The request never
// reaches the VCL, the cache or the backend.
func (v *Varnish) probe(ctx context.Context) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", v.Addr())
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := conn.Write([]byte("GET /freshet-ready-probe HTTP/1.1\r\nHost: probe\r\nContent-Length: x\r\n\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if !strings.HasPrefix(line, "HTTP/1.") {
		return fmt.Errorf("unexpected answer %q", line)
	}
	return nil
}

// Addr returns host:port of the HTTP listener.
func (v *Varnish) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(v.port)) }

// URL returns the base URL of the HTTP listener, e.g. http://127.0.0.1:6081.
func (v *Varnish) URL() string { return "http://" + v.Addr() }

// AdminAddr returns host:port of the management (CLI) listener. Its secret
// is in WorkDir()/_.secret; Adm talks to it.
func (v *Varnish) AdminAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(v.adminPort))
}

// Dir returns the server's folder.
func (v *Varnish) Dir() string { return v.dir.path }

// WorkDir returns the varnishd -n folder, which varnishadm -n and
// varnishstat -n read.
func (v *Varnish) WorkDir() string { return filepath.Join(v.dir.path, "work") }

// VCLFile returns the path of the loaded VCL.
func (v *Varnish) VCLFile() string { return filepath.Join(v.dir.path, "default.vcl") }

// LogFile returns the path of varnishd's log.
func (v *Varnish) LogFile() string { return v.logPath }

// Pid returns the process id of the management process, which leads the
// process group of the cache worker too; 0 once stopped.
func (v *Varnish) Pid() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.proc == nil {
		return 0
	}
	return v.proc.pid()
}

// Adm runs a varnishadm command (e.g. "ban", "req.url ~ ^/a") and returns
// its output.
func (v *Varnish) Adm(ctx context.Context, args ...string) (string, error) {
	full := append([]string{"-n", v.WorkDir(), "-t", "5"}, args...)
	out, err := runCommand(ctx, nil, v.bins.varnishadm, full...)
	if err != nil {
		return out, fmt.Errorf("varnishadm %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out))
	}
	return out, nil
}

// Stats returns every counter of varnishstat -1 by name, e.g.
// "MAIN.cache_hit", "MAIN.n_purges", "MAIN.client_req". Worker threads
// publish their counts when idle, so a count may trail the requests just
// answered by a moment: poll until it adds up.
func (v *Varnish) Stats(ctx context.Context) (map[string]uint64, error) {
	out, err := runCommand(ctx, nil, v.bins.varnishstat, "-n", v.WorkDir(), "-1", "-j")
	if err != nil {
		return nil, fmt.Errorf("varnishstat: %w: %s", err, strings.TrimSpace(out))
	}
	return parseVarnishStats([]byte(out))
}

// parseVarnishStats decodes the output of varnishstat -1 -j (version 1:
// {"version": 1, "timestamp": ..., "counters": {name: {"value": n, ...}}}).
func parseVarnishStats(out []byte) (map[string]uint64, error) {
	var doc struct {
		Counters map[string]struct {
			Value uint64 `json:"value"`
		} `json:"counters"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("decode varnishstat output: %w", err)
	}
	if doc.Counters == nil {
		return nil, errors.New("decode varnishstat output: no counters")
	}
	stats := make(map[string]uint64, len(doc.Counters))
	for k, c := range doc.Counters {
		stats[k] = c.Value
	}
	return stats, nil
}

// Stop shuts varnishd down (SIGTERM to the management process, which stops
// the cache worker), kills the process group if that takes longer than
// StopTimeout or ctx ends, and removes the folder when it is temporary.
// Calling it again does nothing and returns nil.
func (v *Varnish) Stop(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.stopped {
		return nil
	}
	v.stopped = true
	var err error
	if v.proc != nil {
		err = v.proc.stop(ctx, syscall.SIGTERM, orDefault(v.opts.StopTimeout, DefaultStopTimeout))
		v.proc = nil
	}
	return errors.Join(err, v.dir.remove())
}
