package app

import (
	"testing"

	"github.com/freshet/freshet/pkg/config"
)

// docs/cdc-ingestor.md lists every variable the service reads, with its
// default, exactly as config.Markdown documents Config.
func TestDocsListEveryVariable(t *testing.T) {
	if err := config.CheckDocumented("../../../../docs/cdc-ingestor.md", &Config{}); err != nil {
		t.Fatal(err)
	}
}
