package scoring

import (
	"fmt"
	"testing"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/services/personalizer/internal/profiles"
)

// BenchmarkScore10k scores a change that makes 10,000 of 100,000 users
// candidates (all pass the threshold) and builds every hit's reasons: the
// CPU a 10k-user change costs before encoding and producing.
func BenchmarkScore10k(b *testing.B) {
	tb := profiles.New(100_000)
	for i := range 100_000 {
		p := profiles.Profile{UserID: fmt.Sprint("user-", i), Partition: int32(i % 12), Region: "fr",
			Interests: []profiles.Interest{{Tag: fmt.Sprint("tag", i%2000), Weight: 1}}}
		if i%10 == 0 {
			p.Follows = []string{"tag:hot"}
		}
		tb.Upsert(p)
	}
	s := New(rules(b, freshetRules), 12)
	f := pipeline.ContentFields(&events.ContentChange{Op: events.OpCreate, ContentID: "1", Tags: []string{"hot"}, Attributes: map[string]string{"region": "fr"}})
	var hits []Hit
	var reasons []events.Reason
	b.ReportAllocs()
	for b.Loop() {
		q := s.Prepare(tb, f, 0)
		hits, _ = s.Score(tb, &q, hits[:0])
		for _, h := range hits {
			reasons = s.Reasons(tb, &q, h, reasons[:0])
		}
	}
	if len(hits) != 10_000 {
		b.Fatalf("%d hits", len(hits))
	}
}
