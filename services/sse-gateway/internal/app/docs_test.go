package app

import (
	"os"
	"strings"
	"testing"

	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/services/sse-gateway/internal/gateway"
)

const docPath = "../../../../docs/sse-gateway.md"

// docs/sse-gateway.md lists every variable the service reads, with its
// default, exactly as config.Markdown documents the Config struct.
// FRESHET_WRITE_DOCS=1 prints the table to paste.
func TestDocsListEveryVariable(t *testing.T) {
	table, err := config.Markdown(&gateway.Config{})
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
		t.Fatalf("%s does not hold the variables table of the Config; regenerate it with FRESHET_WRITE_DOCS=1 go test -run TestDocsListEveryVariable -v ./services/sse-gateway/internal/app", docPath)
	}
}
