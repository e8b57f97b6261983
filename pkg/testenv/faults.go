package testenv

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ProducesTo returns a test of whether a produce request writes to one of
// topics (no topics: any topic of the test, by its prefix), for kfake
// control functions. Topics are matched by name and, since recent produce
// versions name them by id, by the id they have now: call it once they
// exist.
func ProducesTo(tb testing.TB, kt KafkaTest, topics ...string) func(*kmsg.ProduceRequest) bool {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kt.Seeds...))
	if err != nil {
		tb.Fatal(err)
	}
	details, err := kadm.NewClient(cl).ListTopics(context.Background())
	cl.Close()
	if err != nil {
		tb.Fatal(err)
	}
	named := map[string]bool{}
	for _, t := range topics {
		named[t] = true
	}
	ours := func(name string) bool {
		if len(named) > 0 {
			return named[name]
		}
		return strings.HasPrefix(name, kt.Prefix+".")
	}
	ids := map[[16]byte]bool{}
	for name, d := range details {
		if ours(name) {
			ids[d.ID] = true
		}
	}
	return func(pr *kmsg.ProduceRequest) bool {
		for _, t := range pr.Topics {
			if ours(t.Topic) || ids[t.TopicID] {
				return true
			}
		}
		return false
	}
}

// RefuseProduce makes the package's broker answer, with the error code
// (e.g. kerr.NotLeaderForPartition.Code, which clients retry, or
// kerr.InvalidRecord.Code, which fails the records), every produce request
// that writes to one of topics (see ProducesTo) while on is true: a Kafka
// outage as a producer sees it. It returns the count of requests refused;
// the refusal ends with the test.
func RefuseProduce(tb testing.TB, kt KafkaTest, code int16, on *atomic.Bool, topics ...string) *atomic.Int64 {
	tb.Helper()
	hits := ProducesTo(tb, kt, topics...)
	var refused atomic.Int64
	var done atomic.Bool
	tb.Cleanup(func() { done.Store(true) })
	c := kt.Cluster
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if done.Load() {
			c.DropControl()
			return nil, nil, false
		}
		pr := req.(*kmsg.ProduceRequest)
		if !on.Load() || !hits(pr) {
			return nil, nil, false // handled by the broker as usual
		}
		c.KeepControl()
		refused.Add(1)
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, t := range pr.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	return &refused
}
