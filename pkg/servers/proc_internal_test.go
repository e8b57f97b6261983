package servers

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTailFile(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("x", 100) + "\n"
	tests := []struct {
		name    string
		content string
		from    int64
		want    string // exact, or prefix check when wantLen > 0
		wantLen int
	}{
		{"empty", "", 0, "(log is empty)", 0},
		{"whole short log", "a\nb\n", 0, "a\nb", 0},
		{"only what came after from", "old line\nnew line\n", 9, "new line", 0},
		{"log shorter than from (truncated): all of it", "abc\n", 100, "abc", 0},
		{"long log cut at a line boundary", strings.Repeat(long, 100), 0, strings.Repeat("x", 100), 4096},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			if err := os.WriteFile(p, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got := tailFile(p, tt.from)
			if tt.wantLen > 0 {
				if len(got) > tt.wantLen || !strings.HasPrefix(got, tt.want) {
					t.Fatalf("tail of %d bytes starting %q; want at most %d bytes starting at a full line", len(got), got[:20], tt.wantLen)
				}
				return
			}
			if got != tt.want {
				t.Fatalf("tailFile = %q; want %q", got, tt.want)
			}
		})
	}
	if got := tailFile(filepath.Join(dir, "missing"), 0); !strings.HasPrefix(got, "(no log:") {
		t.Fatalf("missing log: %q", got)
	}
}

func TestPickPorts(t *testing.T) {
	tests := []struct {
		name string
		in   []int
	}{
		{"all free", []int{0, 0, 0}},
		{"fixed kept", []int{6081, 0}},
		{"all fixed", []int{6081, 6082}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pickPorts(tt.in...)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[int]bool{}
			for i, p := range got {
				if p <= 0 || seen[p] {
					t.Fatalf("ports %v: zero or repeated", got)
				}
				seen[p] = true
				if tt.in[i] != 0 && p != tt.in[i] {
					t.Fatalf("fixed port %d became %d", tt.in[i], p)
				}
			}
		})
	}
}

func TestRemoveStaleTempDirs(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	// A pid that is surely not running: above the kernel's pid_max.
	const deadPid = 1 << 30
	stale := filepath.Join(os.TempDir(), fmt.Sprintf("freshet-postgres-%d-123", deadPid))
	live := filepath.Join(os.TempDir(), fmt.Sprintf("freshet-varnish-%d-456", os.Getpid()))
	other := filepath.Join(os.TempDir(), fmt.Sprintf("freshet-keep-postgres-%d-789", deadPid))
	for _, d := range []string{stale, live, other} {
		if err := os.MkdirAll(filepath.Join(d, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := RemoveStaleTempDirs()
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != stale {
		t.Fatalf("removed %v; want only %s", removed, stale)
	}
	for _, d := range []string{live, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s removed: %v", d, err)
		}
	}
}

func TestNotInstalledError(t *testing.T) {
	var err error = fmt.Errorf("start: %w", &NotInstalledError{Binary: "varnishd", Packages: []string{"varnish", "varnish-modules"}})
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatal("does not wrap ErrNotInstalled")
	}
	var ni *NotInstalledError
	if !errors.As(err, &ni) || ni.Install() != "apt-get install -y varnish varnish-modules" {
		t.Fatalf("Install() = %q", ni.Install())
	}
	if want := "start: varnishd not found: install it with `apt-get install -y varnish varnish-modules`"; err.Error() != want {
		t.Fatalf("Error() = %q; want %q", err.Error(), want)
	}
}

func TestProcStat(t *testing.T) {
	state, pgid, ok := procStat(os.Getpid())
	if !ok || state == 'Z' || pgid <= 0 {
		t.Fatalf("procStat(self) = %c, %d, %v", state, pgid, ok)
	}
	if ProcessAlive(1 << 30) {
		t.Fatal("a pid above pid_max is alive")
	}
}
