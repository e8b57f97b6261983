// Package sinktest holds the metrics-sink's test helpers: the test's
// topics and the service's variables for them, a producer of the sink's
// input events, a scripted run with known latencies, and ClickHouse
// helpers. For tests only; its functions may be called from parallel tests.
package sinktest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/services/metrics-sink/internal/queries"
	"github.com/freshet/freshet/services/metrics-sink/internal/rows"
)

// Topics are a test's topics.
type Topics struct {
	Beacons, Latency, Purges, Deliveries, DLQ string
}

// NewTopics names the topics of kt's test.
func NewTopics(kt testenv.KafkaTest) Topics {
	return Topics{
		Beacons: kt.Topic("rum.beacons"), Latency: kt.Topic("pipeline.latency"), Purges: kt.Topic("edge.purges"),
		Deliveries: kt.Topic("content.deliveries"), DLQ: kt.Topic("content.changes.dlq"),
	}
}

// Map returns the topic of each decoded input.
func (t Topics) Map() map[rows.Kind]string {
	return map[rows.Kind]string{rows.Beacons: t.Beacons, rows.Latency: t.Latency, rows.Purges: t.Purges, rows.Deliveries: t.Deliveries}
}

// PipelineYAML is a pipeline with small topics for tests.
const PipelineYAML = `version: 1
topics:
  content.changes: {partitions: 2}
  content.deliveries: {partitions: 3}
  user.profiles: {partitions: 3, cleanup: compact, retention: forever}
  rum.beacons: {partitions: 3}
  pipeline.latency: {partitions: 3}
  edge.purges: {partitions: 3}
dlq: {partitions: 1}
`

// Pipeline parses PipelineYAML and writes it to a file of tb's.
func Pipeline(tb testing.TB) (*pipeline.Pipeline, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(path, []byte(PipelineYAML), 0o600); err != nil {
		tb.Fatal(err)
	}
	p, err := pipeline.Load(path)
	if err != nil {
		tb.Fatal(err)
	}
	return p, path
}

// Env returns the service's variables for the test's topics, group and
// ClickHouse database.
func Env(seeds []string, t Topics, group, pipelinePath, chAddr, database string) []string {
	return []string{
		"FRESHET_KAFKA_BROKERS=" + strings.Join(seeds, ","),
		"FRESHET_PIPELINE=" + pipelinePath,
		"FRESHET_CLICKHOUSE_ADDR=" + chAddr,
		"FRESHET_CLICKHOUSE_DATABASE=" + database,
		"FRESHET_SINK_GROUP=" + group,
		"FRESHET_SINK_BEACONS_TOPIC=" + t.Beacons,
		"FRESHET_SINK_LATENCY_TOPIC=" + t.Latency,
		"FRESHET_SINK_PURGES_TOPIC=" + t.Purges,
		"FRESHET_SINK_DELIVERIES_TOPIC=" + t.Deliveries,
		"FRESHET_SINK_DLQ_TOPICS=" + t.DLQ,
	}
}

// Producer produces the sink's input events.
type Producer struct {
	tb    testing.TB
	cl    *kgo.Client
	codec *codec.Codec
	t     Topics
}

// NewProducer returns a producer to the topics, created as PipelineYAML
// says (3 partitions, 1 for the DLQ).
func NewProducer(tb testing.TB, seeds []string, t Topics) *Producer {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ProducerLinger(5*time.Millisecond), kgo.AllowAutoTopicCreation())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	c, err := codec.New()
	if err != nil {
		tb.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, topic := range []string{t.Beacons, t.Latency, t.Purges, t.Deliveries, t.DLQ} {
		parts := int32(3)
		if topic == t.DLQ {
			parts = 1
		}
		if _, err := adm.CreateTopic(ctx, parts, -1, nil, topic); err != nil && !strings.Contains(err.Error(), "TOPIC_ALREADY_EXISTS") {
			tb.Fatalf("create %s: %v", topic, err)
		}
	}
	return &Producer{tb: tb, cl: cl, codec: c, t: t}
}

// Codec returns the producer's codec.
func (p *Producer) Codec() *codec.Codec { return p.codec }

// Client returns the producer's client.
func (p *Producer) Client() *kgo.Client { return p.cl }

// Events produces evs, each to its input's topic, and waits for the acks.
func (p *Producer) Events(evs ...events.Event) {
	p.tb.Helper()
	ctx := context.Background()
	recs := make([]*kgo.Record, 0, len(evs))
	for _, ev := range evs {
		var topic, key string
		switch e := ev.(type) {
		case events.LatencySample:
			topic, key = p.t.Latency, e.Service
		case events.PurgeAudit:
			topic, key = p.t.Purges, e.Target
		case events.RumBeacon:
			topic, key = p.t.Beacons, e.SessionID
		case events.Delivery:
			topic, key = p.t.Deliveries, e.UserID+e.Channel
		default:
			p.tb.Fatalf("no topic for %T", ev)
		}
		b, err := p.codec.EncodeEvent(ctx, topic, ev)
		if err != nil {
			p.tb.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(key), Value: b})
	}
	p.Records(recs...)
}

