package testenv_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/pkg/testenv"
)

func TestMain(m *testing.M) {
	testenv.Main(m, testenv.NeedPostgres, testenv.NeedKafka)
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPostgresDatabasePerTest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers")
	}
	ctx := ctxFor(t)
	var dsns []string
	var dbs []string
	for _, name := range []string{"first", "second"} {
		t.Run(name, func(t *testing.T) {
			dsn := testenv.Postgres(t)
			dsns = append(dsns, dsn)
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			var db string
			if err := conn.QueryRow(ctx, "select current_database()").Scan(&db); err != nil {
				t.Fatal(err)
			}
			dbs = append(dbs, db)
			// A table that would clash if the database were shared, and a
			// slot that must not outlive the test.
			if _, err := conn.Exec(ctx, "create table items (id int primary key)"); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(ctx, "select pg_create_logical_replication_slot('slot_'||md5(current_database()), 'pgoutput')"); err != nil {
				t.Fatal(err)
			}
		})
	}
	if len(dbs) != 2 || dbs[0] == dbs[1] {
		t.Fatalf("databases %v; want two distinct ones", dbs)
	}
	admin, err := pgx.Connect(ctx, testenv.PostgresServer(t).DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var left, slots int
	if err := admin.QueryRow(ctx, "select count(*) from pg_database where datname = any($1)", dbs).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if err := admin.QueryRow(ctx, "select count(*) from pg_replication_slots where database = any($1)", dbs).Scan(&slots); err != nil {
		t.Fatal(err)
	}
	if left != 0 || slots != 0 {
		t.Fatalf("after the tests: %d databases, %d slots left; want none", left, slots)
	}
}

func TestClickHouseDatabasePerTest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers")
	}
	ctx := ctxFor(t)
	var name string
	t.Run("uses its database", func(t *testing.T) {
		db := testenv.ClickHouse(t)
		name = db.Database
		conn, err := clickhouse.Open(db.Options())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.Exec(ctx, "CREATE TABLE t (x UInt8) ENGINE = Memory"); err != nil {
			t.Fatal(err)
		}
		var cur string
		if err := conn.QueryRow(ctx, "SELECT currentDatabase()").Scan(&cur); err != nil || cur != db.Database {
			t.Fatalf("currentDatabase() = %q, %v; want %q", cur, err, db.Database)
		}
	})
	conn, err := clickhouse.Open(testenv.ClickHouseServer(t).Options("default"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = ?", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("database %s left after its test", name)
	}
}

func TestVarnishPerCall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers")
	}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "from origin")
	}))
	defer backend.Close()
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(backend.URL, "http://"))
	vcl := fmt.Sprintf("vcl 4.1;\nbackend origin { .host = %q; .port = %q; }\n", host, port)

	var addr string
	t.Run("gets through", func(t *testing.T) {
		v := testenv.Varnish(t, vcl)
		addr = v.Addr()
		resp, err := http.Get(v.URL() + "/page")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "from origin" || resp.Header.Get("Via") == "" {
			t.Fatalf("GET through varnish: %s %q (Via %q)", resp.Status, body, resp.Header.Get("Via"))
		}
	})
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("varnish of the finished test still listens on %s", addr)
	}
}

func TestKafkaPrefixPerTest(t *testing.T) {
	ctx := ctxFor(t)
	var topics []string
	for _, name := range []string{"a", "b"} {
		t.Run(name, func(t *testing.T) {
			kt := testenv.Kafka(t)
			topic := testenv.Topic(t, "content.changes")
			if topic != kt.Topic("content.changes") {
				t.Fatalf("Topic(t) %q differs from Kafka(t).Topic %q within one test", topic, kt.Topic("content.changes"))
			}
			topics = append(topics, topic)
			cl, err := kgo.NewClient(kgo.SeedBrokers(kt.Seeds...), kgo.AllowAutoTopicCreation(),
				kgo.DefaultProduceTopic(topic), kgo.ConsumeTopics(topic), kgo.ConsumerGroup(testenv.Group(t, "g")))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(name)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			recs := cl.PollFetches(ctx).Records()
			if len(recs) != 1 || string(recs[0].Value) != name {
				t.Fatalf("fetched %v; want the one record of this test", recs)
			}
		})
	}
	if topics[0] == topics[1] {
		t.Fatalf("two tests share topic %s", topics[0])
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(testenv.KafkaBroker(t).Seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	defer adm.Close()
	listed, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range topics {
		if listed.Has(tp) {
			t.Errorf("topic %s left after its test", tp)
		}
	}
}
