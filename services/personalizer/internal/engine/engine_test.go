package engine_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/codec/codectest"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/services/personalizer/internal/engine"
	"github.com/freshet/freshet/services/personalizer/internal/ptest"
	"github.com/freshet/freshet/services/personalizer/internal/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) {
	testenv.Main(m, testenv.NeedKafka)
}

// env is one test's broker, topics, group and pipeline.
type env struct {
	t       testing.TB
	kt      testenv.KafkaTest
	topics  ptest.Topics
	group   string
	users   int
	cfg     engine.Config
	prod    *ptest.Producer
	seeds   []string
	started int
}

func newEnv(t testing.TB, userParts, contentParts int) *env {
	kt := testenv.Kafka(t)
	p, _ := ptest.Pipeline(t, userParts, contentParts)
	topics := ptest.Topics{Content: kt.Topic("content.changes"), Profiles: kt.Topic("user.profiles"), Deliveries: kt.Topic("content.deliveries"), Latency: kt.Topic("pipeline.latency")}
	e := &env{t: t, kt: kt, topics: topics, group: kt.Group("personalizer"), users: userParts, seeds: kt.Seeds}
	e.cfg = engine.Config{
		Kafka:        kafka.Config{Brokers: kt.Seeds, ClientID: "personalizer-test"},
		Pipeline:     p,
		Topics:       engine.Topics(topics),
		Group:        e.group,
		EnsureTopics: true,
		PollWait:     20 * time.Millisecond,
	}
	e.prod = ptest.NewProducer(t, kt.Seeds, topics)
	return e
}

// instance is a running engine.
type instance struct {
	eng  *engine.Engine
	reg  *prometheus.Registry
	stop func()
}

