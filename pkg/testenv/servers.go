package testenv

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/pkg/servers"
)

func postgresServer() (*servers.Postgres, error) {
	return env.postgres.get(func() (*servers.Postgres, error) {
		dir, err := serverDir("postgres")
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		pg, err := servers.StartPostgres(ctx, servers.PostgresOptions{Dir: dir})
		if err != nil {
			return nil, err
		}
		return pg, register(pg)
	})
}

func clickhouseServer() (*servers.ClickHouse, error) {
	return env.clickhouse.get(func() (*servers.ClickHouse, error) {
		dir, err := serverDir("clickhouse")
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		ch, err := servers.StartClickHouse(ctx, servers.ClickHouseOptions{Dir: dir})
		if err != nil {
			return nil, err
		}
		return ch, register(ch)
	})
}

func kafkaServer() (*servers.Kfake, error) {
	return env.kafka.get(func() (*servers.Kfake, error) {
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		k, err := servers.StartKfake(ctx, servers.KfakeOptions{AllowAutoTopicCreation: true})
		if err != nil {
			return nil, err
		}
		return k, register(k)
	})
}

// PostgresServer returns the package's Postgres server, started on first
// use, for what the per-test database does not cover (Restart, other
// databases). Tests that restart it should not run in parallel with other
// tests of the package.
func PostgresServer(tb testing.TB) *servers.Postgres {
	tb.Helper()
	ready(tb, true)
	pg, err := postgresServer()
	check(tb, "testenv: postgres", err)
	return pg
}

// Postgres creates a database of its own for the test on the package's
// server and returns its DSN (superuser postgres, trust authentication;
// add replication=database for a logical replication connection). The
// database is dropped when the test ends, with its replication slots and
// sessions, unless FRESHET_KEEP_TESTDATA=1.
func Postgres(tb testing.TB) string {
	tb.Helper()
	pg := PostgresServer(tb)
	name := uniqueName(tb, 63)
	if err := pg.CreateDatabase(ctxFor(tb, opTimeout), name); err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	tb.Cleanup(func() {
		if keepTestdata() {
			tb.Logf("testenv: kept database %s (%s)", name, pg.DSN(name))
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if err := pg.DropDatabase(ctx, name); err != nil {
			tb.Errorf("testenv: %v", err)
		}
	})
	return pg.DSN(name)
}

// ClickHouseDB is a database of a test's own on the package's ClickHouse
// server.
type ClickHouseDB struct {
	// Server is the package's server.
	Server *servers.ClickHouse
	// Database is the test's database.
	Database string
}

// Addr returns host:port of the native protocol.
func (d ClickHouseDB) Addr() string { return d.Server.NativeAddr() }

// DSN returns a native-protocol DSN for the test's database.
func (d ClickHouseDB) DSN() string { return d.Server.DSN(d.Database) }

// Options returns clickhouse-go options for the test's database.
func (d ClickHouseDB) Options() *clickhouse.Options { return d.Server.Options(d.Database) }

// ClickHouseServer returns the package's ClickHouse server, started on
// first use (for Restart, or other databases).
func ClickHouseServer(tb testing.TB) *servers.ClickHouse {
	tb.Helper()
	ready(tb, true)
	ch, err := clickhouseServer()
	check(tb, "testenv: clickhouse", err)
	return ch
}

// ClickHouse creates a database of its own for the test on the package's
// server. It is dropped when the test ends, unless
// FRESHET_KEEP_TESTDATA=1.
func ClickHouse(tb testing.TB) ClickHouseDB {
	tb.Helper()
	ch := ClickHouseServer(tb)
	name := uniqueName(tb, 100)
	if err := ch.CreateDatabase(ctxFor(tb, opTimeout), name); err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	tb.Cleanup(func() {
		if keepTestdata() {
			tb.Logf("testenv: kept clickhouse database %s", name)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if err := ch.DropDatabase(ctx, name); err != nil {
			tb.Errorf("testenv: %v", err)
		}
	})
	return ClickHouseDB{Server: ch, Database: name}
}

// Varnish starts a varnishd of the test's own with vcl (which names the
// test's backend) and stops it when the test ends. A VCL that does not
// compile fails the test with the compiler's message.
func Varnish(tb testing.TB, vcl string) *servers.Varnish {
	tb.Helper()
	ready(tb, true)
	dir, err := serverDir("varnish")
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	v, err := servers.StartVarnish(ctxFor(tb, startTimeout), servers.VarnishOptions{VCL: vcl, Dir: dir})
	check(tb, "testenv: varnish", err)
	if err := register(v); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		unregister(v)
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		if err := v.Stop(ctx); err != nil {
			tb.Errorf("testenv: %v", err)
		}
	})
	return v
}

