package stack

import (
	"context"
	"io"
	"strings"

	"github.com/freshet/freshet/deploy/internal/debian"
)

// requirements are the stack's Debian packages.
var requirements = debian.Stack

// MissingPackagesError says which packages to install, and how.
type MissingPackagesError = debian.MissingPackagesError

func missingPackages(reqs []debian.Requirement) []string { return debian.Missing(reqs) }

// ensurePackages installs the missing packages with apt-get when install is
// set and the process runs as root; otherwise it returns a
// *MissingPackagesError naming the command to run.
func ensurePackages(ctx context.Context, out io.Writer, install bool) error {
	return debian.Ensure(ctx, out, requirements, install, "FRESHET_LOCAL_INSTALL=false")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
