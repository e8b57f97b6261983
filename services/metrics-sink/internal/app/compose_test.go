package app

import (
	"testing"

	"github.com/freshet/freshet/pkg/config/configtest"
)

// docker-compose.yml sets only variables the service reads, every required
// one, with values its configuration accepts.
func TestComposeEnvironment(t *testing.T) {
	if err := configtest.CheckComposeEnv("../../../../docker-compose.yml", "metrics-sink", &Config{}); err != nil {
		t.Fatal(err)
	}
}
