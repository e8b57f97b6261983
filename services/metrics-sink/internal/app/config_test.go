package app

import (
	"fmt"
	"strings"
	"testing"

	"github.com/freshet/freshet/pkg/config"
)

// A bad value is an error that names its variable; the defaults load.
func TestConfigErrorsNameTheVariable(t *testing.T) {
	var ok Config
	if err := config.Load(&ok, config.WithLookup(config.MapLookup(nil))); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if o := ok.ClickHouse.Options(); o.Auth.Database != "freshet" || o.Addr[0] != "127.0.0.1:9000" || len(o.Settings) != 0 {
		t.Errorf("options: %+v", o)
	}
	for v, bad := range map[string]string{
		"FRESHET_SINK_BATCH_ROWS":      "0",
		"FRESHET_SINK_RETENTION_DAYS":  "0",
		"FRESHET_SINK_FETCH_MAX_BYTES": "1KiB",
		"FRESHET_SINK_FETCH_MAX_WAIT":  "1ms",
		"FRESHET_CLICKHOUSE_ADDR":      "clickhouse",
		"FRESHET_CLICKHOUSE_DATABASE":  "free-shet",
		"FRESHET_SINK_BATCH_INTERVAL":  "soon",
	} {
		var cfg Config
		err := config.Load(&cfg, config.WithLookup(config.MapLookup(map[string]string{v: bad})))
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("%s=%s: %v", v, bad, err)
		}
	}
	var cfg Config
	err := config.Load(&cfg, config.WithLookup(config.MapLookup(map[string]string{"FRESHET_CLICKHOUSE_PASSWORD": "hunter2-secret"})))
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.Join([]string{cfg.ClickHouse.Password.String(), fmtAll(cfg)}, " "); strings.Contains(s, "hunter2") {
		t.Error("the ClickHouse password shows when the config is printed")
	}
}

func fmtAll(v any) string { return fmt.Sprintf("%+v %#v", v, v) }
