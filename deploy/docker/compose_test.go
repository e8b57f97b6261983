// Package docker_test checks docker-compose.yml and the service Dockerfile
// without a Docker engine (none runs on the development machines): the
// compose file must load with the Compose specification's own loader, and
// every service under services/ must be in it, built by the Dockerfile.
package docker_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
)

const repoRoot = "../.."

func TestComposeHasEveryService(t *testing.T) {
	ctx := context.Background()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(repoRoot, "docker-compose.yml")},
		cli.WithWorkingDirectory(repoRoot), cli.WithName("freshet"))
	if err != nil {
		t.Fatal(err)
	}
	project, err := cli.ProjectFromOptions(ctx, opts)
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	for _, infra := range []string{"kafka", "schema-registry", "postgres", "clickhouse", "varnish"} {
		if _, ok := project.Services[infra]; !ok {
			t.Errorf("docker-compose.yml has no %s", infra)
		}
	}

	entries, err := os.ReadDir(filepath.Join(repoRoot, "services"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(repoRoot, "services", e.Name(), "main.go")); err != nil {
			continue // not a service (yet)
		}
		name := e.Name()
		t.Run(name, func(t *testing.T) {
			svc, ok := project.Services[name]
			if !ok {
				t.Fatalf("services/%s is not in docker-compose.yml", name)
			}
			if svc.Build == nil || svc.Build.Dockerfile != "deploy/docker/Dockerfile" {
				t.Fatalf("%s is not built by deploy/docker/Dockerfile: %+v", name, svc.Build)
			}
			if arg := svc.Build.Args["SERVICE"]; arg == nil || *arg != name {
				t.Errorf("%s: build arg SERVICE = %v; want %q", name, arg, name)
			}
			for _, v := range []string{"FRESHET_KAFKA_BROKERS", "FRESHET_ADMIN_ADDR"} {
				if val := svc.Environment[v]; val == nil || *val == "" {
					t.Errorf("%s: %s is not set", name, v)
				}
			}
		})
	}
}

func TestDockerfileBuildsNamedService(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ARG SERVICE", "./services/${SERVICE}", "COPY --from=build /src/pipelines"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}
