package lifecycle

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Main is the whole main function of a service:
//
//	func main() { lifecycle.Main("invalidator", realMain) }
//
// It calls realMain with a context cancelled on the first SIGINT or SIGTERM;
// a second signal kills the process at once, as it would without Main. When
// realMain returns an error, Main writes "name: error" to standard error and
// exits with status 1; otherwise it exits with status 0.
func Main(name string, realMain func(ctx context.Context) error) {
	os.Exit(runMain(name, realMain, os.Stderr))
}

func runMain(name string, realMain func(ctx context.Context) error, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // restore the default action: a second signal kills
	}()
	if err := realMain(ctx); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}
