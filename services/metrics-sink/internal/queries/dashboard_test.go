package queries_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/schemas"
	"github.com/freshet/freshet/services/metrics-sink/internal/chschema"
	"github.com/freshet/freshet/services/metrics-sink/internal/queries"
	"github.com/freshet/freshet/services/metrics-sink/internal/sinktest"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.NeedClickHouse) }

const grafana = "../../../../deploy/grafana"

type dashboard struct {
	UID    string `json:"uid"`
	Title  string `json:"title"`
	Panels []struct {
		Title      string `json:"title"`
		Datasource struct {
			Type string `json:"type"`
			UID  string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			RawSQL string `json:"rawSql"`
		} `json:"targets"`
	} `json:"panels"`
}

// macros replaces the ClickHouse plugin's macros with SQL over the last
// day.
var macros = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\$__timeFilter\(([a-z_]+)\)`), "$1 >= now() - 86400 AND $1 <= now()"},
	{regexp.MustCompile(`\$__timeInterval\(([a-z_]+)\)`), "toStartOfMinute($1)"},
	{regexp.MustCompile(`\$__fromTime`), "toDateTime(now() - 86400)"},
	{regexp.MustCompile(`\$__toTime`), "now()"},
}

// The provisioning files parse and name the datasource the dashboard uses;
// the dashboard parses, and every panel's SQL, macros replaced, runs on
// ClickHouse 18.16 against the schema's tables, so every table and column
// it names exists.
func TestDashboard(t *testing.T) {
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			UID, Type string
			JSONData  map[string]any `yaml:"jsonData"`
		}
	}
	readYAML(t, filepath.Join(grafana, "provisioning/datasources/clickhouse.yaml"), &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "grafana-clickhouse-datasource" || ds.Datasources[0].JSONData["protocol"] != "native" {
		t.Fatalf("datasource: %+v", ds)
	}
	var prov struct {
		Providers []struct {
			Options struct{ Path string }
		}
	}
	readYAML(t, filepath.Join(grafana, "provisioning/dashboards/freshet.yaml"), &prov)
	if len(prov.Providers) != 1 || prov.Providers[0].Options.Path == "" {
		t.Fatalf("dashboard provider: %+v", prov)
	}

	b, err := os.ReadFile(filepath.Join(grafana, "dashboards/freshet.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard: %+v", d)
	}

	db := testenv.ClickHouse(t)
	conn := sinktest.Conn(t, db.Options())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ms, err := chschema.Load(schemas.ClickHouse)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chschema.Migrate(ctx, conn, ms, 0); err != nil {
		t.Fatal(err)
	}
	for _, p := range d.Panels {
		if p.Datasource.UID != ds.Datasources[0].UID || p.Datasource.Type != ds.Datasources[0].Type {
			t.Errorf("panel %q: datasource %+v is not the provisioned one", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			q := tg.RawSQL
			for _, m := range macros {
				q = m.re.ReplaceAllString(q, m.with)
			}
			if strings.Contains(q, "$") {
				t.Errorf("panel %q: a macro this test does not know: %s", p.Title, q)
				continue
			}
			if _, err := queries.Query(ctx, conn, q); err != nil {
				t.Errorf("panel %q: %v\n%s", p.Title, err, q)
			}
		}
	}
	// every ready-made query runs on an empty database too
	for _, name := range queries.Names() {
		if _, err := queries.Run(ctx, conn, name, time.Now().Add(-time.Hour), ""); err != nil {
			t.Errorf("query %s: %v", name, err)
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestSQL(t *testing.T) {
	q, err := queries.SQL("freshness", time.Unix(1700000000, 0), "abc123")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(q, "toDateTime(1700000000)") || !strings.Contains(q, "'abc123'") || strings.Contains(q, "{since}") {
		t.Errorf("placeholders not filled:\n%s", q)
	}
	if _, err := queries.SQL("freshness", time.Now(), "x' OR 1=1 --"); err == nil {
		t.Error("an event id with a quote was accepted")
	}
	if _, err := queries.SQL("nosuch", time.Now(), ""); err == nil {
		t.Error("an unknown query was accepted")
	}
}
