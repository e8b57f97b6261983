package servers_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/pkg/servers"
)

// produceFetch produces one record to topic and reads it back with a
// consumer group that commits it.
func produceFetch(ctx context.Context, t *testing.T, seeds []string, topic, group string, value string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte(value)}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	fetches := cl.PollFetches(ctx)
	if err := fetches.Err(); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	recs := fetches.Records()
	if len(recs) != 1 || string(recs[0].Value) != value {
		t.Fatalf("fetched %d records (%v); want just %q", len(recs), recs, value)
	}
	if err := cl.CommitRecords(ctx, recs...); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

func TestKfake(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t, 30*time.Second)
	tests := []struct {
		name string
		opts servers.KfakeOptions
		want int // brokers
	}{
		{"default: one broker", servers.KfakeOptions{}, 1},
		{"three brokers", servers.KfakeOptions{Brokers: 3, DefaultPartitions: 2}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := servers.StartKfake(ctx, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer k.Stop(context.Background())
			if len(k.Seeds()) != tt.want {
				t.Fatalf("seeds %v; want %d", k.Seeds(), tt.want)
			}
			adm := kadm.NewClient(mustClient(t, k.Seeds()))
			defer adm.Close()
			if _, err := adm.CreateTopic(ctx, -1, -1, nil, "events"); err != nil {
				t.Fatal(err)
			}
			produceFetch(ctx, t, k.Seeds(), "events", "g1", "hello")
			seeds := k.Seeds()
			if err := k.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			if err := k.Stop(ctx); err != nil {
				t.Fatalf("second stop: %v", err)
			}
			checkGone(t, 0, seeds, "")
		})
	}
}

func mustClient(t *testing.T, seeds []string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func TestKfakePersistentFixedPort(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t, 30*time.Second)
	port, err := servers.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	opts := servers.KfakeOptions{Dir: t.TempDir(), Ports: []int{port}, SeedTopics: []string{"kept"}, DefaultPartitions: 1}
	k, err := servers.StartKfake(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if want := net.JoinHostPort("127.0.0.1", strconv.Itoa(port)); k.Seeds()[0] != want {
		t.Fatalf("seeds %v; want [%s]", k.Seeds(), want)
	}
	produceFetch(ctx, t, k.Seeds(), "kept", "g", "first")

	t.Run("taken fixed port fails", func(t *testing.T) {
		if k2, err := servers.StartKfake(ctx, servers.KfakeOptions{Ports: []int{port}}); err == nil {
			k2.Stop(ctx)
			t.Fatal("second broker started on a taken port")
		}
	})

	if err := k.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	k, err = servers.StartKfake(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop(context.Background())
	// The group resumes after the committed record: it sees only the new one.
	produceFetch(ctx, t, k.Seeds(), "kept", "g", "second")
	adm := kadm.NewClient(mustClient(t, k.Seeds()))
	defer adm.Close()
	ends, err := adm.ListEndOffsets(ctx, "kept")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("kept", 0); o.Offset != 2 {
		t.Fatalf("end offset after restart %d; want 2 (the first record survived)", o.Offset)
	}
}
