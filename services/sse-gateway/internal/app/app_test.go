package app

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/pkg/lifecycle"
	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/services/sse-gateway/internal/auth"
)

func TestMain(m *testing.M) {
	// TestSecretsNeverLogged runs the gateway as a separate process: this
	// binary, in service mode.
	testenv.ServiceMain(m, func() { lifecycle.Main("sse-gateway", Main(nil, os.Stdout)) }, testenv.NeedKafka)
}

const secret = "app-test-secret-app-test-secret-0123456789"

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// The service starts with only what the local stack runner sets (and
// FRESHET_GATEWAY_PPROF, which the load test adds), answers /readyz, serves
// the client and /debug/pprof/, and stops cleanly on cancellation.
func TestServeWithTheRunnersEnvironment(t *testing.T) {
	kt := testenv.Kafka(t)
	admin, addr := freeAddr(t), freeAddr(t)
	t.Setenv("FRESHET_KAFKA_BROKERS", strings.Join(kt.Seeds, ","))
	t.Setenv("FRESHET_PIPELINE", "../../../../pipelines/freshet.yaml")
	t.Setenv("FRESHET_ADMIN_ADDR", admin)
	t.Setenv("FRESHET_LOG_FORMAT", "console")
	t.Setenv("FRESHET_GATEWAY_ADDR", addr)
	t.Setenv("FRESHET_AUTH_HS256_SECRET", secret)
	t.Setenv("FRESHET_RUM_HASH_KEY", "app-test-hash-key-0123")
	t.Setenv("FRESHET_GATEWAY_PPROF", "true")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Main(nil, new(bytes.Buffer))(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("serve returned: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/v1/client.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("client.js: %d", resp.StatusCode)
	}
	resp, err = http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(body.String(), "freshet_sse_gateway_streams") {
		t.Fatal("/metrics has no gateway metrics")
	}
	resp, err = http.Get("http://" + admin + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/debug/pprof/cmdline with FRESHET_GATEWAY_PPROF=true: %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	t.Setenv("FRESHET_AUTH_HS256_SECRET", "xyzzy-plugh")
	t.Setenv("FRESHET_RUM_HASH_KEY", "")
	err := Main([]string{"serve"}, new(bytes.Buffer))(context.Background())
	if err == nil || !strings.Contains(err.Error(), "FRESHET_AUTH_HS256_SECRET") || !strings.Contains(err.Error(), "FRESHET_RUM_HASH_KEY") {
		t.Fatalf("err = %v, want both variables named", err)
	}
	if strings.Contains(err.Error(), "xyzzy") {
		t.Fatal("the error shows the secret")
	}
}

func TestTokenCommand(t *testing.T) {
	t.Setenv("FRESHET_AUTH_HS256_SECRET", secret)
	var out bytes.Buffer
	if err := Main([]string{"token", "-user", "alice", "-channels", "breaking,sports", "-ttl", "5m"}, &out)(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg := auth.Config{HS256Secret: config.NewSecret(secret), Issuer: "freshet", Audience: "freshet-sse", JWKSRefresh: time.Minute}
	v, err := auth.NewVerifier(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(context.Background(), strings.TrimSpace(out.String()))
	if err != nil || id.UserID != "alice" || !id.Allows("sports") || time.Until(id.Expires) > 5*time.Minute {
		t.Fatalf("token: %+v, %v", id, err)
	}
	if err := Main([]string{"token"}, &out)(context.Background()); err == nil {
		t.Fatal("token without -user succeeded")
	}
}

func TestCheckCommand(t *testing.T) {
	var out bytes.Buffer
	if err := Main([]string{"check", "../../../../pipelines/freshet.yaml"}, &out)(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "ok") {
		t.Fatalf("check output: %s", out.String())
	}
	if err := Main([]string{"check", "no/such/file.yaml"}, &out)(context.Background()); err == nil {
		t.Fatal("check of a missing file succeeded")
	}
	if err := Main([]string{"frobnicate"}, &out)(context.Background()); err == nil {
		t.Fatal("an unknown command succeeded")
	}
}
