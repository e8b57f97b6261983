package app

import (
	"testing"

	"github.com/freshet/freshet/pkg/config"
)

// TestDocsListEveryVariable keeps the variables table of docs/origin.md
// equal to what the config struct declares.
func TestDocsListEveryVariable(t *testing.T) {
	if err := config.CheckDocumented("../../../../docs/origin.md", Origin{}); err != nil {
		t.Fatal(err)
	}
}
