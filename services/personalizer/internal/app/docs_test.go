package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/freshet/freshet/pkg/config"
)

// TestDocsListEveryVariable keeps the variables table of docs/personalizer.md
// equal to what the config struct declares.
func TestDocsListEveryVariable(t *testing.T) {
	table, err := config.Markdown(Personalizer{}, config.WithPrefix(config.Prefix+"PERSONALIZER_"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "docs", "personalizer.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), strings.TrimSpace(table)) {
		t.Errorf("docs/personalizer.md lacks the current variables table; put this in its Configuration section:\n%s", table)
	}
}
