package app

import (
	"testing"

	"github.com/freshet/freshet/pkg/config"
)

// docs/metrics-sink.md lists every variable the service reads, with its
// default, exactly as config.Markdown documents Config.
func TestDocsListEveryVariable(t *testing.T) {
	if err := config.CheckDocumented("../../../../docs/metrics-sink.md", &Config{}); err != nil {
		t.Fatal(err)
	}
}
