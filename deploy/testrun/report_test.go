package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/freshet/freshet/deploy/internal/debian"
	"github.com/freshet/freshet/pkg/servers"
	"github.com/freshet/freshet/pkg/testenv"
)

// stream is a `go test -json` run of two packages, as cmd/test2json writes
// it: package a passes with a test skipped for a missing server and one
// skipped for another reason; package b has a failing test.
const stream = `{"Action":"start","Package":"github.com/freshet/freshet/pkg/a"}
{"Action":"run","Package":"github.com/freshet/freshet/pkg/a","Test":"TestUnit"}
{"Action":"output","Package":"github.com/freshet/freshet/pkg/a","Test":"TestUnit","Output":"=== RUN   TestUnit\n"}
{"Action":"output","Package":"github.com/freshet/freshet/pkg/a","Test":"TestUnit","Output":"    a_test.go:9: a log line nobody needs to see\n"}
{"Action":"output","Package":"github.com/freshet/freshet/pkg/a","Test":"TestUnit","Output":"--- PASS: TestUnit (0.00s)\n"}
{"Action":"pass","Package":"github.com/freshet/freshet/pkg/a","Test":"TestUnit","Elapsed":0}
{"Action":"run","Package":"github.com/freshet/freshet/pkg/a","Test":"TestBrowser"}
{"Action":"output","Package":"github.com/freshet/freshet/pkg/a","Test":"TestBrowser","Output":"=== RUN   TestBrowser\n"}
{"Action":"output","Package":"github.com/freshet/freshet/pkg/a","Test":"TestBrowser","Output":"    browser_test.go:37: chromium is not installed: apt-get install -y chromium\n"}
{"Action":"output","Package":"github.com/freshet/freshet/pkg/a","Test":"TestBrowser","Output":"--- SKIP: TestBrowser (0.00s)\n"}
{"Action":"skip","Package":"github.com/freshet/freshet/pkg/a","Test":"TestBrowser","Elapsed":0}
{"Action":"run","Package":"github.com/freshet/freshet/pkg/a","Test":"TestHelper"}
{"Action":"output","Package":"github.com/freshet/freshet/pkg/a","Test":"TestHelper","Output":"    crash_test.go:36: helper process for TestKilledParentLeavesNothing\n"}
{"Action":"skip","Package":"github.com/freshet/freshet/pkg/a","Test":"TestHelper","Elapsed":0}
{"Action":"output","Package":"github.com/freshet/freshet/pkg/a","Output":"PASS\n"}
{"Action":"pass","Package":"github.com/freshet/freshet/pkg/a","Elapsed":1.234}
{"Action":"start","Package":"github.com/freshet/freshet/pkg/b"}
{"Action":"run","Package":"github.com/freshet/freshet/pkg/b","Test":"TestBroken"}
{"Action":"output","Package":"github.com/freshet/freshet/pkg/b","Test":"TestBroken","Output":"=== RUN   TestBroken\n"}
{"Action":"output","Package":"github.com/freshet/freshet/pkg/b","Test":"TestBroken","Output":"    b_test.go:12: got 2, want 3\n"}
{"Action":"output","Package":"github.com/freshet/freshet/pkg/b","Test":"TestBroken","Output":"--- FAIL: TestBroken (0.01s)\n"}
{"Action":"fail","Package":"github.com/freshet/freshet/pkg/b","Test":"TestBroken","Elapsed":0.01}
{"Action":"output","Package":"github.com/freshet/freshet/pkg/b","Output":"FAIL\n"}
{"Action":"output","Package":"github.com/freshet/freshet/pkg/b","Output":"FAIL\tgithub.com/freshet/freshet/pkg/b\t0.020s\n"}
{"Action":"fail","Package":"github.com/freshet/freshet/pkg/b","Elapsed":0.02}
{"Action":"skip","Package":"github.com/freshet/freshet/pkg/c","Elapsed":0}
`

func run(t *testing.T, events string, res result) (string, int) {
	t.Helper()
	var out bytes.Buffer
	r := newReport(&out)
	if err := r.read(strings.NewReader(events)); err != nil {
		t.Fatal(err)
	}
	code := r.finish(res)
	return out.String(), code
}

