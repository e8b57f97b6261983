// Package ptest holds the personalizer's test helpers: a pipeline with test
// topic sizes, a producer of ContentChange and UserProfile records keyed as
// the cdc-ingestor keys them, a read_committed reader of deliveries, and a
// wait for the instances' committed progress to cover every change.
//
// It is for tests only. Its functions may be called from parallel tests.
package ptest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/services/personalizer/internal/wire"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Rules is a personalization section (the rules of pipelines/freshet.yaml
// without recency decay, so that scores do not depend on the clock).
const Rules = `personalization:
  interest: {weight: 1.0, keys: ["{tags[*]}"]}
  follow:
    weight: 2.0
    keys: ["author:{attributes.author}", "section:{section}", "tag:{tags[*]}"]
  segment: {weight: 1.0, keys: ["{attributes.audience}"]}
  region: {weight: 0.5, keys: ["{attributes.region}"]}
  locale: {weight: 0.5, keys: ["{locale}"]}
  recency_half_life: 0s
  threshold: 1.0
  deadline: 24h
  broadcast:
    - channel: breaking
      when:
        attributes.breaking: ["true"]
`

// PipelineYAML returns a pipeline file with userParts partitions of
// user.profiles and content.deliveries, contentParts of content.changes, and
// Rules.
func PipelineYAML(userParts, contentParts int) string {
	return fmt.Sprintf(`version: 1
topics:
  content.changes: {partitions: %d}
  user.profiles: {partitions: %d, cleanup: compact, retention: forever}
  content.deliveries: {partitions: %d}
dlq: {partitions: 1}
%s`, contentParts, userParts, userParts, Rules)
}

// Pipeline parses PipelineYAML and writes it to a file in t's temporary
// folder, whose path it returns too (for FRESHET_PIPELINE).
func Pipeline(t testing.TB, userParts, contentParts int) (*pipeline.Pipeline, string) {
	t.Helper()
	text := PipelineYAML(userParts, contentParts)
	p, err := pipeline.Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, path
}

// Topics are a test's topic names.
type Topics struct {
	Content, Profiles, Deliveries, Latency string
}

// Producer writes test input as the cdc-ingestor does: content changes keyed
// by content id, profiles keyed by user id, Avro single-object encoded.
type Producer struct {
	t      testing.TB
	cl     *kgo.Client
	codec  *codec.Codec
	topics Topics
}

// NewProducer returns a producer closed when t ends.
func NewProducer(t testing.TB, seeds []string, topics Topics) *Producer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	c, err := codec.New()
	if err != nil {
		t.Fatal(err)
	}
	return &Producer{t: t, cl: cl, codec: c, topics: topics}
}

// Codec returns the producer's codec.
func (p *Producer) Codec() *codec.Codec { return p.codec }

// WithCodec returns a producer like p that encodes with c (with a
// registry: registry-framed values).
func (p *Producer) WithCodec(c *codec.Codec) *Producer {
	q := *p
	q.codec = c
	return &q
}

// Profiles produces profiles and waits for the acks.
func (p *Producer) Profiles(ups ...events.UserProfile) {
	p.t.Helper()
	rs := make([]*kgo.Record, len(ups))
	for i, up := range ups {
		if up.EventID == "" {
			up.EventID = events.ID("test-profile", up.UserID, up.UpdatedAt.String())
		}
		v, err := p.codec.EncodeEvent(context.Background(), p.topics.Profiles, up)
		if err != nil {
			p.t.Fatal(err)
		}
		rs[i] = &kgo.Record{Topic: p.topics.Profiles, Key: []byte(up.UserID), Value: v}
	}
	p.produce(rs...)
}

// Tombstone produces a tombstone for userID.
func (p *Producer) Tombstone(userID string) {
	p.t.Helper()
	p.produce(&kgo.Record{Topic: p.topics.Profiles, Key: []byte(userID)})
}

// Changes produces content changes and waits for the acks. A change without
// an event id gets one from its content id and version; a change without a
// commit time is committed now.
func (p *Producer) Changes(cs ...events.ContentChange) {
	p.t.Helper()
	rs := make([]*kgo.Record, len(cs))
	for i, c := range cs {
		if c.EventID == "" {
			c.EventID = events.ID("test-change", c.ContentID, fmt.Sprint(c.Version))
		}
		if c.Trace.CommittedAt.IsZero() {
			c.Trace.CommittedAt = time.Now()
		}
		v, err := p.codec.EncodeEvent(context.Background(), p.topics.Content, c)
		if err != nil {
			p.t.Fatal(err)
		}
		rs[i] = &kgo.Record{Topic: p.topics.Content, Key: []byte(c.ContentID), Value: v}
	}
	p.produce(rs...)
}

// Raw produces a record as it is (malformed input).
func (p *Producer) Raw(topic string, key, value []byte) {
	p.t.Helper()
	p.produce(&kgo.Record{Topic: topic, Key: key, Value: value})
}

func (p *Producer) produce(rs ...*kgo.Record) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		p.t.Fatal(err)
	}
}

// Delivery is a delivery read back, with the partition it was on.
type Delivery struct {
	events.Delivery
	Partition int32
	Key       string
}

// ReadAll reads every committed record of topic (read_committed, up to the
// last stable offset of each partition) and returns them.
func ReadAll(t testing.TB, seeds []string, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm, admCl := admin(t, seeds)
	defer admCl.Close()
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if len(want) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s: %v (left %v)", topic, err, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := want[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if r.Offset >= end-1 {
				delete(want, r.Partition)
			}
		})
	}
	return out
}

