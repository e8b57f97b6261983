package servers

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNotInstalled is wrapped by every error that reports a missing server
// binary. Branch on it with errors.Is; errors.As with *NotInstalledError
// gives the binary and the command that installs it.
var ErrNotInstalled = errors.New("server binary not installed")

// NotInstalledError reports that a server binary was not found.
type NotInstalledError struct {
	// Binary is the executable that was looked for, e.g. "clickhouse-server".
	Binary string
	// Packages are the Debian packages that provide it.
	Packages []string
}

// Install returns the command that installs the missing packages.
func (e *NotInstalledError) Install() string {
	return "apt-get install -y " + strings.Join(e.Packages, " ")
}

// Error implements error.
func (e *NotInstalledError) Error() string {
	return fmt.Sprintf("%s not found: install it with `%s`", e.Binary, e.Install())
}

// Unwrap returns ErrNotInstalled.
func (e *NotInstalledError) Unwrap() error { return ErrNotInstalled }

// ErrBadVCL is wrapped by the error that reports a VCL that varnishd
// refuses to compile. errors.As with *VCLError gives the compiler's message.
var ErrBadVCL = errors.New("bad VCL")

// VCLError reports a VCL that does not compile.
type VCLError struct {
	// Message is what varnishd's VCL compiler said, starting at
	// "Message from VCC-compiler" when that line is present.
	Message string
}

// Error implements error.
func (e *VCLError) Error() string { return "bad VCL: " + e.Message }

// Unwrap returns ErrBadVCL.
func (e *VCLError) Unwrap() error { return ErrBadVCL }
