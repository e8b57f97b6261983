package servers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// takenPort listens on a port for the duration of the test.
func takenPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// handOutTaken makes the next n calls of freePort return taken, as if
// another process had grabbed the port between the pick and the bind.
func handOutTaken(t *testing.T, taken, n int) *int {
	t.Helper()
	calls := 0
	freePort = func() (int, error) {
		calls++
		if calls <= n {
			return taken, nil
		}
		return FreePort()
	}
	t.Cleanup(func() { freePort = FreePort })
	return &calls
}

func skipUnlessInstalled(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, ErrNotInstalled) {
		if os.Getenv("FRESHET_REQUIRE_SERVERS") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// TestPortRaceRetried: a free port taken before the server binds it makes
// Start try again with another port; a fixed port that is taken fails with
// the server's own message.
func TestPortRaceRetried(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers")
	}
	type server interface {
		Stop(context.Context) error
		Pid() int
	}
	tests := []struct {
		name  string
		start func(ctx context.Context) (server, string, error) // server, its main addr
	}{
		{"postgres", func(ctx context.Context) (server, string, error) {
			s, err := StartPostgres(ctx, PostgresOptions{})
			if err != nil {
				return nil, "", err
			}
			return s, s.Addr(), nil
		}},
		{"varnish", func(ctx context.Context) (server, string, error) {
			s, err := StartVarnish(ctx, VarnishOptions{VCL: "vcl 4.1;\nbackend b { .host = \"127.0.0.1\"; .port = \"9\"; }\n"})
			if err != nil {
				return nil, "", err
			}
			return s, s.Addr(), nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			taken := takenPort(t)
			calls := handOutTaken(t, taken, 1)
			s, addr, err := tt.start(ctx)
			skipUnlessInstalled(t, err)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Stop(context.Background())
			if addr == fmt.Sprintf("127.0.0.1:%d", taken) || *calls < 2 {
				t.Fatalf("server on %s after %d port picks; want a retry away from %d", addr, *calls, taken)
			}
		})
	}

	t.Run("fixed port taken", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_, err := StartPostgres(ctx, PostgresOptions{Port: takenPort(t)})
		skipUnlessInstalled(t, err)
		if err == nil || !strings.Contains(err.Error(), "Address already in use") {
			t.Fatalf("err = %v; want one quoting the server's bind failure", err)
		}
		t.Logf("the error reads:\n%v", err)
	})
}
