package app

import (
	"net/http"
	"testing"
)

// FRESHET_CDC_PPROF=true serves the Go profiler on the admin listener (the
// load test takes the ingestor's CPU profile there).
func TestPprofOnAdmin(t *testing.T) {
	s := newStack(t)
	s.start("FRESHET_CDC_PPROF=true")
	resp, err := http.Get("http://" + s.proc.AdminAddr() + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /debug/pprof/cmdline with FRESHET_CDC_PPROF=true: %d, want 200", resp.StatusCode)
	}
	s.stop()
}