// Records produces raw records and waits for the acks.
func (p *Producer) Records(recs ...*kgo.Record) {
	p.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		p.tb.Fatal(err)
	}
}

// Conn opens a connection to a ClickHouse database.
func Conn(tb testing.TB, opts *clickhouse.Options) driver.Conn {
	tb.Helper()
	conn, err := clickhouse.Open(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// Count runs a query that returns one number.
func Count(tb testing.TB, conn driver.Conn, q string) uint64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n uint64
	if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", q, err)
	}
	return n
}

// TryCount is Count that returns an error (a table not created yet).
func TryCount(conn driver.Conn, q string) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n uint64
	err := conn.QueryRow(ctx, q).Scan(&n)
	return n, err
}

// WaitRows waits until table holds want rows, up to timeout, and fails
// when it holds more, or fewer at the end.
func WaitRows(tb testing.TB, conn driver.Conn, table string, want uint64, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	var got uint64
	var err error
	for time.Now().Before(deadline) {
		if got, err = TryCount(conn, "SELECT count() FROM "+table); err == nil && got >= want {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got != want {
		tb.Fatalf("%s holds %d rows, want %d (last error: %v)", table, got, want, err)
	}
}

// Answers runs every ready-made query over all time and returns the
// answers, for comparing two databases.
func Answers(tb testing.TB, conn driver.Conn) map[string]string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out := map[string]string{}
	for _, name := range queries.Names() {
		res, err := queries.Run(ctx, conn, name, time.Unix(0, 0), "")
		if err != nil {
			tb.Fatalf("query %s: %v", name, err)
		}
		var b strings.Builder
		if err := res.Print(&b); err != nil {
			tb.Fatal(err)
		}
		out[name] = b.String()
	}
	for _, t := range []string{"latency_1m", "purge_latency_1m", "sse_lag_1m", "web_vitals_1m"} {
		res, err := queries.Query(ctx, conn, rollupQuery(t))
		if err != nil {
			tb.Fatalf("rollup %s: %v", t, err)
		}
		var b strings.Builder
		_ = res.Print(&b)
		out[t] = b.String()
	}
	return out
}

func rollupQuery(table string) string {
	switch table {
	case "latency_1m":
		return "SELECT minute, service, stage, target, countMerge(n) AS n, quantilesMerge(0.5, 0.95, 0.99)(q) AS q FROM latency_1m GROUP BY minute, service, stage, target ORDER BY minute, service, stage, target"
	case "purge_latency_1m":
		return "SELECT minute, target, provider, outcome, countMerge(n) AS n, sumMerge(attempts) AS a, quantilesMerge(0.5, 0.95, 0.99)(q) AS q FROM purge_latency_1m GROUP BY minute, target, provider, outcome ORDER BY minute, target, provider, outcome"
	case "sse_lag_1m":
		return "SELECT minute, route, region, countMerge(n) AS n, quantilesMerge(0.5, 0.95, 0.99)(q) AS q FROM sse_lag_1m GROUP BY minute, route, region ORDER BY minute, route, region"
	}
	return "SELECT minute, route, region, device_class, name, countMerge(n) AS n, sumMerge(good) AS g, sumMerge(poor) AS p, quantilesMerge(0.5, 0.75, 0.95, 0.99)(q) AS q FROM web_vitals_1m GROUP BY minute, route, region, device_class, name ORDER BY minute, route, region, device_class, name"
}

// UserHash is the gateway's keyed hash of a user id (HMAC-SHA256, hex).
func UserHash(key, userID string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(userID))
	return hex.EncodeToString(m.Sum(nil))
}