// start runs an engine with the transactional id name and waits until it is
// ready.
func (e *env) start(name string) *instance {
	e.t.Helper()
	cfg := e.cfg
	cfg.TransactionalID = e.kt.Group("txn-" + name)
	reg := prometheus.NewRegistry()
	eng, err := engine.New(cfg, zaptest.NewLogger(e.t, zaptest.Level(zap.InfoLevel)).Named(name), engine.WithRegisterer(reg))
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() { runErr = eng.Run(ctx); close(done) }()
	in := &instance{eng: eng, reg: reg}
	var once bool
	in.stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		<-done
		if runErr != nil {
			e.t.Errorf("%s: Run: %v", name, runErr)
		}
		_ = eng.Close(context.Background())
		_ = eng.Close(context.Background()) // twice is harmless
	}
	e.t.Cleanup(in.stop)
	deadline := time.Now().Add(60 * time.Second)
	for eng.Ready() != nil {
		select {
		case <-done:
			e.t.Fatalf("%s stopped before it was ready: %v", name, runErr)
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s not ready: %v", name, eng.Ready())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return in
}

func (e *env) caughtUp() {
	e.t.Helper()
	ptest.WaitCaughtUp(e.t, e.seeds, e.group, e.topics, e.users, 60*time.Second)
}

func (e *env) deliveries() []ptest.Delivery {
	e.t.Helper()
	return ptest.Deliveries(e.t, e.seeds, e.topics.Deliveries)
}

func profile(id string, tags ...string) events.UserProfile {
	up := events.UserProfile{UserID: id, UpdatedAt: time.Now()}
	for _, tag := range tags {
		up.Interests = append(up.Interests, events.Interest{Tag: tag, Weight: 1})
	}
	return up
}

func change(id string, version int64, tags ...string) events.ContentChange {
	return events.ContentChange{Op: events.OpCreate, ContentID: id, Version: version, Title: "Title " + id,
		Summary: "Summary", URLPath: "/a/" + id, Locale: "en", Tags: tags}
}

// recipients returns who got each change, by change event id.
func recipients(ds []ptest.Delivery) map[string][]string {
	out := map[string][]string{}
	for _, d := range ds {
		to := d.UserID
		if d.Channel != "" {
			to = "channel:" + d.Channel
		}
		out[d.ChangeEventID] = append(out[d.ChangeEventID], to)
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

func TestChangeReachesExactlyMatchingUsers(t *testing.T) {
	e := newEnv(t, 4, 2)
	in := e.start("a")
	bob := profile("bob")
	bob.Follows = []string{"author:7"}
	bob.Region = "fr"
	e.prod.Profiles(profile("ana", "go"), bob, profile("cyd", "rust"), profile("dan", "go", "rust"), profile("eve"))
	// Profiles are applied before the changes polled with them; to be sure
	// this change comes after them, wait until the table holds them.
	waitFor(t, func() bool { return testenv.Metric(t, in.reg, "freshet_personalizer_profiles") == 5 }, "5 profiles in the table")

	goChange := change("1", 1, "go")
	byAuthor := change("2", 1, "cooking")
	byAuthor.Attributes = map[string]string{"author": "7", "region": "fr"}
	breaking := change("3", 1, "go")
	breaking.Attributes = map[string]string{"breaking": "true"}
	deleted := change("4", 2, "go")
	deleted.Op = events.OpDelete
	e.prod.Changes(goChange, byAuthor, breaking, deleted)
	e.caughtUp()

	ds := e.deliveries()
	got := recipients(ds)
	id := func(c events.ContentChange) string {
		return events.ID("test-change", c.ContentID, fmt.Sprint(c.Version))
	}
	want := map[string][]string{
		id(goChange): {"ana", "dan"},
		id(byAuthor): {"bob"},
		id(breaking): {"channel:breaking"}, // the channel only, not ana and dan
		// the delete is not personalized (ops: create, update)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("recipients = %v, want %v", got, want)
	}
	for _, d := range ds {
		if d.Channel != "" {
			if d.Key != "channel:breaking" || d.Score != 0 {
				t.Errorf("channel delivery %+v", d)
			}
			continue
		}
		// Keyed by user, on the partition of the user's profile.
		if d.Key != d.UserID {
			t.Errorf("delivery to %s keyed %q", d.UserID, d.Key)
		}
		if d.EventID != events.ID(d.ChangeEventID, "user", d.UserID) {
			t.Errorf("event id %s is not deterministic", d.EventID)
		}
		if len(d.Reasons) == 0 || d.Score < 1 {
			t.Errorf("delivery to %s: score %v reasons %v", d.UserID, d.Score, d.Reasons)
		}
		if d.Content.Title == "" || d.Content.URLPath == "" || d.Content.Locale != "en" || d.Content.Summary == "" {
			t.Errorf("projection %+v", d.Content)
		}
		if d.Deadline.IsZero() || d.Trace.CommittedAt.IsZero() || d.Trace.ProducedAt.IsZero() ||
			!slices.ContainsFunc(d.Trace.Stages, func(s events.Stage) bool { return s.Name == engine.StageName }) {
			t.Errorf("trace %+v deadline %v", d.Trace, d.Deadline)
		}
		if d.UserID == "bob" && fmt.Sprint(d.Reasons) != "[{follow author:7 2} {region fr 0.5}]" {
			t.Errorf("bob's reasons = %v", d.Reasons)
		}
	}
	assertCoPartitioned(t, e, ds)
	// One latency sample a change, keyed by service.
	samples := map[string]bool{}
	for _, r := range ptest.ReadAll(t, e.seeds, e.topics.Latency) {
		ev, _, err := e.prod.Codec().DecodeEvent(context.Background(), r.Value)
		if err != nil {
			t.Fatal(err)
		}
		ls := ev.(*events.LatencySample)
		if ls.Service != "personalizer" || ls.Stage != engine.LatencyStage || ls.Duration < 0 || string(r.Key) != "personalizer" || samples[ls.SubjectEventID] {
			t.Errorf("latency sample %+v", ls)
		}
		samples[ls.SubjectEventID] = true
	}
	for _, c := range []events.ContentChange{goChange, byAuthor, breaking, deleted} {
		if !samples[id(c)] {
			t.Errorf("no latency sample of change %s", c.ContentID)
		}
	}
	if n := testenv.Metric(t, in.reg, "freshet_personalizer_deliveries_total"); n != 3 {
		t.Errorf("deliveries_total = %v, want 3", n)
	}
	if n := testenv.Metric(t, in.reg, "freshet_personalizer_candidates_per_change"); n != 3 {
		t.Errorf("sum of candidates = %v, want 3 (ana, dan; bob)", n)
	}
}

// assertCoPartitioned checks that each user's deliveries are on the
// partition their profile is on.
func assertCoPartitioned(t *testing.T, e *env, ds []ptest.Delivery) {
	t.Helper()
	part := map[string]int32{}
	for _, r := range ptest.ReadAll(t, e.seeds, e.topics.Profiles) {
		part[string(r.Key)] = r.Partition
	}
	for _, d := range ds {
		if d.UserID != "" && part[d.UserID] != d.Partition {
			t.Errorf("delivery to %s on partition %d, profile on %d", d.UserID, d.Partition, part[d.UserID])
		}
	}
}

func waitFor(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRestartRestoresTable(t *testing.T) {
	e := newEnv(t, 3, 2)
	a := e.start("a")
	e.prod.Profiles(profile("ana", "go"), profile("bob", "go"), profile("cyd", "rust"))
	up := profile("bob", "knitting") // bob's last profile: no longer go
	e.prod.Profiles(up)
	e.prod.Tombstone("cyd")
	waitFor(t, func() bool { return testenv.Metric(t, a.reg, "freshet_personalizer_profiles_total") == 5 }, "the profile records applied")
	e.prod.Changes(change("0", 1, "go")) // forces a commit of every partition
	e.caughtUp()
	a.stop()

	b := e.start("b") // a new instance of the group: restores from the topic
	if n := testenv.Metric(t, b.reg, "freshet_personalizer_restore_records_total"); n < 5 {
		t.Errorf("restored %v records, want the 5 profile records", n)
	}
	if n := testenv.Metric(t, b.reg, "freshet_personalizer_profiles"); n != 2 {
		t.Errorf("table holds %v profiles after restore, want 2 (cyd deleted)", n)
	}
	e.prod.Changes(change("1", 1, "go"), change("2", 1, "knitting"), change("3", 1, "rust"))
	e.caughtUp()
	got := recipients(e.deliveries())
	id := func(cid string) string { return events.ID("test-change", cid, "1") }
	want := map[string][]string{id("0"): {"ana"}, id("1"): {"ana"}, id("2"): {"bob"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("recipients = %v, want %v", got, want)
	}
}

// A committed offset that the log no longer reaches does not hold up the
// restore: here one partition's records were all deleted (its log starts at
// the committed offset) and the other's committed offset is past its end (as
// after the topic was recreated). The instance restores what the log holds
// and gets ready.
func TestRestoreWhenTheLogHoldsLessThanCommitted(t *testing.T) {
	e := newEnv(t, 2, 1)
	e.start("a").stop() // creates the topics
	var users []events.UserProfile
	for i := range 20 {
		users = append(users, profile(fmt.Sprintf("user-%02d", i), "go"))
	}
	e.prod.Profiles(users...)
	ptest.CommitEnd(t, e.seeds, e.group, e.topics.Profiles)

	cl, err := kgo.NewClient(kgo.SeedBrokers(e.seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	ends, err := adm.ListEndOffsets(ctx, e.topics.Profiles)
	if err != nil {
		t.Fatal(err)
	}
	end0, _ := ends.Lookup(e.topics.Profiles, 0)
	end1, _ := ends.Lookup(e.topics.Profiles, 1)
	if end0.Offset == 0 || end1.Offset == 0 {
		t.Fatalf("want profiles in both partitions, ends %d and %d", end0.Offset, end1.Offset)
	}
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: e.topics.Profiles, Partition: 0, At: end0.Offset})
	if resp, err := adm.DeleteRecords(ctx, del); err != nil || resp.Error() != nil {
		t.Fatalf("delete records: %v %v", err, resp.Error())
	}
	past := kadm.Offsets{}
	past.Add(kadm.Offset{Topic: e.topics.Profiles, Partition: 1, At: end1.Offset + 100, LeaderEpoch: -1, Metadata: wire.Progress{}.String()})
	if resp, err := adm.CommitOffsets(ctx, e.group, past); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}

	b := e.start("b") // fails the test unless ready within 60s
	if n := testenv.Metric(t, b.reg, "freshet_personalizer_restore_records_total"); n != float64(end1.Offset) {
		t.Errorf("restored %v records, want partition 1's %d", n, end1.Offset)
	}
}

func TestMalformedInputGoesToDLQ(t *testing.T) {
	e := newEnv(t, 2, 2)
	in := e.start("a")
	e.prod.Profiles(profile("ana", "go"))
	e.prod.Raw(e.topics.Profiles, []byte("bob"), []byte("not avro"))
	e.prod.Raw(e.topics.Content, []byte("9"), []byte{0xc3, 0x01, 1, 2, 3})
	// A valid record of the wrong schema on the content topic.
	wrong, err := e.prod.Codec().EncodeEvent(context.Background(), e.topics.Content, profile("x"))
	if err != nil {
		t.Fatal(err)
	}
	e.prod.Raw(e.topics.Content, []byte("10"), wrong)
	waitFor(t, func() bool { return testenv.Metric(t, in.reg, "freshet_personalizer_profiles_total") == 2 }, "both profile records")
	e.prod.Changes(change("1", 1, "go")) // the stream continues
	e.caughtUp()

	if got := recipients(e.deliveries()); len(got) != 1 || fmt.Sprint(got[events.ID("test-change", "1", "1")]) != "[ana]" {
		t.Errorf("recipients = %v", got)
	}
	pd := ptest.DLQ(t, e.seeds, e.topics.Profiles)
	if len(pd) != 1 || string(pd[0].Key) != "bob" || string(pd[0].Value) != "not avro" || header(pd[0].Headers, kafka.HeaderError) == "" {
		t.Errorf("profile DLQ = %v", pd)
	}
	cd := ptest.DLQ(t, e.seeds, e.topics.Content)
	if len(cd) != 2 {
		t.Fatalf("content DLQ holds %d records, want 2", len(cd))
	}
	for _, r := range cd {
		if header(r.Headers, kafka.HeaderTopic) != e.topics.Content || header(r.Headers, kafka.HeaderError) == "" {
			t.Errorf("content DLQ record %s headers %v", r.Key, r.Headers)
		}
	}
	if n := testenv.Metric(t, in.reg, "freshet_personalizer_dlq_total"); n != 3 {
		t.Errorf("dlq_total = %v", n)
	}
}

func header(hs []kgo.RecordHeader, key string) string {
	for _, h := range hs {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// TestLargeFanOut covers the parallel encoding of a change that reaches
// thousands of users: each gets it once, with its reasons.
func TestLargeFanOut(t *testing.T) {
	const users = 17000 // past parallelEncodeMin
	e := newEnv(t, 4, 1)
	in := e.start("a")
	ptest.ManyProfiles(t, e.seeds, e.topics.Profiles, users, func(i int, up *events.UserProfile) { up.Follows = append(up.Follows, "tag:hot") })
	waitFor(t, func() bool { return testenv.Metric(t, in.reg, "freshet_personalizer_profiles") == users }, "the profiles")
	e.prod.Changes(change("1", 1, "hot"), change("2", 1, "hot"))
	e.caughtUp()
	var all []string
	for i := range users {
		all = append(all, fmt.Sprint("user-", i))
	}
	ds := e.deliveries()
	ptest.ExactlyOnce(t, ds, []string{events.ID("test-change", "1", "1"), events.ID("test-change", "2", "1")}, all)
	for _, d := range ds {
		if d.Key != d.UserID || len(d.Reasons) == 0 || d.Reasons[0] != (events.Reason{Rule: "follow", Match: "tag:hot", Score: 2}) {
			t.Fatalf("delivery %s: key %q reasons %v", d.UserID, d.Key, d.Reasons)
		}
	}
}

// A transaction ends once its changes made MaxDeliveriesPerTransaction
// deliveries; the changes polled and not scored go first into the next
// one: 20 changes of 5 deliveries each under a bound of 10 take at least
// ten transactions, and every delivery is there once.
func TestDeliveriesBoundCarriesChangesOver(t *testing.T) {
	e := newEnv(t, 3, 2)
	e.cfg.MaxDeliveriesPerTransaction = 10
	in := e.start("a")
	var users []events.UserProfile
	for i := range 5 {
		users = append(users, profile(fmt.Sprint("u", i), "hot"))
	}
	e.prod.Profiles(users...)
	waitFor(t, func() bool { return testenv.Metric(t, in.reg, "freshet_personalizer_profiles") == 5 }, "the profiles")
	txns := testenv.Metric(t, in.reg, "freshet_personalizer_transactions_total")
	var cs []events.ContentChange
	for i := range 20 {
		cs = append(cs, change(fmt.Sprint("c", i), 1, "hot"))
	}
	e.prod.Changes(cs...)
	e.caughtUp()

	got := recipients(e.deliveries())
	for _, c := range cs {
		id := events.ID("test-change", c.ContentID, "1")
		if fmt.Sprint(got[id]) != "[u0 u1 u2 u3 u4]" {
			t.Errorf("%s reached %v, want u0-u4 once each", c.ContentID, got[id])
		}
	}
	if n := testenv.Metric(t, in.reg, "freshet_personalizer_transactions_total") - txns; n < 10 {
		t.Errorf("20 changes of 5 deliveries went in %.0f transactions: more than 10 deliveries in one", n)
	}
}

// Changes that come within MinTransactionInterval of a transaction's start
// wait and go in the next one: 30 changes produced one by one over about
// 300 ms make a few transactions, not one each, and every change reaches
// its users once.
func TestMinTransactionIntervalBatchesChanges(t *testing.T) {
	e := newEnv(t, 3, 2)
	e.cfg.MinTransactionInterval = 250 * time.Millisecond
	in := e.start("a")
	e.prod.Profiles(profile("u0", "hot"), profile("u1", "hot"))
	waitFor(t, func() bool { return testenv.Metric(t, in.reg, "freshet_personalizer_profiles") == 2 }, "the profiles")
	txns := testenv.Metric(t, in.reg, "freshet_personalizer_transactions_total")
	start := time.Now()
	var cs []events.ContentChange
	for i := range 30 {
		c := change(fmt.Sprint("c", i), 1, "hot")
		cs = append(cs, c)
		e.prod.Changes(c)
		time.Sleep(10 * time.Millisecond)
	}
	e.caughtUp()
	took := time.Since(start)

	got := recipients(e.deliveries())
	for _, c := range cs {
		if id := events.ID("test-change", c.ContentID, "1"); fmt.Sprint(got[id]) != "[u0 u1]" {
			t.Errorf("%s reached %v, want u0 and u1 once each", c.ContentID, got[id])
		}
	}
	// One transaction per started 250 ms of the run, and the first.
	limit := float64(took/(250*time.Millisecond)) + 2
	if n := testenv.Metric(t, in.reg, "freshet_personalizer_transactions_total") - txns; n > limit {
		t.Errorf("30 changes over %s went in %.0f transactions; spaced by 250ms, at most %.0f", took.Round(time.Millisecond), n, limit)
	}
}

// A schema registry that does not answer is no fault of the records: a
// change it holds up aborts the transaction and is read again once the
// registry is back (not dead-lettered), and a restore waits for it rather
// than leaving the users out of the table.
func TestRegistryOutageDeadLettersNothing(t *testing.T) {
	e := newEnv(t, 2, 1)
	reg := codectest.NewRegistry()
	t.Cleanup(reg.Close)
	front := codectest.NewOutage(reg)
	t.Cleanup(front.Close)
	framed, err := codec.New(codec.WithRegistry(reg.URL())) // registry-framed values
	if err != nil {
		t.Fatal(err)
	}
	prod := e.prod.WithCodec(framed)
	e.cfg.Kafka.SchemaRegistryURL = front.URL()

	a := e.start("a")
	prod.Profiles(profile("ana", "go"), profile("bob", "go"))
	waitFor(t, func() bool { return testenv.Metric(t, a.reg, "freshet_personalizer_profiles") == 2 }, "the profiles")

	front.SetDown(true)
	prod.Changes(change("1", 1, "go"))
	waitFor(t, func() bool {
		return abortedTxns(t, a) >= 2
	}, "transactions aborted while the registry is away")
	if dlq := ptest.DLQ(t, e.seeds, kafka.DLQTopic(e.topics.Content)); len(dlq) != 0 {
		t.Fatalf("%d changes dead-lettered while the registry was away", len(dlq))
	}
	if ds := ptest.DeliveriesWith(t, framed, e.seeds, e.topics.Deliveries); len(ds) != 0 {
		t.Fatalf("%d deliveries while the registry was away", len(ds))
	}
	front.SetDown(false)
	e.caughtUp()
	if got := recipients(ptest.DeliveriesWith(t, framed, e.seeds, e.topics.Deliveries)); fmt.Sprint(got[events.ID("test-change", "1", "1")]) != "[ana bob]" {
		t.Fatalf("recipients after the registry came back: %v", got)
	}

	// A new instance restores the profiles while the registry is away: it
	// waits, and holds both once the registry is back.
	a.stop()
	front.SetDown(true)
	go func() { time.Sleep(time.Second); front.SetDown(false) }()
	b := e.start("b")
	if n := testenv.Metric(t, b.reg, "freshet_personalizer_profiles"); n != 2 {
		t.Errorf("b restored %v profiles through the registry's outage, want 2", n)
	}
	if dlq := ptest.DLQ(t, e.seeds, kafka.DLQTopic(e.topics.Content)); len(dlq) != 0 {
		t.Errorf("%d records in the DLQ", len(dlq))
	}
}

// abortedTxns is the instance's aborted transactions.
func abortedTxns(t *testing.T, in *instance) float64 {
	return testenv.MetricWith(t, in.reg, "freshet_personalizer_transactions_total", "outcome", "aborted")
}
