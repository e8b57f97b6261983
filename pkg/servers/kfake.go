package servers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// KfakeOptions configures StartKfake. The zero value starts one in-memory
// broker on a free port.
type KfakeOptions struct {
	// Dir, when set, persists the cluster there (kfake.DataDir): topics,
	// records and committed group offsets survive a Stop and a new
	// StartKfake on the same folder. Empty means in memory only.
	Dir string
	// Brokers is the number of brokers. Zero means 1, or len(Ports) when
	// Ports is set.
	Brokers int
	// Ports are fixed ports on 127.0.0.1, one per broker; other processes
	// can then connect to known addresses. Empty means free ports. A fixed
	// port that is taken fails Start (there is no retry).
	Ports []int
	// DefaultPartitions is the partition count of auto-created topics and
	// of CreateTopics with -1 partitions. Zero means kfake's default of 10.
	DefaultPartitions int
	// SeedTopics are created at start with DefaultPartitions partitions,
	// unless the persisted cluster already holds state.
	SeedTopics []string
	// AllowAutoTopicCreation lets metadata requests create topics, as
	// Kafka's auto.create.topics.enable does. Off by default: services
	// create their topics.
	AllowAutoTopicCreation bool
	// SyncWrites fsyncs every batch when Dir is set (slower, survives a
	// machine crash). Off by default.
	SyncWrites bool
	// Extra are further kfake options (logger, SASL, TLS, broker configs,
	// group session timeouts...), applied after the ones above.
	Extra []kfake.Opt
	// ReadyTimeout bounds the wait for every broker to accept a
	// connection. Zero means DefaultReadyTimeout (30s).
	ReadyTimeout time.Duration
}

// Kfake is an in-process Kafka-protocol cluster from franz-go's kfake,
// started by StartKfake. It is the single-machine default of the tests and
// the local stack, not a production broker: no real replication, and state
// is persisted only when Dir is set. Methods are safe for concurrent use.
type Kfake struct {
	cluster *kfake.Cluster
	seeds   []string
	dir     string

	once    sync.Once
	stopped chan struct{}
}

// StartKfake starts the cluster and returns once every broker accepts TCP
// connections. Its goroutines live in the calling process and end with it.
func StartKfake(ctx context.Context, opts KfakeOptions) (*Kfake, error) {
	n := opts.Brokers
	if len(opts.Ports) > 0 {
		if n != 0 && n != len(opts.Ports) {
			return nil, fmt.Errorf("start kfake: %d brokers but %d ports", n, len(opts.Ports))
		}
		n = len(opts.Ports)
	}
	if n == 0 {
		n = 1
	}
	kopts := []kfake.Opt{kfake.NumBrokers(n)} // kfake listens on 127.0.0.1 only
	if len(opts.Ports) > 0 {
		kopts = append(kopts, kfake.Ports(opts.Ports...))
	}
	if opts.Dir != "" {
		kopts = append(kopts, kfake.DataDir(opts.Dir))
		if opts.SyncWrites {
			kopts = append(kopts, kfake.SyncWrites())
		}
	}
	if opts.DefaultPartitions > 0 {
		kopts = append(kopts, kfake.DefaultNumPartitions(opts.DefaultPartitions))
	}
	if len(opts.SeedTopics) > 0 {
		kopts = append(kopts, kfake.SeedTopics(-1, opts.SeedTopics...))
	}
	if opts.AllowAutoTopicCreation {
		kopts = append(kopts, kfake.AllowAutoTopicCreation())
	}
	kopts = append(kopts, opts.Extra...)

	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("start kfake (ports %v, dir %q): %w", opts.Ports, opts.Dir, err)
	}
	k := &Kfake{cluster: c, seeds: c.ListenAddrs(), dir: opts.Dir, stopped: make(chan struct{})}
	if err := k.waitReady(ctx, orDefault(opts.ReadyTimeout, DefaultReadyTimeout)); err != nil {
		_ = k.Stop(context.Background())
		return nil, err
	}
	return k, nil
}

func (k *Kfake) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	for _, addr := range k.seeds {
		for {
			conn, err := d.DialContext(ctx, "tcp", addr)
			if err == nil {
				conn.Close()
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("start kfake: broker %s not accepting connections: %w", addr, err)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// Seeds returns the host:port of every broker, for kgo.SeedBrokers.
func (k *Kfake) Seeds() []string { return append([]string(nil), k.seeds...) }

// Dir returns the persistence folder, or "" for an in-memory cluster.
func (k *Kfake) Dir() string { return k.dir }

// Cluster returns the kfake cluster, for its fault helpers (Control,
// ControlKey, AddNode, RemoveNode, ShufflePartitionLeaders...).
func (k *Kfake) Cluster() *kfake.Cluster { return k.cluster }

// Stop closes the listeners and, when Dir is set, saves the state to disk.
// It returns ctx's error if saving outlasts ctx (the save still completes
// in the background). Calling it again does nothing and returns nil.
func (k *Kfake) Stop(ctx context.Context) error {
	first := false
	k.once.Do(func() {
		first = true
		go func() {
			k.cluster.Close()
			close(k.stopped)
		}()
	})
	if !first {
		return nil
	}
	select {
	case <-k.stopped:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop kfake: %w", errors.Join(ctx.Err(), errors.New("state still being saved")))
	}
}
