// Package debian finds which Debian packages the local stack and the test
// suite need but are missing, and installs them with apt-get when the
// process runs as root, or says which command does. Its functions are safe
// for concurrent use; Ensure runs apt-get, which takes a system-wide lock.
package debian

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Requirement is a program (or file) a part needs, and the Debian packages
// that provide it.
type Requirement struct {
	// Part is what needs it, e.g. "postgres".
	Part string
	// Paths: any one existing is enough; a bare name is looked up on PATH.
	Paths []string
	// Packages provide it.
	Packages []string
}

// Stack is what `make run` starts.
var Stack = []Requirement{
	{Part: "postgres", Paths: []string{"/usr/lib/postgresql/15/bin/postgres", "postgres"}, Packages: []string{"postgresql-15"}},
	{Part: "clickhouse", Paths: []string{"clickhouse-server", "/usr/sbin/clickhouse-server"}, Packages: []string{"clickhouse-server", "clickhouse-client"}},
	{Part: "varnish", Paths: []string{"varnishd", "/usr/sbin/varnishd"}, Packages: []string{"varnish"}},
	{Part: "varnish xkey", Paths: []string{"/usr/lib/x86_64-linux-gnu/varnish/vmods/libvmod_xkey.so", "/usr/lib/aarch64-linux-gnu/varnish/vmods/libvmod_xkey.so", "/usr/lib/varnish/vmods/libvmod_xkey.so"}, Packages: []string{"varnish-modules"}},
}

// Tests is what `make test` needs: the stack's servers, a browser for the
// SSE client's end-to-end tests and npm to build that client.
var Tests = append(append([]Requirement(nil), Stack...),
	Requirement{Part: "browser", Paths: []string{"chromium", "chromium-browser", "google-chrome"}, Packages: []string{"chromium"}},
	Requirement{Part: "npm", Paths: []string{"npm"}, Packages: []string{"nodejs", "npm"}},
)

// Present reports whether one of r's paths exists.
func (r Requirement) Present() bool {
	for _, p := range r.Paths {
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

// Missing returns the Debian packages whose programs are missing, in the
// order of reqs and without repeats.
func Missing(reqs []Requirement) []string {
	var pkgs []string
	seen := map[string]bool{}
	for _, r := range reqs {
		if r.Present() {
			continue
		}
		for _, p := range r.Packages {
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
func (e *MissingPackagesError) Command() string { return Command(e.Packages) }

func (e *MissingPackagesError) Error() string {
	return fmt.Sprintf("missing Debian packages %s; install them with:\n  %s", strings.Join(e.Packages, ", "), e.Command())
}

// Command is the command a user runs to install pkgs.
func Command(pkgs []string) string {
	return "sudo apt-get update && sudo apt-get install -y --no-install-recommends " + strings.Join(pkgs, " ")
}

// Ensure installs the missing packages of reqs with apt-get when install is
// set and the process runs as root, saying so on out, where off names the
// setting that turns this off; otherwise it returns a
// *MissingPackagesError naming the command to run. Nothing missing is nil.
func Ensure(ctx context.Context, out io.Writer, reqs []Requirement, install bool, off string) error {
	pkgs := Missing(reqs)
	if len(pkgs) == 0 {
		return nil
	}
	if !install || os.Geteuid() != 0 {
		return &MissingPackagesError{Packages: pkgs}
	}
	fmt.Fprintf(out, "freshet: installing %s with apt-get (once; %s turns this off)\n", strings.Join(pkgs, " "), off)
	steps := [][]string{
		{"apt-get", "update", "-qq"},
		append([]string{"apt-get", "install", "-y", "-qq", "--no-install-recommends"}, pkgs...),
	}
	for _, s := range steps {
		cmd := exec.CommandContext(ctx, s[0], s[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(s, " "), err, tail(b, 2000))
		}
	}
	if still := Missing(reqs); len(still) > 0 {
		return fmt.Errorf("apt-get installed the packages, but these are still missing: %s", strings.Join(still, ", "))
	}
	return nil
}

// tail returns the last n bytes of b, where apt-get says what went wrong.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
