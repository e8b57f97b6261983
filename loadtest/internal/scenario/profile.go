package scenario

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/freshet/freshet/loadtest/internal/safety"
)

// PprofSeconds is how long each service's CPU profile runs, from the start
// of a scenario.
const PprofSeconds = 20

// profiler records where the CPU went while a scenario ran: perf over the
// whole machine (every process, Postgres, ClickHouse and Varnish included,
// and whatever else runs here), and the Go CPU profile of each service
// that serves /debug/pprof/ on its admin port.
type profiler struct {
	perf  *exec.Cmd
	data  string
	wg    sync.WaitGroup
	mu    sync.Mutex
	files []string
}

// startProfiles starts perf (when installed) and the services' pprof.
func (e *Env) startProfiles(ctx context.Context, name string) *profiler {
	p := &profiler{}
	if !e.Profile {
		return p
	}
	if perf, err := exec.LookPath("perf"); err == nil {
		p.data = filepath.Join(e.Dir, name+".perf.data")
		cmd := exec.Command(perf, "record", "-F", "99", "-a", "-g", "-o", p.data, "--", "sleep", "900")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err == nil {
			p.perf = cmd
		}
	}
	cl := safety.HTTPClient((PprofSeconds + 30) * time.Second)
	for _, svc := range e.Stack.Services() {
		admin := e.Stack.Admin(svc)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			req, _ := newGet(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, PprofSeconds))
			resp, err := cl.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				return // this service does not serve pprof
			}
			path := filepath.Join(e.Dir, name+"-"+svc+".pprof")
			f, err := os.Create(path)
			if err != nil {
				return
			}
			_, err = io.Copy(f, resp.Body)
			f.Close()
			if err == nil {
				p.mu.Lock()
				p.files = append(p.files, path)
				p.mu.Unlock()
			}
		}()
	}
	return p
}

// stop ends perf, writes its reports (CPU by process, and by process and
// function) next to its data, waits for the pprof profiles, and returns
// every file written.
func (p *profiler) stop() []string {
	if p.perf != nil {
		_ = syscall.Kill(-p.perf.Process.Pid, syscall.SIGINT)
		done := make(chan struct{})
		go func() { p.perf.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-p.perf.Process.Pid, syscall.SIGKILL)
			<-done
		}
		for _, r := range []struct{ suffix, sort string }{{".by-process.txt", "comm"}, {".by-function.txt", "comm,sym"}} {
			out := strings.TrimSuffix(p.data, ".data") + r.suffix
			cmd := exec.Command("perf", "report", "-i", p.data, "--stdio", "--no-children", "-g", "none", "--percent-limit", "0.5", "--sort", r.sort)
			b, err := cmd.Output()
			if err == nil && os.WriteFile(out, b, 0o644) == nil {
				p.mu.Lock()
				p.files = append(p.files, out)
				p.mu.Unlock()
			}
		}
	}
	waited := make(chan struct{})
	go func() { p.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After((PprofSeconds + 30) * time.Second):
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.files...)
}
