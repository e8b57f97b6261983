package app

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Keys and passwords never reach the logs: the ingestor, a separate process
// logging at debug level, with a password in its Postgres DSN (trust
// authentication ignores it) and two API keys, takes an accepted event, one
// with a wrong key and one refused for its body; its whole output then holds
// neither key, nor the wrong one, nor the password.
func TestSecretsNeverLogged(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the ingestor as a process against real Postgres")
	}
	s := newStack(t)
	const (
		password = "pg-password-never-logged"
		key1     = "ingest-key-one-never-logged-0123"
		key2     = "ingest-key-two-never-logged-4567"
		wrong    = "ingest-key-wrong-never-logged-89"
	)
	u, err := url.Parse(s.dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), password)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s.start("FRESHET_POSTGRES_DSN="+u.String(), "FRESHET_LOG_LEVEL=debug", "FRESHET_INGEST_ADDR="+addr,
		"FRESHET_INGEST_API_KEYS=app:"+key1+",batch:"+key2)

	post := func(key, body string) int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/events", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		key, body string
		want      int
	}{
		{key1, `{"op":"update","content_id":"s1","title":"Hi"}`, 202},
		{wrong, `{"op":"update","content_id":"s2","title":"Hi"}`, 401},
		{key2, `{"op":"update","title":"no content id"}`, 400},
	} {
		if got := post(c.key, c.body); got != c.want {
			t.Errorf("POST /v1/events with %s: %d, want %d", c.body, got, c.want)
		}
	}
	s.stop()
	out := s.proc.Output()
	if !strings.Contains(out, "DEBUG") {
		t.Fatalf("the ingestor logged nothing at debug level; the test shows nothing:\n%s", out)
	}
	for name, v := range map[string]string{"the password": password, "an API key": key1, "the other API key": key2, "the wrong key": wrong} {
		if strings.Contains(out, v) {
			t.Errorf("%s is in the ingestor's log", name)
		}
	}
}
