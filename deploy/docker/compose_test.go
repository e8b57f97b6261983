// Package docker_test checks docker-compose.yml and the service Dockerfile
// without a Docker engine (none runs on the development machines): the
// compose file must load with the Compose specification's own loader, and
// every service under services/ must be in it, built by the Dockerfile.
package docker_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/freshet/freshet/pkg/config/configtest"
)

const repoRoot = "../.."

// loadCompose loads docker-compose.yml with the Compose specification's
// loader. Each service's own tests check its environment against its
// configuration (configtest.CheckComposeEnv).
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	project, err := configtest.LoadCompose(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	return project
}

func TestComposeHasEveryService(t *testing.T) {
	project := loadCompose(t)
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
			// The image has no shell: the binary checks its own /readyz
			// (lifecycle.Main's healthcheck command), and depends_on
			// service_healthy waits for it.
			if hc := svc.HealthCheck; hc == nil || !slices.Equal(hc.Test, []string{"CMD", "/freshet/service", "healthcheck"}) {
				t.Errorf("%s: healthcheck is %+v; want the test [CMD /freshet/service healthcheck]", name, hc)
			}
			if !checksComposeEnv(t, filepath.Join(repoRoot, "services", name), name) {
				t.Errorf("no test under services/%s checks its environment here: add to one of its tests\n"+
					"\tconfigtest.CheckComposeEnv(\"<path to>/docker-compose.yml\", %q, &Config{})", name, name)
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

// The varnish service's command, run here with this machine's Varnish: it
// renders the VCL (no "origin" host resolves here, as in a compose file
// without the reference origin) and the VCL compiles (varnishd -C, through a
// shim on PATH in place of the container's varnishd -F).
func TestComposeVarnishCommandCompiles(t *testing.T) {
	real, err := exec.LookPath("varnishd")
	if err != nil {
		if os.Getenv("FRESHET_REQUIRE_SERVERS") == "1" {
			t.Fatal("varnishd is not installed (FRESHET_REQUIRE_SERVERS=1): apt-get install -y varnish varnish-modules")
		}
		t.Skip("varnishd is not installed: apt-get install -y varnish varnish-modules")
	}
	project := loadCompose(t)
	svc := project.Services["varnish"]
	if len(svc.Entrypoint) != 2 || svc.Entrypoint[0] != "/bin/sh" || len(svc.Command) != 1 {
		t.Fatalf("varnish: entrypoint %q, command %q; want /bin/sh -c and one script", svc.Entrypoint, svc.Command)
	}
	vcl, err := filepath.Abs(filepath.Join(repoRoot, "deploy", "varnish", "default.vcl"))
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir, whose parent is private: varnishd, run as root,
	// compiles as its own user, who must read the VCL.
	dir, err := os.MkdirTemp("", "freshet-compose-varnish-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	script := strings.NewReplacer("/etc/freshet/default.vcl", vcl, "/tmp/default.vcl", filepath.Join(dir, "default.vcl")).Replace(svc.Command[0])
	shim := filepath.Join(dir, "bin", "varnishd")
	if err := os.MkdirAll(filepath.Dir(shim), 0o755); err != nil {
		t.Fatal(err)
	}
	// Keep the -f argument, compile only.
	body := "#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = -f ] && f=$2; shift; done\nexec " + real + " -C -n " + filepath.Join(dir, "work") + " -f \"$f\" >/dev/null\n"
	if err := os.WriteFile(shim, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(shim)+":"+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the varnish service's command failed: %v\n%s", err, out)
	}
	rendered, err := os.ReadFile(filepath.Join(dir, "default.vcl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rendered), `.host = "127.0.0.1";`) || !strings.Contains(string(rendered), `.port = "8080";`) {
		t.Errorf("rendered backend is not 127.0.0.1:8080 without an origin:\n%s", rendered)
	}
}

// checksComposeEnv reports whether a test file under dir calls
// configtest.CheckComposeEnv for service name.
func checksComposeEnv(t *testing.T, dir, name string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || found || d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		found = strings.Contains(string(b), "configtest.CheckComposeEnv(") && strings.Contains(string(b), `"`+name+`"`)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
