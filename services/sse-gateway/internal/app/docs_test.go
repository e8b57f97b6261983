package app

import (
	"testing"

	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/services/sse-gateway/internal/gateway"
)

// docs/sse-gateway.md lists every variable the service reads, with its
// default, exactly as config.Markdown documents the Config struct.
func TestDocsListEveryVariable(t *testing.T) {
	if err := config.CheckDocumented("../../../../docs/sse-gateway.md", &gateway.Config{}); err != nil {
		t.Fatal(err)
	}
}