func TestReportFailuresAndNotTested(t *testing.T) {
	out, code := run(t, stream, result{goFailed: true, missing: []string{"chromium"}})
	if code != 1 {
		t.Errorf("exit code %d; want 1", code)
	}
	for _, want := range []string{
		"ok    pkg/a",
		"(2 skipped)",
		"    b_test.go:12: got 2, want 3\n--- FAIL: TestBroken",
		"FAIL  pkg/b",
		"1 packages ok, 1 failed; 1 tests passed, 1 failed, 2 skipped",
		"FAILED:\n  pkg/b  TestBroken",
		"NOT TESTED: 1 integration test(s) SKIPPED",
		"  pkg/a  TestBrowser: browser_test.go:37: chromium is not installed: apt-get install -y chromium",
		"sudo apt-get install -y --no-install-recommends chromium",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"a log line nobody", "=== RUN", "TestHelper", "pkg/c"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("output has %q:\n%s", unwanted, out)
		}
	}
}

// passing is the stream of package a alone: it passes, with an
// integration test skipped.
var passing = stream[:strings.Index(stream, `{"Action":"start","Package":"github.com/freshet/freshet/pkg/b"}`)]

func TestReportExitCode(t *testing.T) {
	noSkips := strings.NewReplacer("chromium is not installed: apt-get install -y chromium", "-short").Replace(passing)
	for _, tt := range []struct {
		name   string
		events string
		res    result
		code   int
		says   string
	}{
		{"skip allowed", passing, result{missing: []string{"chromium"}}, 0, "NOT TESTED"},
		{"skip with servers required", passing, result{require: true}, 1, "FRESHET_REQUIRE_SERVERS=1: a skipped integration test fails the run"},
		{"everything ran", noSkips, result{}, 0, "PASS; every integration test ran"},
		{"go test failed without a test failing", noSkips, result{goFailed: true}, 1, "go test stopped with an error"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, code := run(t, tt.events, tt.res)
			if code != tt.code || !strings.Contains(out, tt.says) {
				t.Errorf("exit code %d, want %d; output should say %q:\n%s", code, tt.code, tt.says, out)
			}
		})
	}
}

func TestReportPassesBuildErrorsAndOtherLines(t *testing.T) {
	events := `{"ImportPath":"github.com/freshet/freshet/pkg/d","Action":"build-output","Output":"pkg/d/d.go:3:1: syntax error\n"}
{"ImportPath":"github.com/freshet/freshet/pkg/d","Action":"build-fail"}
go: warning: something go printed itself
`
	out, code := run(t, events, result{goFailed: true})
	for _, want := range []string{"pkg/d/d.go:3:1: syntax error", "go: warning: something go printed itself"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code != 1 {
		t.Errorf("exit code %d; want 1", code)
	}
}

// The skip messages of the suite's tests whose server or tool is missing are
// recognised; other skips are not.
func TestMissingServerMessages(t *testing.T) {
	if requireServersEnv != testenv.RequireServersEnv {
		t.Fatalf("requireServersEnv %q; testenv reads %q", requireServersEnv, testenv.RequireServersEnv)
	}
	notInstalled := &servers.NotInstalledError{Binary: "clickhouse-server", Packages: []string{"clickhouse-server", "clickhouse-client"}}
	for msg, want := range map[string]bool{
		// testenv's skip
		fmt.Sprintf("start clickhouse: %v (set %s=1 to fail instead of skipping)", notInstalled, testenv.RequireServersEnv): true,
		// deploy/local's requirePackages
		(&debian.MissingPackagesError{Packages: []string{"varnish"}}).Error():   true,
		"chromium is not installed: apt-get install -y chromium":                true,
		"npm is not installed: apt-get install -y nodejs npm":                   true,
		"varnishd is not installed: apt-get install -y varnish varnish-modules": true,
		"helper process for TestKilledParentLeavesNothing":                      false,
		"testenv: -short: skipping a test that starts real servers":             false,
		"only root hands the folder to user postgres":                           false,
	} {
		if got := missingServer.MatchString(msg); got != want {
			t.Errorf("%q recognised as a missing server: %v; want %v", msg, got, want)
		}
	}
}
