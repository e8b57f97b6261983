package config

import (
	"strings"
	"testing"
)

func TestMarkdownDocumentsEveryVariable(t *testing.T) {
	type service struct {
		Common
		Listen string `env:"LISTEN" default:":8080" help:"Public listener | the API."`
		Token  Secret `env:"TOKEN" required:"true" help:"API token."`
	}
	md, err := Markdown(&service{})
	if err != nil {
		t.Fatal(err)
	}
	vars, err := Vars(service{})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(md), "\n")
	if len(lines) != len(vars)+2 {
		t.Fatalf("%d lines for %d variables:\n%s", len(lines), len(vars), md)
	}
	if lines[0] != "| Variable | Type | Default | Description |" {
		t.Errorf("header: %q", lines[0])
	}
	for _, want := range []string{
		"| `FRESHET_LOG_LEVEL` | string | `info` | Minimum level logged. One of: debug, info, warn, error. |",
		"| `FRESHET_KAFKA_BROKERS` | list of string | `127.0.0.1:9092` | Seed brokers (host:port). Comma-separated. |",
		"| `FRESHET_KAFKA_SASL_PASSWORD` | secret | none | SASL password (never printed). |",
		"| `FRESHET_SHUTDOWN_TIMEOUT` | duration | `15s` |",
		"| `FRESHET_PIPELINE` | string | `pipelines/freshet.yaml` |",
		"| `FRESHET_LISTEN` | string | `:8080` | Public listener \\| the API. |",
		"| `FRESHET_TOKEN` | secret | required | API token. |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("missing %q in\n%s", want, md)
		}
	}
	// Declaration order: Common's variables first, the service's last.
	if !strings.HasPrefix(lines[2], "| `FRESHET_LOG_LEVEL`") || !strings.HasPrefix(lines[len(lines)-1], "| `FRESHET_TOKEN`") {
		t.Errorf("order: first %q, last %q", lines[2], lines[len(lines)-1])
	}
	for _, v := range vars {
		if v.Help == "" {
			t.Errorf("%s has no help text", v.Name)
		}
	}
}

func TestMarkdownRejectsNonStruct(t *testing.T) {
	if _, err := Markdown(42); err == nil {
		t.Error("Markdown(42): no error")
	}
}
