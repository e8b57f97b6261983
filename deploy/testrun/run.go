package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/freshet/freshet/deploy/internal/debian"
)

// requireServersEnv set to 1 makes a skipped integration test fail the run,
// as it makes testenv fail a test whose server is missing (the same name as
// testenv.RequireServersEnv, which this program does not link).
const requireServersEnv = "FRESHET_REQUIRE_SERVERS"

// realMain runs the whole command and returns its exit code.
func realMain(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("testrun", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 25*time.Minute, "go test's timeout for the whole run")
	race := fs.Bool("race", false, "run under the race detector")
	install := fs.Bool("install", os.Getenv("FRESHET_TEST_INSTALL") != "false",
		"install missing Debian packages with apt-get when running as root (FRESHET_TEST_INSTALL=false turns it off)")
	goBin := fs.String("go", "go", "the go command")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	pkgs := fs.Args()
	if len(pkgs) == 0 {
		pkgs = []string{"./..."}
	}
	out := os.Stdout
	require := os.Getenv(requireServersEnv) == "1"

	if err := debian.Ensure(ctx, out, debian.Tests, *install, "FRESHET_TEST_INSTALL=false"); err != nil {
		var missing *debian.MissingPackagesError
		if !errors.As(err, &missing) {
			fmt.Fprintf(out, "freshet-test: %v\n", err)
			return 1
		}
		fmt.Fprintf(out, "freshet-test: missing Debian packages %s: the tests that need them will be SKIPPED.\n"+
			"  Install them first (as root, make test does it itself):\n    %s\n",
			strings.Join(missing.Packages, ", "), missing.Command())
	}

	goArgs := []string{"test", "-json", "-count=1", "-timeout", timeout.String()}
	if *race {
		goArgs = append(goArgs, "-race")
	}
	goArgs = append(goArgs, pkgs...)
	fmt.Fprintf(out, "freshet-test: %s %s\n", *goBin, strings.Join(goArgs, " "))
	cmd := exec.CommandContext(ctx, *goBin, goArgs...)
	cmd.Stderr = os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintf(out, "freshet-test: %v\n", err)
		return 1
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(out, "freshet-test: %v\n", err)
		return 1
	}
	r := newReport(out)
	readErr := r.read(stdout)
	waitErr := cmd.Wait()
	if readErr != nil {
		fmt.Fprintf(out, "freshet-test: reading go test's output: %v\n", readErr)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(out, "freshet-test: interrupted")
	}
	return r.finish(result{
		goFailed: waitErr != nil || readErr != nil,
		elapsed:  time.Since(start),
		require:  require,
		missing:  debian.Missing(debian.Tests),
	})
}
