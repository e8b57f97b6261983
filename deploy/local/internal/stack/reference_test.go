package stack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigReferenceIsCurrent keeps docs/configuration.md in step with the
// config structs.
func TestConfigReferenceIsCurrent(t *testing.T) {
	want, err := ConfigReference()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(repoRoot, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatal("docs/configuration.md is out of date: run `make docs`")
	}
}

func TestConfigValidateNamesTheField(t *testing.T) {
	cfg := Config{Dir: "", PostgresPort: 70000, ClickHouseTCPPort: 1, ClickHouseHTTPPort: 1, VarnishPort: 1,
		VarnishAdminPort: 1, OriginPort: 1, KafkaPort: 1, IngestPort: 1, GatewayPort: 1, AdminBasePort: 1,
		Partitions: 1, ReadyTimeout: 1, Services: []string{"../x"}}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no error for a bad port, an empty folder and a bad service name")
	}
	for _, field := range []string{"PostgresPort", "Dir", "Services"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error %q does not name %s", err, field)
		}
	}
}
