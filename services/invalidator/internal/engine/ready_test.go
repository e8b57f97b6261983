package engine_test

import (
	"testing"

	"github.com/freshet/freshet/pkg/edgefake"
)

// Ready waits for the consumer group: once the engine says it is ready,
// the group is stable and the engine holds every partition of the content
// topic, so what is produced from then on is read at once (before, it was
// ready ahead of the join, and the first changes waited for it: a quarter
// of a second on kfake).
func TestReadyOnceJoined(t *testing.T) {
	e := newEnv(t)
	fastly, cf := fakes(t, "f", "c", edgefake.Options{})
	file := "topics: {content.changes: {partitions: 4}}\n" + providersFile(fastly.URL(), cf.URL(), 0, 0)
	e.start(t, file, map[string]string{"FASTLY_TOKEN": "f", "CF_TOKEN": "c"}) // returns once Ready
	groups, err := e.k.Adm.DescribeGroups(t.Context(), e.group)
	if err != nil {
		t.Fatal(err)
	}
	g, ok := groups[e.group]
	if !ok || g.Err != nil {
		t.Fatalf("describe group %s: %v", e.group, g.Err)
	}
	if g.State != "Stable" {
		t.Errorf("group state %q when the engine was ready, want Stable", g.State)
	}
	if got := len(g.AssignedPartitions()[e.topics.Content]); got != 4 {
		t.Errorf("%d partitions of %s assigned when the engine was ready, want 4", got, e.topics.Content)
	}
}
