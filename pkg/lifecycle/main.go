package lifecycle

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Main is the whole main function of a service:
//
//	func main() { lifecycle.Main("invalidator", realMain) }
//
// It calls realMain with a context cancelled on the first SIGINT or SIGTERM;
// a second signal kills the process at once, as it would without Main. When
// realMain returns an error, Main writes "name: error" to standard error and
// exits with status 1; otherwise it exits with status 0.
//
// "name healthcheck" does not run the service: it asks the /readyz of the
// service's admin listener (FRESHET_ADMIN_ADDR, default :9090, on this
// host) and exits 0 when it answers 200, else 1 with the reason. It is the
// container health check of images without a shell or an HTTP client
// (docker compose, deploy/docker/Dockerfile).
func Main(name string, realMain func(ctx context.Context) error) {
	if len(os.Args) == 2 && os.Args[1] == "healthcheck" {
		realMain = func(ctx context.Context) error { return Healthcheck(ctx, os.Getenv("FRESHET_ADMIN_ADDR")) }
	}
	os.Exit(runMain(name, realMain, os.Stderr))
}

// Healthcheck asks GET /readyz of the admin listener at addr (host:port;
// an empty host or port means this host and 9090) and returns nil when it
// answers 200, else an error with the status and the reasons it gave.
func Healthcheck(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if addr == "" || err != nil {
		host, port = "", "9090"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	if port == "" {
		port = "9090"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	url := "http://" + net.JoinHostPort(host, port) + "/readyz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: GET %s: %s %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
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
