package engine_test

import (
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/codec/codectest"
	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/pkg/edgefake"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/services/invalidator/internal/itest"
)

// A schema registry that does not answer is no fault of the records: the
// changes it holds up wait for it (none goes to the DLQ) and are purged
// once it is back.
func TestRegistryOutageDeadLettersNothing(t *testing.T) {
	e := newEnv(t)
	reg := codectest.NewRegistry()
	t.Cleanup(reg.Close)
	front := codectest.NewOutage(reg)
	t.Cleanup(front.Close)
	prod, err := codec.New(codec.WithRegistry(reg.URL())) // registry-framed values
	if err != nil {
		t.Fatal(err)
	}
	e.k.Codec = prod
	fastly, cf := fakes(t, "f", "c", edgefake.Options{})
	vars := map[string]string{"FASTLY_TOKEN": "f", "CF_TOKEN": "c"}
	p, err := pipeline.ParseEnv("test.yaml", []byte(providersFile(fastly.URL(), cf.URL(), 0, 0)), config.MapLookup(vars))
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.config(p, vars)
	cfg.Kafka.SchemaRegistryURL = front.URL()
	front.SetDown(true)
	itest.StartEngine(t, cfg)
	e.k.Changes(e.topics.Content, manyChanges(3, 0)...)

	time.Sleep(1500 * time.Millisecond) // several attempts while the registry is away
	if dlq := e.k.DLQ(e.topics.Content); len(dlq) != 0 {
		t.Fatalf("%d records dead-lettered while the registry was away, want 0", len(dlq))
	}
	if fastly.Purged("content:0") != 0 {
		t.Fatal("a change was purged without being decoded")
	}
	front.SetDown(false)
	e.caughtUp(t)
	for _, k := range []string{"content:0", "content:1", "content:2"} {
		if fastly.Purged(k) != 1 {
			t.Errorf("%s purged %d times on fastly after the registry came back, want 1", k, fastly.Purged(k))
		}
	}
	if dlq := e.k.DLQ(e.topics.Content); len(dlq) != 0 {
		t.Errorf("%d records in the DLQ, want 0", len(dlq))
	}
}
