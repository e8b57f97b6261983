package configtest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/config/configtest"
)

type testConfig struct {
	Addr    string        `env:"ADDR" default:":8080" help:"listen address"`
	Secret  string        `env:"SECRET" required:"true" help:"a secret"`
	Timeout time.Duration `env:"TIMEOUT" default:"1s" help:"a timeout"`
}

func writeCompose(t *testing.T, env string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "docker-compose.yml")
	body := "services:\n  svc:\n    image: busybox\n    environment:\n" + env
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckComposeEnv(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  string
		want []string // substrings of the error; none means no error
	}{
		{"good", "      FRESHET_SECRET: s\n      FRESHET_ADDR: \":9000\"\n      OTHER: x\n", nil},
		{"interpolated default", "      FRESHET_SECRET: ${NO_SUCH_VAR_HERE:-dev}\n", nil},
		{"unknown variable", "      FRESHET_SECRET: s\n      FRESHET_ADRR: \":9000\"\n", []string{"FRESHET_ADRR is set, but the service reads no such variable"}},
		{"required missing", "      FRESHET_ADDR: \":9000\"\n", []string{"FRESHET_SECRET is required, but not set"}},
		{"required empty", "      FRESHET_SECRET: ${NO_SUCH_VAR_HERE}\n", []string{"FRESHET_SECRET is required"}},
		{"bad value", "      FRESHET_SECRET: s\n      FRESHET_TIMEOUT: soon\n", []string{"does not load", "FRESHET_TIMEOUT"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := configtest.CheckComposeEnv(writeCompose(t, tt.env), "svc", &testConfig{})
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; want one with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestCheckComposeEnvNamesAMissingService(t *testing.T) {
	err := configtest.CheckComposeEnv(writeCompose(t, "      A: b\n"), "nope", &testConfig{})
	if err == nil || !strings.Contains(err.Error(), "no service nope") {
		t.Fatalf("err = %v; want one naming the missing service", err)
	}
}

type pipelineConfig struct {
	Pipeline string `env:"PIPELINE" default:"pipeline.yaml" help:"the pipeline file"`
}

// A variable the pipeline file takes (${FRESHET_...} in an address) may be
// set too; one neither reads may not.
func TestCheckComposeEnvPipelineVariables(t *testing.T) {
	compose := writeCompose(t, "      FRESHET_EDGE_URL: http://edge:6081\n      FRESHET_OTHER_URL: x\n")
	pipeline := "targets:\n  - address: ${FRESHET_EDGE_URL:-http://127.0.0.1:6081}\n"
	if err := os.WriteFile(filepath.Join(filepath.Dir(compose), "pipeline.yaml"), []byte(pipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	err := configtest.CheckComposeEnv(compose, "svc", &pipelineConfig{})
	if err == nil || strings.Contains(err.Error(), "FRESHET_EDGE_URL") || !strings.Contains(err.Error(), "FRESHET_OTHER_URL is set") {
		t.Fatalf("err = %v; want one naming FRESHET_OTHER_URL only", err)
	}
}
