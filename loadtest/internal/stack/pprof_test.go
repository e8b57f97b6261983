package stack

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestPprofVarsDocumented: every service that documents a pprof switch in
// docs/<service>.md has it in PprofVars, so that the load test turns it on
// and profiles the service, and every variable of PprofVars is one its
// service documents (a service ignores a variable it does not read).
func TestPprofVarsDocumented(t *testing.T) {
	const repoRoot = "../../.."
	mains, err := filepath.Glob(filepath.Join(repoRoot, "services", "*", "main.go"))
	if err != nil || len(mains) == 0 {
		t.Fatalf("no services found under %s/services: %v", repoRoot, err)
	}
	documented := regexp.MustCompile("`(FRESHET_[A-Z_]*PPROF)`")
	services := map[string]bool{}
	for _, m := range mains {
		svc := filepath.Base(filepath.Dir(m))
		services[svc] = true
		doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", svc+".md"))
		if err != nil {
			t.Errorf("%s: %v", svc, err)
			continue
		}
		var want string
		if m := documented.FindSubmatch(doc); m != nil {
			want = string(m[1])
		}
		if got := PprofVars[svc]; got != want {
			t.Errorf("PprofVars[%q] = %q; docs/%s.md documents %q", svc, got, svc, want)
		}
	}
	for svc := range PprofVars {
		if !services[svc] {
			t.Errorf("PprofVars names %q, which is not a service under services/", svc)
		}
	}
}
