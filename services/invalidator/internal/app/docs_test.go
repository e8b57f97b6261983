package app

import (
	"testing"

	"github.com/freshet/freshet/pkg/config"
)

// TestDocsListEveryVariable keeps the variables table of docs/invalidator.md
// equal to what the config struct declares.
func TestDocsListEveryVariable(t *testing.T) {
	err := config.CheckDocumented("../../../../docs/invalidator.md", Invalidator{}, config.WithPrefix(config.Prefix+"INVALIDATOR_"))
	if err != nil {
		t.Fatal(err)
	}
}
