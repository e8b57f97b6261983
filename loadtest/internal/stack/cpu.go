package stack

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/freshet/freshet/loadtest/internal/safety"
)

// clockTicks is USER_HZ, 100 on Linux.
const clockTicks = 100

// procInfo is what /proc/<pid>/stat says about a process.
type procInfo struct {
	pid, ppid int
	comm      string
	ticks     int64 // utime + stime + cutime + cstime
}

// parseStat reads the fields of /proc/<pid>/stat that matter here. comm
// is between the first '(' and the last ')' and may hold spaces.
func parseStat(b string) (procInfo, bool) {
	open, end := strings.IndexByte(b, '('), strings.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procInfo{}, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(b[:open]))
	if err != nil {
		return procInfo{}, false
	}
	f := strings.Fields(b[end+1:])
	// f[0] is state (field 3); ppid is field 4, utime..cstime 14..17.
	if len(f) < 15 {
		return procInfo{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	var ticks int64
	for _, i := range []int{11, 12, 13, 14} {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += v
	}
	return procInfo{pid: pid, ppid: ppid, comm: b[open+1 : end], ticks: ticks}, true
}

func allProcs() map[int]procInfo {
	out := map[int]procInfo{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		if p, ok := parseStat(string(b)); ok {
			out[p.pid] = p
		}
	}
	return out
}

// part names a process of the stack: the part of the pipeline it is.
func (s *Stack) part(p procInfo, exe string) string {
	base := filepath.Base(exe)
	switch {
	case p.pid == s.cmd.Process.Pid:
		return "kafka (kfake, in the runner)"
	case strings.HasPrefix(exe, filepath.Join(s.dir, "stack", "bin")+"/"):
		return base
	case base == "postgres" || strings.HasPrefix(p.comm, "postgres"):
		return "postgres"
	case strings.HasPrefix(base, "clickhouse"):
		return "clickhouse"
	case strings.HasPrefix(base, "varnish") || p.comm == "cache-main":
		return "varnish"
	}
	return "other: " + p.comm
}

// CPU returns the CPU time, in seconds, that each part of the stack has
// used so far (processes that are gone are not counted): the runner's
// descendants by part, the replicas of AddGateway as sse-gateway, and this
// process and its children as "load generator". Subtract two readings to
// get a scenario's.
func (s *Stack) CPU() map[string]float64 {
	procs := allProcs()
	children := map[int][]int{}
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
	out := map[string]float64{}
	var walk func(pid int, name func(procInfo) string)
	walk = func(pid int, name func(procInfo) string) {
		p, ok := procs[pid]
		if !ok {
			return
		}
		out[name(p)] += float64(p.ticks) / clockTicks
		for _, c := range children[pid] {
			walk(c, name)
		}
	}
	walk(s.cmd.Process.Pid, func(p procInfo) string {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.pid))
		return s.part(p, exe)
	})
	for _, g := range s.Gateways() {
		walk(g.Pid(), func(procInfo) string { return "sse-gateway" })
	}
	s.mu.Lock()
	gone := s.goneGateways
	s.mu.Unlock()
	if gone > 0 {
		out["sse-gateway"] += gone
		out["load generator"] -= gone
	}
	self := os.Getpid()
	gws := map[int]bool{}
	for _, g := range s.Gateways() {
		gws[g.Pid()] = true
	}
	if p, ok := procs[self]; ok {
		out["load generator"] += float64(p.ticks) / clockTicks
		for _, c := range children[self] {
			if c != s.cmd.Process.Pid && !gws[c] {
				walk(c, func(procInfo) string { return "load generator" })
			}
		}
	}
	return out
}

// Since returns now minus before, part by part, dropping parts that used
// nothing.
func Since(before, now map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range now {
		if d := v - before[k]; d > 0.005 {
			out[k] = d
		}
	}
	return out
}

