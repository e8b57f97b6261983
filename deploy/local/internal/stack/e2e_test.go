package stack

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/pkg/codec/codectest"
)

// TestStackEndToEnd runs `make run`'s program with every service and
// follows one change the way a user would: a row committed in Postgres
// reaches, over SSE, the browser of the user whose profile it matches.
// It checks that the services fit together (variables, topics, schemas),
// not each service's guarantees, which their own tests show.
func TestStackEndToEnd(t *testing.T) {
	endToEnd(t, nil, nil)
}

// TestStackEndToEndWithSchemaRegistry is TestStackEndToEnd with the
// Confluent Schema Registry framing that docker compose uses
// (FRESHET_KAFKA_SCHEMA_REGISTRY_URL): every service registers or looks up
// its schemas there, and the events on Kafka carry the registry's ids. The
// registry is codectest's, which follows Confluent's REST API (none runs
// here).
func TestStackEndToEndWithSchemaRegistry(t *testing.T) {
	reg := codectest.NewRegistry()
	defer reg.Close()
	endToEnd(t, []string{"FRESHET_KAFKA_SCHEMA_REGISTRY_URL=" + reg.URL()}, func(st stackEnv) {
		if reg.Requests("POST /subjects/{subject}/versions") == 0 {
			t.Error("no service registered a schema")
		}
		if reg.Requests("GET /schemas/ids/{id}") == 0 {
			t.Error("no consumer looked a schema up by id")
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(fmt.Sprintf("127.0.0.1:%d", st.ports[5])),
			kgo.ConsumeTopics("content.changes"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		fs := cl.PollRecords(ctx, 1)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read content.changes: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if len(r.Value) < 5 || r.Value[0] != 0 {
				t.Errorf("a content.changes record does not start with the Confluent framing (magic 0, schema id): % x", r.Value[:min(len(r.Value), 8)])
			}
		})
	})
}

// waitFresh polls url (through Varnish) until its page holds want: the
// invalidator purged the stale copy.
func waitFresh(ctx context.Context, t *testing.T, url, want string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		_, cache, body := getPage(ctx, t, url)
		if strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still stale (X-Cache %s) a minute after the change; want %q in:\n%s", url, cache, want, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// endToEnd runs the stack with env added to the runner's environment,
// follows one change from Postgres to u1's stream, calls check (if any)
// with the stack still running, and stops the stack with Ctrl-C.
func endToEnd(t *testing.T, env []string, check func(stackEnv)) {
	requirePackages(t)
	bin := buildRunner(t)
	st := newStackEnv(t, "all")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	r := startRunner(t, bin, append(st.env, env...))
	r.waitFor(t, "all parts ready", readyWait)
	for _, svc := range []string{"cdc-ingestor", "origin", "personalizer", "sse-gateway"} {
		if !strings.Contains(r.all.String(), "  "+svc+" ") {
			t.Fatalf("no ready line for %s:\n%s", svc, r.all)
		}
	}
	// The reference origin's pages through Varnish; /tag/postgres is
	// cached before the row below joins it.
	edge := fmt.Sprintf("http://127.0.0.1:%d", st.ports[3])
	for _, path := range []string{"/tech/hello-freshet", "/tag/postgres"} {
		if code, _, body := getPage(ctx, t, edge+path); code != http.StatusOK || !strings.Contains(body, "</html>") {
			t.Fatalf("GET %s through varnish: %d\n%s", path, code, body)
		}
	}

	// u1 (pipelines/freshet.sql) follows author:ada and likes postgres.
	secrets, err := loadSecrets(filepath.Join(st.dir, "secrets.env"))
	if err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, "logs: ", 10*time.Second) // the last line of the hints
	for name, v := range secrets {
		if strings.Contains(r.all.String(), v) {
			t.Errorf("the runner printed the secret %s; its hints must read it from secrets.env", name)
		}
	}
	tokenCmd := exec.CommandContext(ctx, filepath.Join(st.dir, "bin", "sse-gateway"), "token", "-user", "u1", "-ttl", "10m")
	tokenCmd.Env = append(os.Environ(), "FRESHET_AUTH_HS256_SECRET="+secrets["AUTH_HS256_SECRET"])
	token, err := tokenCmd.Output()
	if err != nil {
		t.Fatalf("sse-gateway token: %v", err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/v1/stream", st.ports[7]), nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/stream: %s", resp.Status)
	}
	events := make(chan string, 100)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events <- data
			}
		}
	}()

	title := fmt.Sprintf("End to end %d", time.Now().UnixNano())
	conn, err := pgx.Connect(ctx, st.postgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "insert into content (title, url, tags, author, section) values ($1, $2, '{postgres}', 'ada', 'tech')",
		title, "/tech/"+strings.ReplaceAll(title, " ", "-")); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case data, ok := <-events:
			if !ok {
				t.Fatalf("stream ended before the delivery of %q arrived:\n%s", title, r.all)
			}
			if strings.Contains(data, title) {
				if !strings.Contains(data, "author:ada") {
					t.Errorf("delivery lacks the reason (follows author:ada): %s", data)
				}
				if strings.Contains(r.all.String(), "  invalidator ") { // the invalidator runs
					waitFresh(ctx, t, edge+"/tag/postgres", title)
				}
				if check != nil {
					check(st)
				}
				r.stop(t, syscall.SIGINT)
				if left := processesUnder(st.dir); len(left) > 0 {
					t.Fatalf("processes left after Ctrl-C:\n%s", strings.Join(left, "\n"))
				}
				return
			}
		case <-deadline:
			t.Fatalf("no delivery of %q to u1 within 2 minutes; stack output:\n%s", title, r.all)
		}
	}
}