// Base is the time of the scripted runs: a fixed minute, so rollups are
// the same on every run.
var Base = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// Script is a deterministic run of n changes: for change i, an ingestor
// sample (commit_to_ack), a personalizer sample (commit_to_deliver), a
// purge of target varnish, a user delivery and a channel delivery, and one
// beacon with web vitals and the SSE lag of both deliveries. Latencies of
// change i: ack 10+i ms, deliver 30+2i ms, purge 50+3i ms, browser 100+5i
// and 120+5i ms.
func Script(n int) []events.Event {
	var out []events.Event
	for i := range n {
		change := ChangeID(i)
		commit := Base.Add(time.Duration(i) * time.Second)
		src := events.Source{Origin: events.OriginReplication, DB: "app", Table: "public.content", LSN: uint64(1000 + i), CommitTime: commit}
		ms := func(f int) time.Duration { return time.Duration(f) * time.Millisecond }
		out = append(out,
			events.LatencySample{EventID: events.ID(change, "cdc-ingestor", "commit_to_ack"), Source: &src, SubjectEventID: change,
				Service: "cdc-ingestor", Stage: "commit_to_ack", Duration: ms(10 + i), At: commit.Add(ms(10 + i)), Labels: map[string]string{"table": "public.content"}},
			events.LatencySample{EventID: events.ID(change, "personalizer", "commit_to_deliver"), Source: &src, SubjectEventID: change,
				Service: "personalizer", Instance: "p-0", Stage: "commit_to_deliver", Duration: ms(30 + 2*i), At: commit.Add(ms(30 + 2*i))},
			events.PurgeAudit{EventID: events.ID("varnish", change), Source: src, Trace: events.Trace{CommittedAt: commit, ProducedAt: commit.Add(ms(50 + 3*i))},
				Target: "varnish", Provider: "varnish", ChangeEventIDs: []string{change}, Keys: []string{"content:" + fmt.Sprint(i)},
				URLs: []string{"/a/" + fmt.Sprint(i)}, Attempts: 1 + i%2, Outcome: events.OutcomeAcked, StatusCode: 200,
				StartedAt: commit.Add(ms(40)), FinishedAt: commit.Add(ms(50 + 3*i)), LatencyFromCommit: ms(50 + 3*i)},
			events.Delivery{EventID: DeliveryID(i, "user"), ChangeEventID: change, Source: src, Trace: events.Trace{CommittedAt: commit, ProducedAt: commit.Add(ms(30 + 2*i))},
				Op: events.OpCreate, UserID: fmt.Sprintf("user-%d", i), Content: events.ContentProjection{ID: fmt.Sprint(i), Title: "t"}, Score: 1},
			events.Delivery{EventID: DeliveryID(i, "channel"), ChangeEventID: change, Source: src, Trace: events.Trace{CommittedAt: commit, ProducedAt: commit.Add(ms(30 + 2*i))},
				Op: events.OpCreate, Channel: "breaking", Content: events.ContentProjection{ID: fmt.Sprint(i)}},
			events.RumBeacon{EventID: events.ID(fmt.Sprintf("session-%04d", i), "1"), ReceivedAt: commit.Add(ms(200 + 5*i)),
				SessionID: fmt.Sprintf("session-%04d", i), UserHash: UserHash("test-key-0123456789", fmt.Sprintf("user-%d", i)),
				Route: []string{"/articles/:id", "/"}[i%2], DeviceClass: events.DeviceDesktop, ConnectionClass: "4g", Region: []string{"eu", "us"}[i%2],
				Metrics: []events.WebVital{
					{Name: events.VitalLCP, Value: float64(1000 + 100*i), Rating: rating(float64(1000+100*i), 2500, 4000), NavigationType: events.NavNavigate},
					{Name: events.VitalCLS, Value: 0.01 * float64(i), Rating: rating(0.01*float64(i), 0.1, 0.25), NavigationType: events.NavReload},
				},
				SSELags: []events.SSELag{{EventID: DeliveryID(i, "user"), LagMS: float64(100 + 5*i)}, {EventID: DeliveryID(i, "channel"), LagMS: float64(120 + 5*i)}}},
		)
	}
	return out
}

// SplitPurge is the audit of one purge batch of target split into parts
// records, as the invalidator splits a large one: part i of parts holds
// changes ChangeID(10*i) to ChangeID(10*i+1) (two a part) and the batch's
// attempts, outcome, times and a latency of 80 ms, all its parts in one
// minute of Base.
func SplitPurge(target string, parts, attempts int) []events.Event {
	commit := Base.Add(30 * time.Second)
	var ids []string
	for i := range parts {
		ids = append(ids, ChangeID(10*i), ChangeID(10*i+1))
	}
	batch := events.ID(append([]string{target}, ids...)...)
	src := events.Source{Origin: events.OriginReplication, DB: "app", Table: "public.content", LSN: 1000, CommitTime: commit}
	out := make([]events.Event, parts)
	for i := range parts {
		out[i] = events.PurgeAudit{
			EventID: events.ID(batch, strconv.Itoa(i+1), strconv.Itoa(parts)), Source: src,
			Trace: events.Trace{CommittedAt: commit, ProducedAt: commit.Add(80 * time.Millisecond)}, Target: target, Provider: "varnish",
			ChangeEventIDs: ids[2*i : 2*i+2], Keys: []string{"content:" + strconv.Itoa(i)}, Attempts: attempts, Outcome: events.OutcomeAcked,
			StatusCode: 200, StartedAt: commit.Add(10 * time.Millisecond), FinishedAt: commit.Add(80 * time.Millisecond),
			LatencyFromCommit: 80 * time.Millisecond, Part: i + 1, Parts: parts,
		}
	}
	return out
}

