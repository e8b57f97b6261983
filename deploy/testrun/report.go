package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/freshet/freshet/deploy/internal/debian"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // build-output and build-fail
	Elapsed    float64
}

type testKey struct{ pkg, test string }

// skipped is a test that skipped, with the message it gave.
type skipped struct {
	pkg, test, reason string
}

// report turns go test's JSON events into what a person reads: one line per
// package as it finishes, the full output of every failing test, and a
// summary at the end. It is used from one goroutine.
type report struct {
	out     io.Writer
	output  map[testKey][]string // output of tests still running; test "" is the package's
	skips   map[string]int       // per package
	pkgsOK  int
	pkgsBad []string
	passed  int
	failed  []testKey
	skipped []skipped
}

func newReport(out io.Writer) *report {
	return &report{out: out, output: map[testKey][]string{}, skips: map[string]int{}}
}

// read handles every event of r until EOF. A line that is not JSON (go
// printing something itself) is passed through.
func (r *report) read(rd io.Reader) error {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			fmt.Fprintln(r.out, sc.Text())
			continue
		}
		r.handle(e)
	}
	return sc.Err()
}

const modulePrefix = "github.com/freshet/freshet/"

func short(pkg string) string { return strings.TrimPrefix(pkg, modulePrefix) }

// handle takes one event.
func (r *report) handle(e event) {
	k := testKey{e.Package, e.Test}
	switch e.Action {
	case "build-output":
		io.WriteString(r.out, e.Output)
	case "output":
		r.output[k] = append(r.output[k], e.Output)
	case "pass", "fail", "skip":
		lines := r.output[k]
		delete(r.output, k)
		if e.Test == "" {
			r.packageDone(e, lines)
			return
		}
		switch e.Action {
		case "pass":
			r.passed++
		case "fail":
			r.failed = append(r.failed, k)
			for _, l := range lines {
				if !strings.HasPrefix(l, "=== ") {
					io.WriteString(r.out, l)
				}
			}
		case "skip":
			r.skips[e.Package]++
			r.skipped = append(r.skipped, skipped{e.Package, e.Test, skipReason(lines)})
		}
	}
}

// packageDone prints a package's line, and its own output when it failed
// (a panic, a timeout, TestMain's words).
func (r *report) packageDone(e event, lines []string) {
	took := time.Duration(e.Elapsed * float64(time.Second)).Round(10 * time.Millisecond)
	switch e.Action {
	case "pass":
		r.pkgsOK++
		extra := ""
		if n := r.skips[e.Package]; n > 0 {
			extra = fmt.Sprintf("  (%d skipped)", n)
		}
		fmt.Fprintf(r.out, "ok    %-55s %s%s\n", short(e.Package), took, extra)
	case "fail":
		r.pkgsBad = append(r.pkgsBad, e.Package)
		for _, l := range lines {
			if !strings.HasPrefix(l, "=== ") && !strings.HasPrefix(l, "FAIL\t"+e.Package) {
				io.WriteString(r.out, l)
			}
		}
		fmt.Fprintf(r.out, "FAIL  %-55s %s\n", short(e.Package), took)
	}
	// "skip" of a package: no test files; nothing to say.
}

// skipReason is what a skipped test said, without go test's own lines.
func skipReason(lines []string) string {
	var parts []string
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- SKIP") {
			continue
		}
		parts = append(parts, l)
	}
	return strings.Join(parts, " ")
}

// missingServer matches the message of a test skipped because a server or
// a tool is not installed: every such skip names the apt-get command.
var missingServer = regexp.MustCompile(`(?i)apt-get\b.*\binstall\b|not installed`)

// notTested returns the skips due to a missing server or tool.
func (r *report) notTested() []skipped {
	var s []skipped
	for _, k := range r.skipped {
		if missingServer.MatchString(k.reason) {
			s = append(s, k)
		}
	}
	sort.Slice(s, func(i, j int) bool {
		if s[i].pkg != s[j].pkg {
			return s[i].pkg < s[j].pkg
		}
		return s[i].test < s[j].test
	})
	return s
}

// result is what finish needs besides the events.
type result struct {
	goFailed bool          // go test exited with an error
	elapsed  time.Duration // of the whole run
	require  bool          // FRESHET_REQUIRE_SERVERS=1
	missing  []string      // Debian packages still missing
}

// finish prints the summary and returns the exit code: 1 when a test or a
// package failed, or go test did, or (with require) an integration test
// skipped; else 0.
func (r *report) finish(res result) int {
	bar := strings.Repeat("#", 88)
	fmt.Fprintf(r.out, "\nfreshet-test: %d packages ok, %d failed; %d tests passed, %d failed, %d skipped (%s)\n",
		r.pkgsOK, len(r.pkgsBad), r.passed, len(r.failed), len(r.skipped), res.elapsed.Round(time.Second))
	code := 0
	if len(r.failed) > 0 || len(r.pkgsBad) > 0 {
		code = 1
		fmt.Fprintln(r.out, "FAILED:")
		for _, k := range r.failed {
			fmt.Fprintf(r.out, "  %s  %s\n", short(k.pkg), k.test)
		}
		for _, p := range r.pkgsBad {
			fmt.Fprintf(r.out, "  %s\n", short(p))
		}
	} else if res.goFailed {
		code = 1
		fmt.Fprintln(r.out, "FAILED: go test stopped with an error (see above)")
	}
	nt := r.notTested()
	if len(nt) == 0 {
		if code == 0 {
			fmt.Fprintln(r.out, "freshet-test: PASS; every integration test ran against its real server")
		}
		return code
	}
	fmt.Fprintf(r.out, "\n%s\n#  NOT TESTED: %d integration test(s) SKIPPED because a server or tool is missing.\n#  A PASS above does not cover them.\n%s\n",
		bar, len(nt), bar)
	for _, s := range nt {
		fmt.Fprintf(r.out, "  %s  %s: %s\n", short(s.pkg), s.test, s.reason)
	}
	if len(res.missing) > 0 {
		fmt.Fprintf(r.out, "Install what they need, then run make test again (as root, make test installs it itself):\n  %s\n", debian.Command(res.missing))
	} else {
		fmt.Fprintln(r.out, "Install what the messages above name, then run make test again.")
	}
	if res.require {
		fmt.Fprintf(r.out, "%s=1: a skipped integration test fails the run.\n", requireServersEnv)
		code = 1
	}
	fmt.Fprintln(r.out, bar)
	return code
}
