// Command testrun is `make test`: it installs the Debian packages the tests
// need the way `make run` does (with apt-get as root; otherwise it prints the
// command), runs go test over the packages given, prints each package as it
// finishes and every failing test's output in full, and ends with a summary
// that lists, loudly, the integration tests that were skipped because a
// server or tool is missing, with the command that installs it. With
// FRESHET_REQUIRE_SERVERS=1 (CI) such a skip fails the run.
//
//	go run ./deploy/testrun [-timeout 25m] [-race] [-install=false] [packages]
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := realMain(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