// LatencySample is latency sample i of the benchmarks, as the cdc-ingestor
// writes them (179 bytes of Avro, a table label).
func LatencySample(i int) events.LatencySample {
	at := Base.Add(time.Duration(i) * time.Millisecond)
	change := events.ID("bench", strconv.Itoa(i))
	src := events.Source{Origin: events.OriginReplication, DB: "app", Table: "public.content", LSN: uint64(i), CommitTime: at.Add(-20 * time.Millisecond)}
	return events.LatencySample{EventID: events.ID(change, "cdc-ingestor", "commit_to_ack"), Source: &src, SubjectEventID: change,
		Service: "cdc-ingestor", Instance: "cdc-0", Stage: "commit_to_ack", Duration: time.Duration(1000+i%50000) * time.Microsecond, At: at,
		Labels: map[string]string{"table": "public.content"}}
}

// Beacon is beacon i of the benchmarks, like the whole-stack flood's
// (loadtest/internal/metricsflood): five vitals and two SSE lags.
func Beacon(i int) *events.RumBeacon {
	devices := []events.DeviceClass{events.DeviceMobile, events.DeviceDesktop, events.DeviceTablet}
	nav := events.NavNavigate
	return &events.RumBeacon{
		EventID: events.ID("bench-beacon", strconv.Itoa(i)), ReceivedAt: Base.Add(time.Duration(i) * time.Millisecond),
		SessionID: "s" + strconv.Itoa(i%5000), UserHash: fmt.Sprintf("%064x", i%20000), Route: "/news/{slug}",
		DeviceClass: devices[i%3], ConnectionClass: "4g", Region: "eu",
		Metrics: []events.WebVital{
			{Name: events.VitalLCP, Value: 1800, Rating: events.RatingGood, NavigationType: nav, ID: "v1"},
			{Name: events.VitalINP, Value: 120, Rating: events.RatingGood, NavigationType: nav, ID: "v2"},
			{Name: events.VitalCLS, Value: 0.05, Rating: events.RatingGood, NavigationType: nav, ID: "v3"},
			{Name: events.VitalTTFB, Value: 300, Rating: events.RatingGood, NavigationType: nav, ID: "v4"},
			{Name: events.VitalFCP, Value: 900, Rating: events.RatingGood, NavigationType: nav, ID: "v5"},
		},
		SSELags: []events.SSELag{{EventID: "e1", LagMS: 40}, {EventID: "e2", LagMS: 55}},
	}
}

func rating(v, good, poor float64) events.VitalRating {
	switch {
	case v <= good:
		return events.RatingGood
	case v <= poor:
		return events.RatingNeedsImprovement
	}
	return events.RatingPoor
}

// ChangeID is the event id of change i of Script.
func ChangeID(i int) string {
	return events.ChangeID("app", "public.content", uint64(1000+i), fmt.Sprint(i))
}

// DeliveryID is the id of change i's delivery to its user or channel.
func DeliveryID(i int, to string) string {
	if to == "user" {
		return events.ID(ChangeID(i), "user", fmt.Sprintf("user-%d", i))
	}
	return events.ID(ChangeID(i), "channel", "breaking")
}

// Tables lists the database's tables (no views), sorted.
func Tables(tb testing.TB, conn driver.Conn) []string {
	tb.Helper()
	rs, err := conn.Query(context.Background(), "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine NOT LIKE '%View'")
	if err != nil {
		tb.Fatal(err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var s string
		if err := rs.Scan(&s); err != nil {
			tb.Fatal(err)
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// CPU measures the process's CPU time (user and system, every thread, the
// garbage collector's included) from Start to Report, which reports it per
// op as cpu-ns/op: on a shared machine a far steadier figure than ns/op,
// which counts the time other processes hold the cores.
type CPU struct{ start time.Duration }

// StartCPU starts measuring.
func StartCPU() CPU { return CPU{cpuTime()} }

// Report reports the CPU time per op since StartCPU.
func (c CPU) Report(b *testing.B) {
	b.ReportMetric(float64(cpuTime()-c.start)/float64(b.N), "cpu-ns/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Committed sums the offsets group committed over its topics: the records
// a sink has stored and acknowledged.
func Committed(seeds []string, group string) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(context.Background(), group)
	if err != nil {
		return 0, err
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) { n += o.At })
	return n, nil
}
