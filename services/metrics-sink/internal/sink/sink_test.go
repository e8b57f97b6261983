package sink_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/services/metrics-sink/internal/queries"
	"github.com/freshet/freshet/services/metrics-sink/internal/sink"
	"github.com/freshet/freshet/services/metrics-sink/internal/sinktest"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.NeedClickHouse, testenv.NeedKafka) }

type env struct {
	kt     testenv.KafkaTest
	topics sinktest.Topics
	prod   *sinktest.Producer
	db     testenv.ClickHouseDB
	conn   driver.Conn
	cfg    sink.Config
}

func newEnv(t *testing.T) *env {
	t.Helper()
	kt := testenv.Kafka(t)
	e := &env{kt: kt, topics: sinktest.NewTopics(kt), db: testenv.ClickHouse(t)}
	e.prod = sinktest.NewProducer(t, kt.Seeds, e.topics)
	e.conn = sinktest.Conn(t, e.db.Options())
	p, _ := sinktest.Pipeline(t)
	e.cfg = sink.Config{
		Kafka:         kafka.Config{Brokers: kt.Seeds},
		Pipeline:      p,
		Group:         kt.Group("metrics-sink"),
		Topics:        e.topics.Map(),
		DLQTopics:     []string{e.topics.DLQ},
		ClickHouse:    e.db.Options(),
		BatchRows:     1000,
		BatchInterval: 100 * time.Millisecond,
		EnsureTopics:  true,
	}
	return e
}

// start runs a sink until the test ends.
func (e *env) start(t *testing.T) *sink.Sink {
	t.Helper()
	s, err := sink.New(e.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sink: %v", err)
		}
		_ = s.Close(context.Background())
	})
	return s
}

func (e *env) count(t *testing.T, q string) uint64 { return sinktest.Count(t, e.conn, q) }

