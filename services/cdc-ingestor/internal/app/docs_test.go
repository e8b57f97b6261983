package app

import (
	"os"
	"strings"
	"testing"

	"github.com/freshet/freshet/pkg/config"
)

const docPath = "../../../../docs/cdc-ingestor.md"

// docs/cdc-ingestor.md lists every variable the service reads, with its
// default, exactly as config.Markdown documents Config.
// FRESHET_WRITE_DOCS=1 prints the table to paste.
func TestDocsListEveryVariable(t *testing.T) {
	table, err := config.Markdown(&Config{})
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("FRESHET_WRITE_DOCS") == "1" {
		t.Log("\n" + table)
	}
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), strings.TrimSpace(table)) {
		t.Fatalf("%s does not hold the variables table of Config; regenerate it with FRESHET_WRITE_DOCS=1 go test -run TestDocsListEveryVariable -v ./services/cdc-ingestor/internal/app", docPath)
	}
}
