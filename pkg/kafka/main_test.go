package kafka

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// cluster is the in-process Kafka-protocol broker shared by the package's
// tests; each test uses its own topics and groups.
var cluster *kfake.Cluster

func TestMain(m *testing.M) {
	var err error
	cluster, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "seeded"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "start kfake: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	cluster.Close()
	os.Exit(code)
}

// testConfig is a Config for the shared cluster.
func testConfig() Config {
	return Config{Brokers: cluster.ListenAddrs(), ClientID: "freshet-test"}
}

// testLog is a test logger for franz-go's warnings and errors.
func testLog(t *testing.T) *zap.Logger {
	return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
}

// newTestClient returns a client of the shared cluster, closed at cleanup.
func newTestClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := NewClient(testConfig(), testLog(t), opts...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func newTestAdmin(t *testing.T) *kadm.Client {
	t.Helper()
	return kadm.NewClient(newTestClient(t))
}

var topicSeq atomic.Int64

var unsafeTopicChars = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// topicName returns a topic name unique to this run, readable from t's name.
func topicName(t *testing.T, suffix string) string {
	name := unsafeTopicChars.ReplaceAllString(strings.ToLower(t.Name()), "-")
	return fmt.Sprintf("%s-%d%s", name, topicSeq.Add(1), suffix)
}

// testCtx is a context bounded to catch hangs, not to time anything.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// seedTopic creates a topic directly in the cluster, bypassing this package.
func seedTopic(t *testing.T, name string, partitions int32, configs map[string]string) {
	t.Helper()
	if err := cluster.CreateTopic(name, partitions, configs); err != nil {
		t.Fatalf("create topic %q: %v", name, err)
	}
}

// consume reads n records from the start of topic with a fresh client.
func consume(t *testing.T, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := newTestClient(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx := testCtx(t)
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consume %q: got %d of %d records: %v", topic, len(out), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("consume %s/%d: %v", topic, p, err)
		})
		out = append(out, fs.Records()...)
	}
	return out
}