// Deliveries reads every committed delivery of topic and decodes it.
func Deliveries(t testing.TB, seeds []string, topic string) []Delivery {
	t.Helper()
	c, err := codec.New()
	if err != nil {
		t.Fatal(err)
	}
	return DeliveriesWith(t, c, seeds, topic)
}

// DeliveriesWith is Deliveries decoding with c (a codec with the registry
// the deliveries were written with).
func DeliveriesWith(t testing.TB, c *codec.Codec, seeds []string, topic string) []Delivery {
	t.Helper()
	var out []Delivery
	for _, r := range ReadAll(t, seeds, topic) {
		ev, _, err := c.DecodeTyped(context.Background(), r.Value)
		if err != nil {
			t.Fatalf("delivery at %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
		}
		out = append(out, Delivery{Delivery: *ev.(*events.Delivery), Partition: r.Partition, Key: string(r.Key)})
	}
	return out
}

func admin(t testing.TB, seeds []string) (*kadm.Client, *kgo.Client) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	return kadm.NewClient(cl), cl
}

// WaitCaughtUp waits until group's committed progress covers every change
// written to topics.Content so far, for each of the userParts partitions:
// then every delivery of those changes is committed.
func WaitCaughtUp(t testing.TB, seeds []string, group string, topics Topics, userParts int, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	adm, cl := admin(t, seeds)
	defer cl.Close()
	ends, err := adm.ListEndOffsets(ctx, topics.Content)
	if err != nil {
		t.Fatal(err)
	}
	var last string
	for {
		last = caughtUp(ctx, adm, group, topics, userParts, ends)
		if last == "" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("progress of group %s did not cover the changes within %v: %s", group, timeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// caughtUp returns "" when caught up, else what is missing.
func caughtUp(ctx context.Context, adm *kadm.Client, group string, topics Topics, userParts int, ends kadm.ListedOffsets) string {
	resps, err := adm.FetchOffsets(kadm.RequireStable(ctx), group)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		return err.Error()
	}
	for p := range int32(userParts) {
		r, ok := resps.Lookup(topics.Profiles, p)
		if !ok {
			return fmt.Sprintf("no commit for partition %d", p)
		}
		prog, err := wire.ParseProgress(r.Metadata)
		if err != nil {
			return fmt.Sprintf("partition %d: %v", p, err)
		}
		missing := ""
		ends.Each(func(o kadm.ListedOffset) {
			if prog[o.Partition] < o.Offset && missing == "" {
				missing = fmt.Sprintf("user partition %d at %d of content partition %d (end %d)", p, prog[o.Partition], o.Partition, o.Offset)
			}
		})
		if missing != "" {
			return missing
		}
	}
	return ""
}

// DLQ reads the committed records of topic's dead letter topic.
func DLQ(t testing.TB, seeds []string, topic string) []*kgo.Record {
	t.Helper()
	return ReadAll(t, seeds, kafka.DLQTopic(topic))
}

// ManyProfiles produces n profiles to topic as fast as the broker takes
// them: 5 interests among 2,000 tags, 3 follows and 2 segments each, user
// ids "user-<i>"; extra, when not nil, changes profile i before it is
// encoded. It returns when the broker acked them all.
func ManyProfiles(t testing.TB, seeds []string, topic string, n int, extra func(i int, up *events.UserProfile)) {
	t.Helper()
	c, err := codec.New()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	var firstErr atomic.Value
	for i := range n {
		up := events.UserProfile{UserID: "user-" + strconv.Itoa(i), Locale: "en-GB", Region: "r" + strconv.Itoa(i%50)}
		for j := range 5 {
			up.Interests = append(up.Interests, events.Interest{Tag: "tag" + strconv.Itoa((i*7+j*131)%2000), Weight: 0.5 + float64(j)/10})
		}
		up.Follows = []string{"author:" + strconv.Itoa(i%500), "section:s" + strconv.Itoa(i%20), "tag:tag" + strconv.Itoa(i%2000)}
		up.Segments = []string{"seg" + strconv.Itoa(i%10), "all"}
		if extra != nil {
			extra(i, &up)
		}
		v, err := c.EncodeEvent(ctx, topic, up)
		if err != nil {
			t.Fatal(err)
		}
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(up.UserID), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err, _ := firstErr.Load().(error); err != nil {
		t.Fatal(err)
	}
}

// CommitEnd commits, for group, every partition of the profiles topic at
// its end offset with an empty progress, as a previous owner would have
// after applying them: the next instance restores all of them.
func CommitEnd(t testing.TB, seeds []string, group, topic string) {
	t.Helper()
	adm, cl := admin(t, seeds)
	defer cl.Close()
	ends, err := adm.ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	offs := kadm.Offsets{}
	ends.Each(func(o kadm.ListedOffset) {
		offs.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.Offset, LeaderEpoch: -1, Metadata: wire.Progress{}.String()})
	})
	resp, err := adm.CommitOffsets(context.Background(), group, offs)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// ExactlyOnce fails t unless every (change, user) pair of changeIDs × users
// was delivered exactly once, and nothing else was delivered.
func ExactlyOnce(t testing.TB, ds []Delivery, changeIDs, users []string) {
	t.Helper()
	seen := map[string]int{}
	for _, d := range ds {
		seen[d.ChangeEventID+"/"+d.UserID]++
	}
	missing, doubled := 0, 0
	for _, c := range changeIDs {
		for _, u := range users {
			switch n := seen[c+"/"+u]; {
			case n == 0:
				missing++
			case n > 1:
				doubled++
			}
			delete(seen, c+"/"+u)
		}
	}
	if missing > 0 || doubled > 0 || len(seen) > 0 {
		t.Fatalf("%d deliveries: %d missing, %d doubled, %d unexpected (want %d, each once)",
			len(ds), missing, doubled, len(seen), len(changeIDs)*len(users))
	}
}
