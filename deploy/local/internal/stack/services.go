package stack

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/freshet/freshet/pkg/servers"
)

// ServicesDir holds one folder per service, each a main package.
const ServicesDir = "services"

// availableServices lists the folders under services/ that hold a main.go.
func availableServices() ([]string, error) {
	entries, err := os.ReadDir(ServicesDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list services (run from the repository root): %w", err)
	}
	var names []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(ServicesDir, e.Name(), "main.go")); e.IsDir() && err == nil {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// selectServices applies FRESHET_LOCAL_SERVICES to what services/ holds.
func (s *Stack) selectServices() ([]string, error) {
	avail, err := availableServices()
	if err != nil {
		return nil, err
	}
	sel := s.cfg.Services
	switch {
	case len(sel) == 1 && sel[0] == "none":
		return nil, nil
	case len(sel) == 0 || len(sel) == 1 && sel[0] == "all":
		return avail, nil
	}
	for _, n := range sel {
		if !slices.Contains(avail, n) {
			return nil, fmt.Errorf("FRESHET_LOCAL_SERVICES: no service %q under %s/ (have: %s)", n, ServicesDir, strings.Join(avail, ", "))
		}
	}
	return sel, nil
}

func (s *Stack) binDir() string { return filepath.Join(s.dir, "bin") }

// buildServices builds the services' binaries into Dir/bin with the go
// tool, so that a `make run` always runs the code in the tree.
func (s *Stack) buildServices(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	args := []string{"build", "-o", s.binDir() + string(filepath.Separator)}
	for _, n := range names {
		args = append(args, "./"+ServicesDir+"/"+n)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build services (go %s): %w\n%s", strings.Join(args, " "), err, lastLines(string(b), 30))
	}
	return nil
}

// serviceEnv is the environment of a service: the process's own, the
// stack's addresses, and what the service needs in particular. Variables
// set (non-empty) in the caller's environment win, so a user can override
// any of them. A later assignment wins in the environment, which is why an
// empty variable of the caller is followed by the stack's value.
func (s *Stack) serviceEnv(name, admin string) []string {
	vars := map[string]string{
		"FRESHET_KAFKA_BROKERS":       strings.Join(s.cfg.brokers(), ","),
		"FRESHET_PIPELINE":            "pipelines/freshet.yaml",
		"FRESHET_ADMIN_ADDR":          admin,
		"FRESHET_POSTGRES_DSN":        s.postgresDSN(),
		"FRESHET_CLICKHOUSE_ADDR":     fmt.Sprintf("127.0.0.1:%d", s.cfg.ClickHouseTCPPort),
		"FRESHET_CLICKHOUSE_DATABASE": Database,
		"FRESHET_LOG_FORMAT":          "console",
	}
	switch name {
	case "cdc-ingestor":
		vars["FRESHET_INGEST_ADDR"] = fmt.Sprintf("127.0.0.1:%d", s.cfg.IngestPort)
		vars["FRESHET_INGEST_API_KEYS"] = "dev:" + s.secrets["INGEST_API_KEY"]
	case "sse-gateway":
		vars["FRESHET_GATEWAY_ADDR"] = fmt.Sprintf("127.0.0.1:%d", s.cfg.GatewayPort)
		vars["FRESHET_AUTH_HS256_SECRET"] = s.secrets["AUTH_HS256_SECRET"]
		vars["FRESHET_RUM_HASH_KEY"] = s.secrets["RUM_HASH_KEY"]
	case "invalidator":
		// pipelines/freshet.yaml's varnish target reads it.
		vars["FRESHET_VARNISH_URL"] = fmt.Sprintf("http://127.0.0.1:%d", s.cfg.VarnishPort)
	case "origin":
		vars["FRESHET_ORIGIN_ADDR"] = fmt.Sprintf("127.0.0.1:%d", s.cfg.OriginPort)
		// The demo page (/demo through Varnish) with the gateway's stream.
		vars["FRESHET_ORIGIN_DEMO"] = "true"
		vars["FRESHET_ORIGIN_DEMO_GATEWAY"] = fmt.Sprintf("http://127.0.0.1:%d", s.cfg.GatewayPort)
		vars["FRESHET_AUTH_HS256_SECRET"] = s.secrets["AUTH_HS256_SECRET"]
	}
	env := os.Environ()
	for k, v := range vars {
		if os.Getenv(k) == "" { // unset or empty: the stack's value
			env = append(env, k+"="+v)
		}
	}
	return env
}

// startServices starts the built services and waits until each answers
// 200 on /readyz. Each writes its pid to Dir/run/<name>.pid.
func (s *Stack) startServices(ctx context.Context, names []string) error {
	if err := os.MkdirAll(s.runDir(), 0o755); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	for i, name := range names {
		t := time.Now()
		admin := fmt.Sprintf("127.0.0.1:%d", s.cfg.AdminBasePort+i)
		logFile := filepath.Join(s.dir, "logs", name+".log")
		svc := &service{name: name, admin: admin, log: logFile, path: filepath.Join(s.binDir(), name),
			env: s.serviceEnv(name, admin), pid: filepath.Join(s.runDir(), name+".pid")}
		cmd, err := svc.start()
		if err != nil {
			return err
		}
		p := &part{name: name, where: fmt.Sprintf("admin http://%s  (log %s)", admin, logFile),
			stop: func(ctx context.Context) error { return svc.stop(ctx, 20*time.Second) }}
		if err := waitReady(ctx, svc, cmd, s.cfg.ReadyTimeout); err != nil {
			_ = svc.stop(context.Background(), 5*time.Second)
			return fmt.Errorf("%s: %w\n%s", name, err, lastLines(cmd.Output(), 20))
		}
		p.took = time.Since(t)
		s.svcs = append(s.svcs, svc)
		s.add(p)
	}
	return nil
}

// waitReady polls the service's /readyz until it answers 200, or cmd (its
// process) exits.
func waitReady(ctx context.Context, svc *service, cmd *servers.Command, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := "http://" + svc.admin + "/readyz"
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-cmd.Done():
			return fmt.Errorf("exited before it was ready (%v); log %s", cmd.Err(), svc.log)
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s (last answer of %s: %s); log %s", timeout, url, last, svc.log)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// watchServices supervises the services while the stack runs: one that
// exits is reported and started again (see supervise).
func (s *Stack) watchServices(ctx context.Context) {
	for _, svc := range s.svcs {
		go s.supervise(ctx, svc)
	}
}

// printHints shows how to use what runs. Secrets are never printed: the
// commands read them from secrets.env.
func (s *Stack) printHints() {
	fmt.Fprintf(s.out, "\nTry it:\n  psql '%s' -c \"insert into content (title, url, tags) values ('Hello', '/hello', '{news}')\"\n", s.postgresDSN())
	fmt.Fprintf(s.out, "  curl -s 'http://127.0.0.1:%d/?query=show+databases'\n", s.cfg.ClickHouseHTTPPort)
	fmt.Fprintf(s.out, "  the stack's generated secrets, for the commands below: set -a; . %s; set +a\n", filepath.Join(s.dir, "secrets.env"))
	for _, svc := range s.svcs {
		switch svc.name {
		case "cdc-ingestor":
			fmt.Fprintf(s.out, "  HTTP ingest: curl -H \"X-API-Key: $FRESHET_INGEST_API_KEY\" -d '{\"op\":\"update\",\"content_id\":\"1\",\"title\":\"Hi\"}' http://127.0.0.1:%d/v1/events\n",
				s.cfg.IngestPort)
		case "origin":
			fmt.Fprintf(s.out, "  a page through Varnish (X-Cache: MISS, then HIT): curl -si http://127.0.0.1:%d/tech/hello-freshet\n", s.cfg.VarnishPort)
			fmt.Fprintf(s.out, "  make it fresh: psql '%s' -c \"update content set title = 'Hello, fresh Freshet' where id = 1\"  then curl it again\n", s.postgresDSN())
			fmt.Fprintf(s.out, "  demo: open http://127.0.0.1:%d/demo (pick a user; edit a title there or with the psql line above: the live feed and the edge copy go fresh)\n", s.cfg.VarnishPort)
		case "metrics-sink":
			fmt.Fprintf(s.out, "  freshness: %s query freshness -since 1h  (also purge_latency, web_vitals, sse_lag, dlq)\n",
				filepath.Join(s.binDir(), "metrics-sink"))
		case "sse-gateway":
			fmt.Fprintf(s.out, "  SSE: curl -N -H \"Authorization: Bearer $(%s token -user u1)\" http://127.0.0.1:%d/v1/stream\n",
				filepath.Join(s.binDir(), "sse-gateway"), s.cfg.GatewayPort)
		}
	}
	fmt.Fprintf(s.out, "  logs: %s\n\n", filepath.Join(s.dir, "logs"))
}

// secretNames are generated once per data folder and kept in secrets.env.
var secretNames = []string{"INGEST_API_KEY", "AUTH_HS256_SECRET", "RUM_HASH_KEY"}

// loadSecrets reads the stack's generated secrets from path, generating
// (and saving, mode 0600) the ones missing. The file is written as
// FRESHET_-prefixed variables so a shell can source it.
func loadSecrets(path string) (map[string]string, error) {
	secrets := map[string]string{}
	if f, err := os.Open(path); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
			if ok && !strings.HasPrefix(k, "#") {
				secrets[strings.TrimPrefix(k, "FRESHET_")] = v
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	changed := false
	for _, n := range secretNames {
		if secrets[n] != "" {
			continue
		}
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		secrets[n] = hex.EncodeToString(b)
		changed = true
	}
	if !changed {
		return secrets, nil
	}
	var b strings.Builder
	b.WriteString("# Secrets of the local stack, generated once; delete this file to make new ones.\n")
	for _, n := range secretNames {
		fmt.Fprintf(&b, "FRESHET_%s=%s\n", n, secrets[n])
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return secrets, nil
}