// Each input's rows arrive with the values of its events.
func TestRowsArrive(t *testing.T) {
	e := newEnv(t)
	e.start(t)
	evs := sinktest.Script(20)
	e.prod.Events(evs...)
	sinktest.WaitRows(t, e.conn, "rum_beacons", 20, 30*time.Second)
	sinktest.WaitRows(t, e.conn, "latency_samples", 40, 30*time.Second)
	sinktest.WaitRows(t, e.conn, "edge_purges", 20, 30*time.Second)
	sinktest.WaitRows(t, e.conn, "deliveries", 40, 30*time.Second)

	change := sinktest.ChangeID(3)
	commit := sinktest.Base.Add(3 * time.Second)
	ctx := context.Background()

	var (
		service, stage, table string
		dur                   int64
		at, committed         time.Time
		atMS                  uint16
	)
	err := e.conn.QueryRow(ctx, `SELECT service, stage, duration_us, at, at_ms, committed_at, label_values[indexOf(label_keys, 'table')]
		FROM latency_samples WHERE subject_event_id = ? AND service = 'cdc-ingestor'`, change).Scan(&service, &stage, &dur, &at, &atMS, &committed, &table)
	if err != nil {
		t.Fatal(err)
	}
	if stage != "commit_to_ack" || dur != 13000 || !at.Equal(commit) || atMS != 13 || !committed.Equal(commit) || table != "public.content" {
		t.Errorf("latency sample: %s %s %d %v %d %v %q", service, stage, dur, at, atMS, committed, table)
	}

	var (
		target, outcome string
		attempts        uint32
		status          uint16
		keys, urls      uint32
		ids             []string
		lat             int64
		part, parts     uint16
	)
	err = e.conn.QueryRow(ctx, `SELECT target, outcome, attempts, status_code, key_count, url_count, change_event_ids, latency_from_commit_us, part, parts
		FROM edge_purges WHERE has(change_event_ids, ?)`, change).Scan(&target, &outcome, &attempts, &status, &keys, &urls, &ids, &lat, &part, &parts)
	if err != nil {
		t.Fatal(err)
	}
	if target != "varnish" || outcome != "acked" || attempts != 2 || status != 200 || keys != 1 || urls != 1 || len(ids) != 1 || lat != 59000 || part != 1 || parts != 1 {
		t.Errorf("purge: %s %s %d %d %d %d %v %d, part %d of %d", target, outcome, attempts, status, keys, urls, ids, lat, part, parts)
	}

	var (
		route, region, device, hash string
		names, ratings, nav, lagIDs []string
		values, lags                []float64
	)
	err = e.conn.QueryRow(ctx, `SELECT route, region, device_class, user_hash, vital_names, vital_values, vital_ratings, vital_navigation_types, lag_event_ids, lag_ms
		FROM rum_beacons WHERE has(lag_event_ids, ?)`, sinktest.DeliveryID(3, "user")).Scan(&route, &region, &device, &hash, &names, &values, &ratings, &nav, &lagIDs, &lags)
	if err != nil {
		t.Fatal(err)
	}
	if route != "/" || region != "us" || device != "desktop" || hash != sinktest.UserHash("test-key-0123456789", "user-3") ||
		len(names) != 2 || names[0] != "LCP" || values[0] != 1300 || ratings[0] != "good" || nav[1] != "reload" ||
		len(lags) != 2 || lags[0] != 115 || lags[1] != 135 || lagIDs[1] != sinktest.DeliveryID(3, "channel") {
		t.Errorf("beacon: %s %s %s %s %v %v %v %v %v %v", route, region, device, hash, names, values, ratings, nav, lagIDs, lags)
	}

	if n := e.count(t, "SELECT count() FROM deliveries WHERE change_event_id = '"+change+"' AND (channel = 'breaking' OR channel = '')"); n != 2 {
		t.Errorf("deliveries of change 3: %d", n)
	}

	// Rollups equal a direct computation on the raw rows.
	for _, c := range []struct{ name, rollup, direct string }{
		{"latency", `SELECT service, stage, countMerge(n), quantilesMerge(0.5, 0.95, 0.99)(q) FROM latency_1m GROUP BY service, stage ORDER BY service, stage`,
			`SELECT service, stage, count(), quantiles(0.5, 0.95, 0.99)(duration_us / 1000) FROM latency_samples GROUP BY service, stage ORDER BY service, stage`},
		{"purges", `SELECT target, outcome, countMerge(n), quantilesMerge(0.5, 0.95, 0.99)(q) FROM purge_latency_1m GROUP BY target, outcome ORDER BY target`,
			`SELECT target, outcome, count(), quantiles(0.5, 0.95, 0.99)(latency_from_commit_us / 1000) FROM edge_purges WHERE part = 1 GROUP BY target, outcome ORDER BY target`},
		{"sse lag", `SELECT route, region, countMerge(n), quantilesMerge(0.5, 0.95, 0.99)(q) FROM sse_lag_1m GROUP BY route, region ORDER BY route, region`,
			`SELECT route, region, count(), quantiles(0.5, 0.95, 0.99)(lag) FROM rum_beacons ARRAY JOIN lag_ms AS lag GROUP BY route, region ORDER BY route, region`},
		{"web vitals", `SELECT route, name, countMerge(n), quantilesMerge(0.5, 0.75, 0.95, 0.99)(q) FROM web_vitals_1m GROUP BY route, name ORDER BY route, name`,
			`SELECT route, name, count(), quantiles(0.5, 0.75, 0.95, 0.99)(value) FROM rum_beacons ARRAY JOIN vital_names AS name, vital_values AS value GROUP BY route, name ORDER BY route, name`},
	} {
		got, want := rollupRows(t, e.conn, c.rollup), rollupRows(t, e.conn, c.direct)
		if len(got) == 0 || len(got) != len(want) {
			t.Errorf("%s: rollup %v, direct %v", c.name, got, want)
			continue
		}
		for i := range got {
			if !got[i].equal(want[i]) {
				t.Errorf("%s row %d: rollup %+v, direct %+v", c.name, i, got[i], want[i])
			}
		}
	}
	if n := e.count(t, "SELECT sumMerge(good) FROM web_vitals_1m WHERE name = 'LCP'"); n != 16 { // LCP 1000..2500 ms: 16 good
		t.Errorf("good LCP in the rollup: %d", n)
	}
}

