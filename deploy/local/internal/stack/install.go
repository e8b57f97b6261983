package stack

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// requirement is an executable (or file) a part of the stack needs, and the
// Debian packages that provide it.
type requirement struct {
	part     string
	paths    []string // any one of these existing is enough; a bare name is looked up on PATH
	packages []string
}

var requirements = []requirement{
	{part: "postgres", paths: []string{"/usr/lib/postgresql/15/bin/postgres", "postgres"}, packages: []string{"postgresql-15"}},
	{part: "clickhouse", paths: []string{"clickhouse-server", "/usr/sbin/clickhouse-server"}, packages: []string{"clickhouse-server", "clickhouse-client"}},
	{part: "varnish", paths: []string{"varnishd", "/usr/sbin/varnishd"}, packages: []string{"varnish"}},
	{part: "varnish xkey", paths: []string{"/usr/lib/x86_64-linux-gnu/varnish/vmods/libvmod_xkey.so", "/usr/lib/aarch64-linux-gnu/varnish/vmods/libvmod_xkey.so", "/usr/lib/varnish/vmods/libvmod_xkey.so"}, packages: []string{"varnish-modules"}},
}

func (r requirement) present() bool {
	for _, p := range r.paths {
		if filepath.IsAbs(p) {
			if _, err := os.Stat(p); err == nil {
				return true
			}
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return true
		}
	}
	return false
}

// missingPackages returns the Debian packages whose programs are missing,
// in a stable order and without repeats.
func missingPackages(reqs []requirement) []string {
	var pkgs []string
	seen := map[string]bool{}
	for _, r := range reqs {
		if r.present() {
			continue
		}
		for _, p := range r.packages {
			if !seen[p] {
				seen[p] = true
				pkgs = append(pkgs, p)
			}
		}
	}
	return pkgs
}

// MissingPackagesError says which packages to install, and how.
type MissingPackagesError struct {
	Packages []string
}

// Command is the command that installs the packages.
func (e *MissingPackagesError) Command() string {
	return "sudo apt-get update && sudo apt-get install -y --no-install-recommends " + strings.Join(e.Packages, " ")
}

func (e *MissingPackagesError) Error() string {
	return fmt.Sprintf("missing Debian packages %s; install them with:\n  %s", strings.Join(e.Packages, ", "), e.Command())
}

// ensurePackages installs the missing packages with apt-get when install is
// set and the process runs as root; otherwise it returns a
// *MissingPackagesError naming the command to run.
func ensurePackages(ctx context.Context, out io.Writer, install bool) error {
	pkgs := missingPackages(requirements)
	if len(pkgs) == 0 {
		return nil
	}
	if !install || os.Geteuid() != 0 {
		return &MissingPackagesError{Packages: pkgs}
	}
	fmt.Fprintf(out, "freshet: installing %s with apt-get (once; FRESHET_LOCAL_INSTALL=false turns this off)\n", strings.Join(pkgs, " "))
	steps := [][]string{
		{"apt-get", "update", "-qq"},
		append([]string{"apt-get", "install", "-y", "-qq", "--no-install-recommends"}, pkgs...),
	}
	for _, s := range steps {
		cmd := exec.CommandContext(ctx, s[0], s[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(s, " "), err, lastLines(string(b), 15))
		}
	}
	if still := missingPackages(requirements); len(still) > 0 {
		return fmt.Errorf("apt-get installed the packages, but these are still missing: %s", strings.Join(still, ", "))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
