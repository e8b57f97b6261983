// Package k8s_test checks the Kubernetes manifests of deploy/k8s without a
// cluster: every file parses and is listed by the kustomization, and each
// service's workload, probes, ports, Services, HPA and disruption budget
// agree with the service itself.
package k8s_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/freshet/freshet/pkg/pipeline"
)

const repoRoot = "../.."

// services are the six services under services/, each with its manifest
// <name>.yaml.
var services = []string{"cdc-ingestor", "invalidator", "personalizer", "sse-gateway", "metrics-sink", "origin"}

type kustomization struct {
	Namespace          string
	Resources          []string
	ConfigMapGenerator []struct {
		Name     string
		Literals []string
		Files    []string
	} `yaml:"configMapGenerator"`
	Images []struct {
		Name string
	}
}

type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string
	Metadata   struct {
		Name string
	}
	Spec yaml.Node
	file string
}

type workloadSpec struct {
	Replicas    int
	ServiceName string `yaml:"serviceName"`
	Selector    struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	Template struct {
		Metadata struct {
			Labels map[string]string
		}
		Spec struct {
			TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
			Containers                    []container
			Volumes                       []struct {
				Name      string
				ConfigMap *struct{ Name string } `yaml:"configMap"`
			}
		}
	}
}

type container struct {
	Name    string
	Image   string
	EnvFrom []struct {
		ConfigMapRef *struct{ Name string } `yaml:"configMapRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name      string
		Value     string
		ValueFrom *struct {
			SecretKeyRef *struct{ Name, Key string } `yaml:"secretKeyRef"`
			FieldRef     *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	}
	Ports []struct {
		Name          string
		ContainerPort int `yaml:"containerPort"`
	}
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string
		Limits   map[string]string
	}
	VolumeMounts []struct {
		Name      string
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type probe struct {
	HTTPGet *struct {
		Path string
		Port any // a port's name or number
	} `yaml:"httpGet"`
}

type serviceSpec struct {
	ClusterIP string            `yaml:"clusterIP"`
	Selector  map[string]string `yaml:"selector"`
	Ports     []servicePort
}

type servicePort struct {
	Name       string
	Port       int
	TargetPort any `yaml:"targetPort"` // a container port's name or number
}

type hpaSpec struct {
	ScaleTargetRef struct {
		APIVersion string `yaml:"apiVersion"`
		Kind, Name string
	} `yaml:"scaleTargetRef"`
	MinReplicas int   `yaml:"minReplicas"`
	MaxReplicas int   `yaml:"maxReplicas"`
	Metrics     []any `yaml:"metrics"`
}

type pdbSpec struct {
	MinAvailable   any `yaml:"minAvailable"`
	MaxUnavailable any `yaml:"maxUnavailable"`
	Selector       struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
}

type ingressSpec struct {
	Rules []struct {
		HTTP struct {
			Paths []struct {
				Backend struct {
					Service struct {
						Name string
						Port struct{ Name string }
					}
				}
			}
		}
	}
}

// apiVersions of the kinds the manifests may use.
var apiVersions = map[string]string{
	"Namespace": "v1", "Service": "v1", "Deployment": "apps/v1", "StatefulSet": "apps/v1",
	"HorizontalPodAutoscaler": "autoscaling/v2", "PodDisruptionBudget": "policy/v1",
	"Ingress": "networking.k8s.io/v1",
}

func loadKustomization(t *testing.T) kustomization {
	t.Helper()
	b, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	return k
}

// loadObjects parses every document of every resource of the kustomization.
func loadObjects(t *testing.T) []object {
	t.Helper()
	var objs []object
	for _, f := range loadKustomization(t).Resources {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for i := 0; ; i++ {
			var o object
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s, document %d: %v", f, i+1, err)
			}
			o.file = f
			objs = append(objs, o)
		}
	}
	return objs
}

func decodeSpec[T any](t *testing.T, o object) T {
	t.Helper()
	var spec T
	if err := o.Spec.Decode(&spec); err != nil {
		t.Fatalf("%s: %s %s: %v", o.file, o.Kind, o.Metadata.Name, err)
	}
	return spec
}

func TestKustomizationListsEveryFile(t *testing.T) {
	k := loadKustomization(t)
	if k.Namespace == "" {
		t.Error("kustomization.yaml sets no namespace")
	}
	var used []string
	for _, r := range k.Resources {
		used = append(used, filepath.Clean(r))
	}
	for _, g := range k.ConfigMapGenerator {
		for _, f := range g.Files {
			if _, p, ok := strings.Cut(f, "="); ok { // key=path
				f = p
			}
			used = append(used, filepath.Clean(f))
		}
	}
	for _, f := range used {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("kustomization.yaml lists %s: %v", f, err)
		}
	}
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || (!strings.HasSuffix(p, ".yaml") && !strings.HasSuffix(p, ".yml")) || p == "kustomization.yaml" {
			return err
		}
		if !slices.Contains(used, p) {
			t.Errorf("%s is not in kustomization.yaml", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range services {
		if !slices.Contains(k.Resources, s+".yaml") {
			t.Errorf("kustomization.yaml does not list %s.yaml", s)
		}
		if !slices.ContainsFunc(k.Images, func(i struct{ Name string }) bool { return i.Name == "freshet/"+s }) {
			t.Errorf("kustomization.yaml sets no image for freshet/%s", s)
		}
	}
}

func TestManifestsParse(t *testing.T) {
	seen := map[string]bool{}
	for _, o := range loadObjects(t) {
		id := o.Kind + "/" + o.Metadata.Name
		switch want, ok := apiVersions[o.Kind]; {
		case !ok:
			t.Errorf("%s: %s: a kind this test does not know", o.file, id)
		case o.APIVersion != want:
			t.Errorf("%s: %s: apiVersion %q; want %q", o.file, id, o.APIVersion, want)
		}
		if o.Metadata.Name == "" {
			t.Errorf("%s: a %s without a name", o.file, o.Kind)
		}
		if seen[id] {
			t.Errorf("%s: %s twice", o.file, id)
		}
		seen[id] = true
	}
}

// env is the kustomization's freshet-env literals.
func commonEnv(t *testing.T) map[string]string {
	t.Helper()
	for _, g := range loadKustomization(t).ConfigMapGenerator {
		if g.Name != "freshet-env" {
			continue
		}
		env := map[string]string{}
		for _, l := range g.Literals {
			k, v, ok := strings.Cut(l, "=")
			if !ok {
				t.Fatalf("freshet-env literal %q is not NAME=value", l)
			}
			env[k] = v
		}
		return env
	}
	t.Fatal("kustomization.yaml has no freshet-env ConfigMap")
	return nil
}

// portOf returns the port of a listen address such as ":9090".
func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	return n
}

// refersTo reports whether a probe's or a Service's port (a name or a
// number) is the container port named name with number num.
func refersTo(port any, name string, num int) bool {
	switch p := port.(type) {
	case string:
		return p == name
	case int:
		return p == num
	}
	return false
}

func matches(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestEachService(t *testing.T) {
	objs := loadObjects(t)
	common := commonEnv(t)
	for _, name := range services {
		t.Run(name, func(t *testing.T) {
			var w *object
			for i, o := range objs {
				if (o.Kind == "Deployment" || o.Kind == "StatefulSet") && o.Metadata.Name == name {
					w = &objs[i]
				}
			}
			if w == nil {
				t.Fatalf("no Deployment or StatefulSet %s", name)
			}
			if w.file != name+".yaml" {
				t.Errorf("%s's workload is in %s; want %s.yaml", name, w.file, name)
			}
			spec := decodeSpec[workloadSpec](t, *w)
			labels := spec.Template.Metadata.Labels
			if labels["app.kubernetes.io/name"] != name || !matches(spec.Selector.MatchLabels, labels) {
				t.Errorf("selector %v does not select the pods' labels %v", spec.Selector.MatchLabels, labels)
			}
			if len(spec.Template.Spec.Containers) != 1 {
				t.Fatalf("%d containers; want 1", len(spec.Template.Spec.Containers))
			}
			c := spec.Template.Spec.Containers[0]
			if c.Image != "freshet/"+name {
				t.Errorf("image %q; want freshet/%s (tag set by the kustomization)", c.Image, name)
			}

			// The environment the service sees: freshet-env, then its own.
			if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef == nil || c.EnvFrom[0].ConfigMapRef.Name != "freshet-env" {
				t.Errorf("envFrom does not take freshet-env")
			}
			env := map[string]string{}
			for k, v := range common {
				env[k] = v
			}
			for _, e := range c.Env {
				env[e.Name] = e.Value
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name != "freshet" {
					t.Errorf("%s comes from Secret %q; want the Secret freshet", e.Name, e.ValueFrom.SecretKeyRef.Name)
				}
				if e.Value != "" && e.ValueFrom == nil && looksSecret(e.Name) {
					t.Errorf("%s is written in the manifest; take it from the Secret freshet", e.Name)
				}
			}
			checkDocumented(t, name, env)

			ports := map[string]int{}
			for _, p := range c.Ports {
				ports[p.Name] = p.ContainerPort
			}
			admin := ":9090" // FRESHET_ADMIN_ADDR's default
			if a, ok := env["FRESHET_ADMIN_ADDR"]; ok {
				admin = a
			}
			if got, want := ports["admin"], portOf(t, admin); got != want {
				t.Errorf("container port admin is %d; FRESHET_ADMIN_ADDR %q listens on %d", got, admin, want)
			}
			for k, v := range env {
				if strings.HasSuffix(k, "_ADDR") && strings.HasPrefix(v, ":") && !slices.Contains(slices.Collect(mapValues(ports)), portOf(t, v)) {
					t.Errorf("%s=%s: no container port %d", k, v, portOf(t, v))
				}
			}
			readyPath := "/readyz"
			if name == "cdc-ingestor" {
				readyPath = "/healthz" // a warm standby is not "ready" (not streaming) by design
			}
			for _, pr := range []struct {
				kind, path string
				p          *probe
			}{{"liveness", "/healthz", c.LivenessProbe}, {"readiness", readyPath, c.ReadinessProbe}} {
				switch {
				case pr.p == nil || pr.p.HTTPGet == nil:
					t.Errorf("no %s probe over HTTP", pr.kind)
				case pr.p.HTTPGet.Path != pr.path || !refersTo(pr.p.HTTPGet.Port, "admin", ports["admin"]):
					t.Errorf("%s probe GET %s on port %v; want %s on the admin port", pr.kind, pr.p.HTTPGet.Path, pr.p.HTTPGet.Port, pr.path)
				}
			}
			if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
				t.Errorf("resources %+v; want cpu and memory requests and a memory limit", c.Resources)
			}
			if g := spec.Template.Spec.TerminationGracePeriodSeconds; g <= 15 {
				t.Errorf("terminationGracePeriodSeconds %d; want more than FRESHET_SHUTDOWN_TIMEOUT (15s)", g)
			}

			// The pipeline file: mounted where FRESHET_PIPELINE says.
			mounted := false
			for _, v := range spec.Template.Spec.Volumes {
				if v.ConfigMap == nil || v.ConfigMap.Name != "freshet-pipeline" {
					continue
				}
				for _, m := range c.VolumeMounts {
					mounted = mounted || (m.Name == v.Name && m.MountPath == path.Dir(env["FRESHET_PIPELINE"]))
				}
			}
			if !mounted {
				t.Errorf("the freshet-pipeline ConfigMap is not mounted at the folder of FRESHET_PIPELINE (%s)", env["FRESHET_PIPELINE"])
			}

			if name == "personalizer" {
				checkPersonalizer(t, *w, spec, c, objs)
			}
			checkAround(t, name, *w, spec, ports, objs)
		})
	}
}

func mapValues(m map[string]int) func(func(int) bool) {
	return func(yield func(int) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

func looksSecret(name string) bool {
	for _, s := range []string{"DSN", "PASSWORD", "SECRET", "KEY", "TOKEN"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// checkPersonalizer: a StatefulSet whose pods' names are their stable,
// unique transactional ids.
func checkPersonalizer(t *testing.T, w object, spec workloadSpec, c container, objs []object) {
	t.Helper()
	if w.Kind != "StatefulSet" {
		t.Errorf("the personalizer is a %s; want a StatefulSet (stable transactional ids)", w.Kind)
	}
	ok := false
	for _, e := range c.Env {
		ok = ok || (e.Name == "FRESHET_PERSONALIZER_TRANSACTIONAL_ID" && e.ValueFrom != nil &&
			e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name")
	}
	if !ok {
		t.Error("FRESHET_PERSONALIZER_TRANSACTIONAL_ID is not the pod's name")
	}
	if !slices.ContainsFunc(objs, func(o object) bool {
		return o.Kind == "Service" && o.Metadata.Name == spec.ServiceName && decodeSpec[serviceSpec](t, o).ClusterIP == "None"
	}) {
		t.Errorf("serviceName %q is not a headless Service", spec.ServiceName)
	}
}

// checkAround checks the HPA, the disruption budget and the Services of a
// service's workload.
func checkAround(t *testing.T, name string, w object, spec workloadSpec, ports map[string]int, objs []object) {
	t.Helper()
	labels := spec.Template.Metadata.Labels
	var hpas, pdbs int
	for _, o := range objs {
		switch o.Kind {
		case "HorizontalPodAutoscaler":
			h := decodeSpec[hpaSpec](t, o)
			if h.ScaleTargetRef.Name != name {
				continue
			}
			hpas++
			if h.ScaleTargetRef.Kind != w.Kind || h.ScaleTargetRef.APIVersion != "apps/v1" {
				t.Errorf("HPA %s targets %s %s; want the %s", o.Metadata.Name, h.ScaleTargetRef.APIVersion, h.ScaleTargetRef.Kind, w.Kind)
			}
			if h.MinReplicas < 1 || h.MaxReplicas < h.MinReplicas || len(h.Metrics) == 0 {
				t.Errorf("HPA %s: min %d, max %d, %d metrics", o.Metadata.Name, h.MinReplicas, h.MaxReplicas, len(h.Metrics))
			}
			if spec.Replicas < h.MinReplicas || spec.Replicas > h.MaxReplicas {
				t.Errorf("replicas %d outside the HPA's %d-%d", spec.Replicas, h.MinReplicas, h.MaxReplicas)
			}
		case "PodDisruptionBudget":
			p := decodeSpec[pdbSpec](t, o)
			if !matches(p.Selector.MatchLabels, labels) {
				continue
			}
			pdbs++
			if (p.MinAvailable == nil) == (p.MaxUnavailable == nil) {
				t.Errorf("PDB %s: set one of minAvailable and maxUnavailable", o.Metadata.Name)
			}
			if n, ok := p.MinAvailable.(int); ok && n >= spec.Replicas {
				t.Errorf("PDB %s: minAvailable %d of %d replicas blocks every drain", o.Metadata.Name, n, spec.Replicas)
			}
		case "Service":
			s := decodeSpec[serviceSpec](t, o)
			if !matches(s.Selector, labels) {
				continue
			}
			for _, p := range s.Ports {
				found := false
				for pn, num := range ports {
					found = found || refersTo(p.TargetPort, pn, num)
				}
				if !found {
					t.Errorf("Service %s: targetPort %v is not a port of the container (%v)", o.Metadata.Name, p.TargetPort, ports)
				}
			}
		case "Ingress":
			for _, r := range decodeSpec[ingressSpec](t, o).Rules {
				for _, p := range r.HTTP.Paths {
					b := p.Backend.Service
					if !slices.ContainsFunc(objs, func(s object) bool {
						return s.Kind == "Service" && s.Metadata.Name == b.Name &&
							slices.ContainsFunc(decodeSpec[serviceSpec](t, s).Ports, func(sp servicePort) bool { return sp.Name == b.Port.Name })
					}) {
						t.Errorf("Ingress %s: backend %s:%s is no Service port", o.Metadata.Name, b.Name, b.Port.Name)
					}
				}
			}
		}
	}
	if hpas != 1 || pdbs != 1 {
		t.Errorf("%d HorizontalPodAutoscalers and %d PodDisruptionBudgets; want one of each", hpas, pdbs)
	}
}

// checkDocumented: every FRESHET_* variable given to a service is one it
// documents (docs/<service>.md lists exactly what its config struct reads,
// which its docs test keeps so), a common one (docs/configuration.md) or
// one the pipeline file takes (docs/pipelines.md).
func checkDocumented(t *testing.T, name string, env map[string]string) {
	t.Helper()
	read := func(f string) string {
		b, err := os.ReadFile(filepath.Join(repoRoot, "docs", f))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		return string(b)
	}
	own, common, pipe := read(name+".md"), read("configuration.md"), read("pipelines.md")
	var unchecked []string
	for k := range env {
		if !strings.HasPrefix(k, "FRESHET_") {
			continue
		}
		quoted := "`" + k + "`"
		switch {
		case strings.Contains(common, quoted) || strings.Contains(own, quoted) || strings.Contains(pipe, k):
		case own == "":
			unchecked = append(unchecked, k)
		default:
			t.Errorf("%s is set, but docs/%s.md does not list it: a variable the service does not read", k, name)
		}
	}
	if len(unchecked) > 0 {
		slices.Sort(unchecked)
		t.Logf("docs/%s.md does not exist yet: %s not checked", name, strings.Join(unchecked, ", "))
	}
}

// TestProbePathsAreServed: the admin listener of every service serves the
// paths the probes ask for.
func TestProbePathsAreServed(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "pkg", "lifecycle", "admin.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{`"GET /healthz"`, `"GET /readyz"`} {
		if !bytes.Contains(b, []byte(p)) {
			t.Errorf("pkg/lifecycle/admin.go does not serve %s", p)
		}
	}
}

// TestScalingWithinPartitions: the pipeline of the ConfigMap loads, and no
// consumer group is scaled past the partitions it splits (the extra
// instances would idle).
func TestScalingWithinPartitions(t *testing.T) {
	p, err := pipeline.Load("pipeline/freshet.yaml")
	if err != nil {
		t.Fatalf("the ConfigMap's pipeline does not load: %v", err)
	}
	bound := map[string]string{"personalizer": "user.profiles", "invalidator": "content.changes"}
	found := 0
	for _, o := range loadObjects(t) {
		if o.Kind != "HorizontalPodAutoscaler" {
			continue
		}
		h := decodeSpec[hpaSpec](t, o)
		topic, ok := bound[h.ScaleTargetRef.Name]
		if !ok {
			continue
		}
		found++
		parts := int(p.Topics[topic].Partitions)
		if h.MaxReplicas > parts {
			t.Errorf("HPA %s: up to %d instances, but %s has %d partitions", o.Metadata.Name, h.MaxReplicas, topic, parts)
		}
	}
	if found != len(bound) {
		t.Errorf("%d of the %d partition-bound HPAs found", found, len(bound))
	}
}

// The pipeline the manifests mount is the repository's default one, byte
// for byte: kustomize reads no file outside deploy/k8s, so it is a copy
// (cp pipelines/freshet.yaml deploy/k8s/pipeline/freshet.yaml), and a copy
// left behind once missed a fix of the default (breaking: "t").
func TestPipelineIsTheDefault(t *testing.T) {
	want, err := os.ReadFile(filepath.Join(repoRoot, "pipelines", "freshet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join("pipeline", "freshet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("deploy/k8s/pipeline/freshet.yaml differs from pipelines/freshet.yaml: cp pipelines/freshet.yaml deploy/k8s/pipeline/freshet.yaml")
	}
}
