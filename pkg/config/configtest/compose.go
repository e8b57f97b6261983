// Package configtest checks deployment files against the configuration
// structs of the services, for the services' tests: a variable a file sets
// must be one the service reads, with a value it accepts. Its functions
// read files only and are safe for concurrent use.
package configtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/freshet/freshet/pkg/config"
)

// LoadCompose loads a docker compose file with the Compose specification's
// own loader (github.com/compose-spec/compose-go), as `docker compose`
// does, without a Docker engine: anchors merged, ${VAR:-default}
// interpolated from this process's environment, the schema checked.
func LoadCompose(path string) (*types.Project, error) {
	opts, err := cli.NewProjectOptions([]string{path},
		cli.WithWorkingDirectory(filepath.Dir(path)), cli.WithName("freshet"))
	if err != nil {
		return nil, err
	}
	project, err := cli.ProjectFromOptions(context.Background(), opts)
	if err != nil {
		return nil, fmt.Errorf("%s does not load: %w", path, err)
	}
	return project, nil
}

// CheckComposeEnv checks the environment that the compose file at path
// gives service against cfg, the service's config struct (as passed to
// config.Load, with the same options): every FRESHET_* variable set there
// must be one cfg reads (or one its pipeline file takes, as
// ${FRESHET_VARNISH_URL} in a target's address), every required variable
// must be set, and the
// environment must load into cfg and pass its Validate. The error names
// every problem found.
func CheckComposeEnv(path, service string, cfg any, opts ...config.Option) error {
	project, err := LoadCompose(path)
	if err != nil {
		return err
	}
	svc, ok := project.Services[service]
	if !ok {
		return fmt.Errorf("%s has no service %s", filepath.Base(path), service)
	}
	vars, err := config.Vars(cfg, opts...)
	if err != nil {
		return err
	}
	env := map[string]string{}
	for k, v := range svc.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	where := fmt.Sprintf("%s, service %s", filepath.Base(path), service)
	pipelineVars, err := pipelineRefs(filepath.Dir(path), env, vars)
	if err != nil {
		return err
	}
	var errs []error
	for _, k := range sortedKeys(env) {
		if !strings.HasPrefix(k, config.Prefix) || pipelineVars[k] {
			continue
		}
		if !slices.ContainsFunc(vars, func(v config.Var) bool { return v.Name == k }) {
			errs = append(errs, fmt.Errorf("%s: %s is set, but the service reads no such variable (nor does its pipeline file)", where, k))
		}
	}
	for _, v := range vars {
		if v.Required && env[v.Name] == "" {
			errs = append(errs, fmt.Errorf("%s: %s is required, but not set", where, v.Name))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := config.Load(cfg, append(slices.Clone(opts), config.WithLookup(config.MapLookup(env)))...); err != nil {
		return fmt.Errorf("%s: its environment does not load: %w", where, err)
	}
	return nil
}

var pipelineRef = regexp.MustCompile(`\$\{(` + config.Prefix + `[A-Za-z0-9_]+)`)

// pipelineRefs returns the variables the service's pipeline file takes
// (${FRESHET_...} in target addresses): the file FRESHET_PIPELINE names,
// relative to the compose file's folder, or, when that is a path inside
// the image, the default pipeline file, which the image carries.
func pipelineRefs(dir string, env map[string]string, vars []config.Var) (map[string]bool, error) {
	var file string
	for _, v := range vars {
		if v.Name == config.Prefix+"PIPELINE" {
			file = v.Default
		}
	}
	if p := env[config.Prefix+"PIPELINE"]; p != "" && !filepath.IsAbs(p) {
		file = p
	}
	refs := map[string]bool{}
	if file == "" {
		return refs, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return nil, fmt.Errorf("the service's pipeline file: %w", err)
	}
	for _, m := range pipelineRef.FindAllStringSubmatch(string(b), -1) {
		refs[m[1]] = true
	}
	return refs, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
