package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckDocumented(t *testing.T) {
	type cfg struct {
		Addr string `env:"ADDR" default:":80" help:"Listen address."`
	}
	table, err := Markdown(&cfg{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.md")
	stale := filepath.Join(dir, "stale.md")
	os.WriteFile(good, []byte("# Service\n\n"+table+"\nMore text.\n"), 0o644)
	os.WriteFile(stale, []byte("# Service\n\n"+strings.ReplaceAll(table, ":80", ":81")), 0o644)

	if err := CheckDocumented(good, &cfg{}); err != nil {
		t.Errorf("current table refused: %v", err)
	}
	err = CheckDocumented(stale, &cfg{})
	if err == nil || !strings.Contains(err.Error(), "FRESHET_ADDR") {
		t.Errorf("stale table: %v; want an error carrying the current table", err)
	}
	if err := CheckDocumented(filepath.Join(dir, "missing.md"), &cfg{}); err == nil {
		t.Error("missing file accepted")
	}
}
