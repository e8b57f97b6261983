package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ReferenceVCLFile is the reference VCL (deploy's and the origin's Varnish
// config), relative to the repository's root. Its backend is the
// placeholders BACKEND_HOST and BACKEND_PORT.
const ReferenceVCLFile = "deploy/varnish/default.vcl"

// ReferenceVCL returns the reference VCL with its backend rendered as
// backend (host:port, e.g. an httptest server's Listener.Addr().String()),
// as the local stack and docker compose do: the VCL to give Varnish. The
// file is found by walking up from the working directory (a test's is its
// package's folder) to the repository's go.mod. A file that cannot be read
// or a backend that is not host:port fails the test.
func ReferenceVCL(tb testing.TB, backend string) string {
	tb.Helper()
	host, port, err := net.SplitHostPort(backend)
	if err == nil && (host == "" || port == "") {
		err = fmt.Errorf("address %s: missing host or port", backend)
	}
	if err != nil {
		tb.Fatalf("testenv: reference VCL: backend: %v", err)
	}
	root, err := repoRoot()
	if err != nil {
		tb.Fatalf("testenv: reference VCL: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(root, ReferenceVCLFile))
	if err != nil {
		tb.Fatalf("testenv: reference VCL: %v", err)
	}
	return strings.NewReplacer("BACKEND_HOST", host, "BACKEND_PORT", port).Replace(string(b))
}

// repoRoot returns the nearest folder at or above the working directory
// that holds a go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod at or above the working directory")
		}
		dir = parent
	}
}
