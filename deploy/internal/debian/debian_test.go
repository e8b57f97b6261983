package debian

import (
	"slices"
	"strings"
	"testing"
)

func TestMissingPackagesCommand(t *testing.T) {
	reqs := []Requirement{
		{Part: "a", Paths: []string{"/nonexistent/freshet-a"}, Packages: []string{"pkg-a", "pkg-shared"}},
		{Part: "b", Paths: []string{"freshet-no-such-binary"}, Packages: []string{"pkg-shared", "pkg-b"}},
		{Part: "sh", Paths: []string{"sh"}, Packages: []string{"dash"}},
	}
	got := Missing(reqs)
	if want := []string{"pkg-a", "pkg-shared", "pkg-b"}; !slices.Equal(got, want) {
		t.Fatalf("missing %v; want %v", got, want)
	}
	e := &MissingPackagesError{Packages: got}
	if !strings.Contains(e.Error(), "apt-get install -y --no-install-recommends pkg-a pkg-shared pkg-b") {
		t.Fatalf("error does not give the install command: %s", e)
	}
}

func TestTestsNeedTheStack(t *testing.T) {
	for _, r := range Stack {
		if !slices.ContainsFunc(Tests, func(q Requirement) bool { return q.Part == r.Part }) {
			t.Errorf("Tests lacks the stack's %s", r.Part)
		}
	}
}
