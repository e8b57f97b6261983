package app

import (
	"testing"

	"github.com/freshet/freshet/pkg/config/configtest"
	"github.com/freshet/freshet/services/sse-gateway/internal/gateway"
)

// docker-compose.yml sets only variables the service reads, every required
// one, with values its configuration accepts.
func TestComposeEnvironment(t *testing.T) {
	if err := configtest.CheckComposeEnv("../../../../docker-compose.yml", "sse-gateway", &gateway.Config{}); err != nil {
		t.Fatal(err)
	}
}