// KafkaTest is the package's Kafka-protocol broker (kfake, in process) as
// one test sees it: the seeds, and a prefix that is the test's own.
type KafkaTest struct {
	// Seeds are the brokers' host:port, for kgo.SeedBrokers.
	Seeds []string
	// Prefix is unique to the test; Topic and Group put it in front of
	// names so that tests never share topics or consumer groups.
	Prefix string
	// Cluster is the kfake cluster, for fault injection (Control,
	// ShufflePartitionLeaders...). It is shared by the package's tests.
	Cluster *kfake.Cluster
}

// Topic returns the test's name for topic, e.g. "t7_testfoo.content.changes".
func (k KafkaTest) Topic(topic string) string { return k.Prefix + "." + topic }

// Group returns the test's name for a consumer group or transactional id.
func (k KafkaTest) Group(group string) string { return k.Prefix + "." + group }

// KafkaBroker returns the package's broker, started on first use. It
// allows auto-creation of topics for clients that ask for it
// (kgo.AllowAutoTopicCreation); DefaultPartitions is kfake's 10.
func KafkaBroker(tb testing.TB) *servers.Kfake {
	tb.Helper()
	ready(tb, false)
	k, err := kafkaServer()
	check(tb, "testenv: kafka", err)
	return k
}

// Kafka returns the package's broker with the test's prefix. When the
// test ends, the topics named with that prefix are deleted, unless
// FRESHET_KEEP_TESTDATA=1. The broker runs in process: it needs no binary
// and is not skipped by -short.
func Kafka(tb testing.TB) KafkaTest {
	tb.Helper()
	k := KafkaBroker(tb)
	return KafkaTest{Seeds: k.Seeds(), Prefix: prefix(tb), Cluster: k.Cluster()}
}

// Topic returns the test's own name for topic on the package's broker,
// e.g. Topic(t, "content.changes"); the same in every call of one test.
func Topic(tb testing.TB, topic string) string {
	tb.Helper()
	return Kafka(tb).Topic(topic)
}

// Group returns the test's own name for a consumer group or transactional
// id on the package's broker.
func Group(tb testing.TB, group string) string {
	tb.Helper()
	return Kafka(tb).Group(group)
}

var prefixMu sync.Mutex

// prefix returns the test's prefix, made on first use; the test's topics
// are deleted when it ends.
func prefix(tb testing.TB) string {
	prefixMu.Lock()
	defer prefixMu.Unlock()
	if env.prefixes == nil {
		env.prefixes = map[testing.TB]string{}
	}
	if p, ok := env.prefixes[tb]; ok {
		return p
	}
	p := uniqueName(tb, 100)
	env.prefixes[tb] = p
	tb.Cleanup(func() {
		prefixMu.Lock()
		delete(env.prefixes, tb)
		prefixMu.Unlock()
		if keepTestdata() {
			return
		}
		if err := deleteTopics(p); err != nil {
			tb.Errorf("testenv: %v", err)
		}
	})
	return p
}

// deleteTopics deletes the topics named with prefix p.
func deleteTopics(p string) error {
	k, err := kafkaServer()
	if err != nil {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Seeds()...))
	if err != nil {
		return fmt.Errorf("delete topics %s.*: %w", p, err)
	}
	adm := kadm.NewClient(cl)
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("delete topics %s.*: %w", p, err)
	}
	var mine []string
	for _, t := range topics.Names() {
		if strings.HasPrefix(t, p+".") {
			mine = append(mine, t)
		}
	}
	if len(mine) == 0 {
		return nil
	}
	resp, err := adm.DeleteTopics(ctx, mine...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("delete topics %v: %w", mine, err)
	}
	return nil
}
