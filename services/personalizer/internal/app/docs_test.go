package app

import (
	"testing"

	"github.com/freshet/freshet/pkg/config"
)

// TestDocsListEveryVariable keeps the variables table of docs/personalizer.md
// equal to what the config struct declares.
func TestDocsListEveryVariable(t *testing.T) {
	err := config.CheckDocumented("../../../../docs/personalizer.md", Personalizer{}, config.WithPrefix(config.Prefix+"PERSONALIZER_"))
	if err != nil {
		t.Fatal(err)
	}
}