// A batch whose audit came in 3 records is one batch in purge_latency_1m
// and in the purge_latency query, with its attempts once, while
// edge_purges keeps the 3 rows and the freshness query each change once.
func TestSplitAuditCountedOnce(t *testing.T) {
	e := newEnv(t)
	e.start(t)
	e.prod.Events(sinktest.SplitPurge("edge", 3, 4)...)
	e.prod.Events(sinktest.Script(1)...) // another target's batch, whole
	sinktest.WaitRows(t, e.conn, "edge_purges", 4, 30*time.Second)
	sinktest.WaitRows(t, e.conn, "latency_samples", 2, 30*time.Second)

	if n := e.count(t, "SELECT count() FROM edge_purges WHERE target = 'edge' AND parts = 3"); n != 3 {
		t.Errorf("edge_purges: %d rows of the split batch, want 3", n)
	}
	if n := e.count(t, "SELECT toUInt64(groupArray(part) = [1, 2, 3]) FROM (SELECT part FROM edge_purges WHERE target = 'edge' ORDER BY part)"); n != 1 {
		t.Error("edge_purges: the split batch's rows are not parts 1, 2 and 3")
	}
	var n, attempts uint64
	var q []float64
	if err := e.conn.QueryRow(context.Background(), `SELECT countMerge(n), sumMerge(attempts), quantilesMerge(0.5, 0.95, 0.99)(q)
		FROM purge_latency_1m WHERE target = 'edge'`).Scan(&n, &attempts, &q); err != nil {
		t.Fatal(err)
	}
	if n != 1 || attempts != 4 || len(q) != 3 || q[0] != 80 || q[2] != 80 {
		t.Errorf("purge_latency_1m: %d batches, %d attempts, latency %v; want 1, 4, 80 ms", n, attempts, q)
	}

	ctx := context.Background()
	res, err := queries.Run(ctx, e.conn, "purge_latency", time.Unix(0, 0), "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]string{}
	for _, row := range res.Rows {
		got[row[0]] = map[string]string{}
		for i, c := range res.Columns {
			got[row[0]][c] = row[i]
		}
	}
	if r := got["edge"]; r["batches"] != "1" || r["acked"] != "1" || r["avg_attempts"] != "4" || r["p99_ms"] != "80" {
		t.Errorf("purge_latency for the split batch: %v, want 1 batch of 4 attempts, 80 ms", r)
	}
	if r := got["varnish"]; r["batches"] != "1" {
		t.Errorf("purge_latency for the whole batch: %v, want 1 batch", r)
	}

	res, err = queries.Run(ctx, e.conn, "freshness", time.Unix(0, 0), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range res.Rows {
		if row[0] == "commit → purge edge" && (row[1] != "6" || row[2] != "6") {
			t.Errorf("freshness of the split batch: %v, want its 6 changes once each", row)
		}
	}
}

type rollupRow struct {
	a, b string
	n    uint64
	q    []float64
}

func (r rollupRow) equal(o rollupRow) bool {
	if r.a != o.a || r.b != o.b || r.n != o.n || len(r.q) != len(o.q) {
		return false
	}
	for i := range r.q {
		if math.Abs(r.q[i]-o.q[i]) > 1e-9*math.Max(1, math.Abs(o.q[i])) {
			return false
		}
	}
	return true
}

func rollupRows(t *testing.T, conn driver.Conn, q string) []rollupRow {
	t.Helper()
	rs, err := conn.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rs.Close()
	var out []rollupRow
	for rs.Next() {
		var r rollupRow
		if err := rs.Scan(&r.a, &r.b, &r.n, &r.q); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// A malformed record goes to the DLQ with the reason, the records after it
// are written, and the DLQ record is counted in dlq_records.
func TestMalformedRecordToDLQ(t *testing.T) {
	e := newEnv(t)
	e.cfg.DLQTopics = append(e.cfg.DLQTopics, kafka.DLQTopic(e.topics.Latency))
	e.start(t)
	evs := sinktest.Script(2)
	e.prod.Records(&kgo.Record{Topic: e.topics.Latency, Key: []byte("x"), Value: []byte("not avro")})
	wrong, err := e.prod.Codec().EncodeEvent(context.Background(), e.topics.Latency, evs[2]) // a PurgeAudit on the latency topic
	if err != nil {
		t.Fatal(err)
	}
	e.prod.Records(&kgo.Record{Topic: e.topics.Latency, Key: []byte("x"), Value: wrong})
	e.prod.Events(evs...)
	sinktest.WaitRows(t, e.conn, "latency_samples", 4, 30*time.Second)
	sinktest.WaitRows(t, e.conn, "dlq_records", 2, 30*time.Second)
	if n := e.count(t, "SELECT count() FROM dlq_records WHERE source_topic = '"+e.topics.Latency+"' AND component = 'metrics-sink/decode' AND error != ''"); n != 2 {
		t.Errorf("dlq_records of the latency topic: %d", n)
	}
	dead := readAll(t, e.kt.Seeds, kafka.DLQTopic(e.topics.Latency), 2)
	// The values are the records' own (the sink recycles a record's
	// memory once taken: a dead letter is a copy).
	if string(dead[0].Value) != "not avro" {
		t.Errorf("first dead letter: %q", dead[0].Value)
	}
	if !bytes.Equal(dead[1].Value, wrong) {
		t.Errorf("second dead letter: %q, want the record's value %q", dead[1].Value, wrong)
	}
	for _, r := range dead {
		if header(r, kafka.HeaderError) == "" || header(r, kafka.HeaderTopic) != e.topics.Latency {
			t.Errorf("dead letter headers: %v", r.Headers)
		}
	}
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func readAll(t *testing.T, seeds []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("%s: %d records, want %d", topic, len(out), n)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// No raw user id and no IP address reaches a table: every column of every
// row, as text, is searched for them.
func TestNoPersonalDataInTables(t *testing.T) {
	e := newEnv(t)
	e.start(t)
	const rawUser, ip, ip6 = "alice@example.com", "203.0.113.77", "2001:db8::42"
	evs := sinktest.Script(3)
	b := evs[5].(events.RumBeacon)
	b.UserHash = rawUser // a producer that got it wrong
	b.Region = ip
	evs[5] = b
	l := evs[0].(events.LatencySample)
	l.Labels = map[string]string{"table": "public.content", "client_ip": ip, "user_id": rawUser, "target": ip6}
	evs[0] = l
	p := evs[2].(events.PurgeAudit)
	p.Outcome, p.Error = events.OutcomeFailed, "dial tcp "+ip+":80: connect: connection refused; ["+ip6+"]:443 reset"
	evs[2] = p
	d := evs[3].(events.Delivery)
	d.UserID = rawUser
	evs[3] = d
	e.prod.Events(evs...)
	sinktest.WaitRows(t, e.conn, "rum_beacons", 3, 30*time.Second)
	sinktest.WaitRows(t, e.conn, "edge_purges", 3, 30*time.Second)
	sinktest.WaitRows(t, e.conn, "deliveries", 6, 30*time.Second)
	sinktest.WaitRows(t, e.conn, "latency_samples", 6, 30*time.Second)
	for _, table := range sinktest.Tables(t, e.conn) {
		for _, needle := range []string{rawUser, "alice", ip, ip6, "user-0", "user-1", "session-0"} {
			// every column, arrays and aggregate states included, as text
			q := "SELECT count() FROM " + table + " WHERE positionCaseInsensitive(concat(" + allColumns(t, e.conn, table) + "), '" + needle + "') > 0"
			if n := e.count(t, q); n != 0 {
				t.Errorf("%s: %d rows hold %q", table, n, needle)
			}
		}
	}
	if n := e.count(t, "SELECT count() FROM edge_purges WHERE position(error, '<ip>') > 0"); n != 1 {
		t.Errorf("masked purge errors: %d", n)
	}
}

func allColumns(t *testing.T, conn driver.Conn, table string) string {
	t.Helper()
	rs, err := conn.Query(context.Background(), "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = '"+table+"'")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var cols []string
	for rs.Next() {
		var c string
		if err := rs.Scan(&c); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, "toString("+c+")", "'|'")
	}
	out := ""
	for i, c := range cols {
		if i > 0 {
			out += ", "
		}
		out += c
	}
	return out
}