// Pids returns the process ids of a service the runner started (by binary
// name), e.g. "personalizer"; not the replicas of AddGateway.
func (s *Stack) Pids(service string) []int {
	extra := map[int]bool{}
	for _, g := range s.Gateways() {
		extra[g.Pid()] = true
	}
	var out []int
	for _, p := range allProcs() {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.pid))
		if exe == s.Bin(service) && !extra[p.pid] {
			out = append(out, p.pid)
		}
	}
	return out
}

// Pause stops a service's one process (SIGSTOP, as a slow consumer would
// be) and returns what resumes it (SIGCONT; calling it again does nothing).
func (s *Stack) Pause(service string) (resume func(), err error) {
	pids := s.Pids(service)
	if len(pids) != 1 {
		return nil, fmt.Errorf("pause %s: want one process, found %d", service, len(pids))
	}
	if err := syscall.Kill(pids[0], syscall.SIGSTOP); err != nil {
		return nil, fmt.Errorf("pause %s: %w", service, err)
	}
	var once sync.Once
	return func() { once.Do(func() { _ = syscall.Kill(pids[0], syscall.SIGCONT) }) }, nil
}

// ServiceRSS is the resident set, in KiB, of the runner's instance(s) of a
// service.
func (s *Stack) ServiceRSS(service string) int64 {
	var sum int64
	for _, pid := range s.Pids(service) {
		sum += rss(pid)
	}
	return sum
}

// Metric sums every series of a Prometheus counter or gauge on an admin
// listener's /metrics whose name is name (labels ignored, or only the
// series whose labels contain every one of match, e.g. `outcome="ok"`).
func Metric(ctx context.Context, admin, name string, match ...string) (float64, error) {
	req, err := httpGet(ctx, "http://"+admin+"/metrics")
	if err != nil {
		return 0, err
	}
	defer req.Close()
	var sum float64
	sc := bufio.NewScanner(req)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, name) {
			continue
		}
		rest := l[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		ok := true
		for _, m := range match {
			ok = ok && strings.Contains(rest, m)
		}
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum, sc.Err()
}

type readCloser interface {
	Read([]byte) (int, error)
	Close() error
}

func httpGet(ctx context.Context, url string) (readCloser, error) {
	if err := safety.CheckURL(url); err != nil {
		return nil, err
	}
	cl := safety.HTTPClient(10e9)
	resp, err := cl.Get(url)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return resp.Body, nil
}

// Histogram reads the cumulative buckets of a Prometheus histogram (the
// series <name>_bucket whose labels contain every one of match), summed
// over the other labels: upper bound -> count.
func Histogram(ctx context.Context, admin, name string, match ...string) (map[float64]float64, error) {
	body, err := httpGet(ctx, "http://"+admin+"/metrics")
	if err != nil {
		return nil, err
	}
	defer body.Close()
	out := map[float64]float64{}
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, name+"_bucket{") {
			continue
		}
		ok := true
		for _, m := range match {
			ok = ok && strings.Contains(l, m)
		}
		i := strings.Index(l, `le="`)
		if !ok || i < 0 {
			continue
		}
		rest := l[i+4:]
		j := strings.IndexByte(rest, '"')
		if j < 0 {
			continue
		}
		le, err := strconv.ParseFloat(rest[:j], 64) // "+Inf" parses as +Inf
		if err != nil {
			continue
		}
		f := strings.Fields(l)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			out[le] += v
		}
	}
	return out, sc.Err()
}

// BucketQuantile returns the upper bound of the bucket that holds the q-th
// quantile (0 < q <= 1) of the observations between two readings of a
// cumulative histogram, and how many observations there were. The true
// quantile is at most that bound.
func BucketQuantile(before, after map[float64]float64, q float64) (bound, n float64) {
	les := make([]float64, 0, len(after))
	for le := range after {
		les = append(les, le)
	}
	sort.Float64s(les)
	if len(les) == 0 {
		return 0, 0
	}
	total := after[les[len(les)-1]] - before[les[len(les)-1]]
	if total <= 0 {
		return 0, 0
	}
	for _, le := range les {
		if after[le]-before[le] >= q*total {
			return le, total
		}
	}
	return les[len(les)-1], total
}
