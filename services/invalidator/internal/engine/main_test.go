package engine_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/services/invalidator/internal/engine"
	"github.com/freshet/freshet/services/invalidator/internal/itest"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.NeedKafka) }

// env is one test's broker topics, client and running engine.
type env struct {
	kt     testenv.KafkaTest
	k      *itest.Kafka
	topics itest.Topics
	group  string
}

func newEnv(t *testing.T) *env { return newBenchEnv(t) }

func newBenchEnv(t testing.TB) *env {
	kt := testenv.Kafka(t)
	return &env{kt: kt, k: itest.NewKafka(t, kt), topics: itest.NewTopics(kt), group: kt.Group("invalidator")}
}

// start runs an engine over the pipeline file text with the environment
// variables vars (tokens), until the test ends.
func (e *env) start(t testing.TB, file string, vars map[string]string) *engine.Engine {
	t.Helper()
	p, err := pipeline.ParseEnv("test.yaml", []byte(file), config.MapLookup(vars))
	if err != nil {
		t.Fatal(err)
	}
	return itest.StartEngine(t, e.config(p, vars))
}

func (e *env) config(p *pipeline.Pipeline, vars map[string]string) engine.Config {
	return engine.Config{
		Kafka:          kafkaConfig(e.kt),
		Pipeline:       p,
		Topics:         engine.Topics(e.topics),
		Group:          e.group,
		CommitInterval: 20 * time.Millisecond,
		SessionTimeout: 6 * time.Second,
		EnsureTopics:   true,
		Lookup:         config.MapLookup(vars),
		HTTPClient:     &http.Client{},
	}
}

// startCancelable is start, and returns a function that stops the engine
// (gracefully) before the test ends.
func (e *env) startCancelable(t testing.TB, file string, vars map[string]string) (stop func()) {
	t.Helper()
	p, err := pipeline.ParseEnv("test.yaml", []byte(file), config.MapLookup(vars))
	if err != nil {
		t.Fatal(err)
	}
	return itest.StartEngineStoppable(t, e.config(p, vars))
}

// caughtUp waits until the engine committed every change produced.
func (e *env) caughtUp(t testing.TB) {
	t.Helper()
	itest.Eventually(t, 60*time.Second, func() bool { return e.k.CaughtUp(e.group, e.topics.Content) }, func() string { return "offsets not committed to the end" })
}

func kafkaConfig(kt testenv.KafkaTest) kafka.Config {
	return kafka.Config{Brokers: kt.Seeds, ClientID: "invalidator-test"}
}
