package scoring

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/services/personalizer/internal/profiles"
	"github.com/freshet/freshet/services/personalizer/internal/ptest"
)

// rules returns the personalization rules of a pipeline file holding only
// the given personalization section (indented YAML).
func rules(t testing.TB, section string) *pipeline.Personalization {
	t.Helper()
	p, err := pipeline.Parse("test.yaml", []byte("version: 1\npersonalization:\n"+section))
	if err != nil {
		t.Fatal(err)
	}
	return &p.Personalization
}

// The rules of pipelines/freshet.yaml, without recency decay.
var freshetRules = strings.TrimPrefix(ptest.Rules, "personalization:\n")

var users = []profiles.Profile{
	{UserID: "ana", Interests: []profiles.Interest{{Tag: "go", Weight: 0.8}, {Tag: "rust", Weight: 0.3}}, Region: "fr", Locale: "fr-FR"},
	{UserID: "bob", Follows: []string{"author:7"}, Region: "de"},
	{UserID: "cyd", Interests: []profiles.Interest{{Tag: "go", Weight: 0.4}}, Region: "fr"},
	{UserID: "dan", Follows: []string{"section:sport", "tag:go"}},
	{UserID: "eve", Segments: []string{"premium"}, Locale: "en-GB"},
	{UserID: "fay", Region: "fr", Locale: "fr-FR"}, // region and locale alone never make a candidate
	{UserID: "gus", Interests: []profiles.Interest{{Tag: "cooking", Weight: 5}}},
}

func table(ps ...profiles.Profile) *profiles.Table {
	t := profiles.New(len(ps))
	for _, p := range ps {
		t.Upsert(p)
	}
	return t
}

func change(tags []string, section string, attrs map[string]string, locale string) *events.ContentChange {
	return &events.ContentChange{Op: events.OpCreate, ContentID: "42", Tags: tags, Section: section, Attributes: attrs, Locale: locale}
}

type scored map[string]float64

func score(t *testing.T, r *pipeline.Personalization, partitions int, tb *profiles.Table, c *events.ContentChange, age time.Duration) (scored, [][]events.Reason, int) {
	t.Helper()
	s := New(r, partitions)
	q := s.Prepare(tb, pipeline.ContentFields(c), age)
	hits, cands := s.Score(tb, &q, nil)
	got := scored{}
	var reasons [][]events.Reason
	for _, h := range hits {
		got[h.UserID] = h.Score
		rs := s.Reasons(tb, &q, h, nil)
		var sum float64
		for _, x := range rs {
			sum += x.Score
		}
		if math.Abs(sum-h.Score) > 1e-9 {
			t.Errorf("%s: reasons %v add up to %v, score is %v", h.UserID, rs, sum, h.Score)
		}
		reasons = append(reasons, rs)
	}
	return got, reasons, cands
}

func TestScoreRules(t *testing.T) {
	r := rules(t, freshetRules)
	tb := table(users...)
	tests := []struct {
		name   string
		change *events.ContentChange
		want   scored
		cands  int
	}{
		{"interest weights times matching tags", change([]string{"go", "rust"}, "", nil, ""),
			// ana: 0.8+0.3; cyd: 0.4 < threshold; dan follows tag:go: 2
			scored{"ana": 1.1, "dan": 2}, 3},
		{"follows of author and section", change(nil, "sport", map[string]string{"author": "7"}, ""),
			scored{"bob": 2, "dan": 2}, 2},
		{"region and locale add to a candidate's score", change([]string{"go"}, "", map[string]string{"region": "fr"}, "fr-FR"),
			// ana 0.8+0.5+0.5; cyd 0.4+0.5 = 0.9 < 1; dan 2; fay is no candidate
			scored{"ana": 1.8, "dan": 2}, 3},
		{"region lifts a user over the threshold", change([]string{"go"}, "", map[string]string{"region": "fr"}, ""),
			scored{"ana": 1.3, "dan": 2}, 3},
		{"segment", change(nil, "", map[string]string{"audience": "premium"}, "en-GB"),
			scored{"eve": 1.5}, 1},
		{"threshold keeps out weak matches", change([]string{"rust"}, "", nil, ""),
			scored{}, 1},
		{"no match, no candidate", change([]string{"knitting"}, "garden", map[string]string{"region": "fr"}, "fr-FR"),
			scored{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reasons, cands := score(t, r, 1, tb, tt.change, 0)
			if !sameScores(got, tt.want) {
				t.Errorf("scores = %v, want %v", got, tt.want)
			}
			if cands != tt.cands {
				t.Errorf("candidates = %d, want %d", cands, tt.cands)
			}
			for _, rs := range reasons {
				if len(rs) == 0 {
					t.Errorf("a delivery without reasons")
				}
			}
		})
	}
}

func sameScores(a, b scored) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || math.Abs(v-w) > 1e-6 {
			return false
		}
	}
	return true
}

func TestReasons(t *testing.T) {
	r := rules(t, freshetRules)
	tb := table(users...)
	s := New(r, 1)
	q := s.Prepare(tb, pipeline.ContentFields(change([]string{"go"}, "sport", map[string]string{"region": "fr"}, "fr-FR")), 0)
	hits, _ := s.Score(tb, &q, nil)
	byUser := map[string][]events.Reason{}
	for _, h := range hits {
		byUser[h.UserID] = s.Reasons(tb, &q, h, nil)
	}
	want := map[string][]events.Reason{
		"ana": {{Rule: "interest", Match: "go", Score: float64(float32(0.8))}, {Rule: "region", Match: "fr", Score: 0.5}, {Rule: "locale", Match: "fr-FR", Score: 0.5}},
		"dan": {{Rule: "follow", Match: "section:sport", Score: 2}, {Rule: "follow", Match: "tag:go", Score: 2}},
	}
	for u, w := range want {
		got := byUser[u]
		slices.SortFunc(got, func(a, b events.Reason) int { return strings.Compare(a.Rule+a.Match, b.Rule+b.Match) })
		slices.SortFunc(w, func(a, b events.Reason) int { return strings.Compare(a.Rule+a.Match, b.Rule+b.Match) })
		if !slices.Equal(got, w) {
			t.Errorf("%s: reasons = %v, want %v", u, got, w)
		}
	}
}

func TestRecency(t *testing.T) {
	r := rules(t, strings.Replace(freshetRules, "recency_half_life: 0s", "recency_half_life: 1h", 1))
	tb := table(users...)
	// dan follows tag:go (2): after one half-life 1, after two 0.5 (< threshold).
	got, reasons, _ := score(t, r, 1, tb, change([]string{"go"}, "", nil, ""), time.Hour)
	if !sameScores(got, scored{"dan": 1}) {
		t.Fatalf("after one half-life: %v", got)
	}
	last := reasons[0][len(reasons[0])-1]
	if last.Rule != "recency" || math.Abs(last.Score+1) > 1e-9 || last.Match != "age:1h0m0s" {
		t.Errorf("recency reason = %+v", last)
	}
	if got, _, _ := score(t, r, 1, tb, change([]string{"go"}, "", nil, ""), 2*time.Hour); len(got) != 0 {
		t.Errorf("after two half-lives: %v", got)
	}
	if d := Decay(-time.Hour, time.Hour); d != 1 {
		t.Errorf("a change from the future decays by %v", d)
	}
}

func TestCap(t *testing.T) {
	r := rules(t, freshetRules+"  max_deliveries_per_change: 3\n")
	var ps []profiles.Profile
	for i, w := range []float64{5, 1, 4, 2, 3, 6} {
		ps = append(ps, profiles.Profile{UserID: string(rune('a' + i)), Partition: int32(i % 2), Interests: []profiles.Interest{{Tag: "go", Weight: w}}})
	}
	tb := table(ps...)
	t.Run("highest scores", func(t *testing.T) {
		one := profiles.New(0)
		for _, p := range ps {
			p.Partition = 0
			one.Upsert(p)
		}
		got, _, cands := score(t, r, 1, one, change([]string{"go"}, "", nil, ""), 0)
		if !sameScores(got, scored{"f": 6, "a": 5, "c": 4}) || cands != 6 {
			t.Errorf("got %v (%d candidates)", got, cands)
		}
	})
	t.Run("split over partitions", func(t *testing.T) {
		// Partition 0 holds a(5) c(4) e(3), partition 1 b(1) d(2) f(6). A cap
		// of 3 over 2 partitions: 1 each, and the one Spread picks gets 2.
		for spread, want := range []scored{{"a": 5, "c": 4, "f": 6}, {"a": 5, "f": 6, "d": 2}} {
			s := New(r, 2)
			q := s.Prepare(tb, pipeline.ContentFields(change([]string{"go"}, "", nil, "")), 0)
			q.Spread = uint32(spread)
			hits, _ := s.Score(tb, &q, nil)
			got := scored{}
			for _, h := range hits {
				got[h.UserID] = h.Score
			}
			if !sameScores(got, want) {
				t.Errorf("spread %d: got %v, want %v", spread, got, want)
			}
		}
	})
	t.Run("ties by user id", func(t *testing.T) {
		tb := table(
			profiles.Profile{UserID: "z", Interests: []profiles.Interest{{Tag: "go", Weight: 2}}},
			profiles.Profile{UserID: "y", Interests: []profiles.Interest{{Tag: "go", Weight: 2}}},
			profiles.Profile{UserID: "x", Interests: []profiles.Interest{{Tag: "go", Weight: 2}}},
			profiles.Profile{UserID: "w", Interests: []profiles.Interest{{Tag: "go", Weight: 2}}},
		)
		got, _, _ := score(t, r, 1, tb, change([]string{"go"}, "", nil, ""), 0)
		if !sameScores(got, scored{"w": 2, "x": 2, "y": 2}) {
			t.Errorf("got %v", got)
		}
	})
}

// The quotas of the partitions add up to the cap, for any cap, number of
// partitions and spread: a change never gets more deliveries than the cap,
// and the cap is reached when every partition has hits enough.
func TestQuotasAddUpToTheCap(t *testing.T) {
	for limit := 1; limit <= 40; limit++ {
		for parts := 1; parts <= 16; parts++ {
			for _, spread := range []uint32{0, 1, 7, SpreadOf("some change"), math.MaxUint32} {
				sum, lo, hi := 0, limit, 0
				for p := range parts {
					q := Quota(limit, parts, p, spread)
					sum += q
					lo, hi = min(lo, q), max(hi, q)
				}
				if sum != limit || hi-lo > 1 {
					t.Fatalf("cap %d over %d partitions (spread %d): quotas add up to %d, from %d to %d", limit, parts, spread, sum, lo, hi)
				}
			}
		}
	}
	// Through Score: 12 partitions of 5 users each, a cap of 10.
	r := rules(t, freshetRules+"  max_deliveries_per_change: 10\n")
	var ps []profiles.Profile
	for i := range 60 {
		ps = append(ps, profiles.Profile{UserID: fmt.Sprintf("u%02d", i), Partition: int32(i % 12), Interests: []profiles.Interest{{Tag: "go", Weight: 1 + float64(i)/100}}})
	}
	got, _, _ := score(t, r, 12, table(ps...), change([]string{"go"}, "", nil, ""), 0)
	if len(got) != 10 {
		t.Errorf("a cap of 10 over 12 partitions gave %d deliveries", len(got))
	}
}

func TestProfileChanges(t *testing.T) {
	r := rules(t, freshetRules)
	tb := table(users...)
	go1 := change([]string{"go"}, "", nil, "")
	// ana drops go: no longer a candidate, though her old posting remains.
	tb.Upsert(profiles.Profile{UserID: "ana", Interests: []profiles.Interest{{Tag: "rust", Weight: 2}}})
	// dan is deleted; gus now follows tag:go.
	tb.Delete("dan")
	tb.Upsert(profiles.Profile{UserID: "gus", Follows: []string{"tag:go"}})
	got, _, cands := score(t, r, 1, tb, go1, 0)
	if !sameScores(got, scored{"gus": 2}) || cands != 2 { // cyd (0.4) and gus
		t.Errorf("got %v (%d candidates)", got, cands)
	}
	// Churn on one key compacts its postings without losing anyone.
	for i := range 100 {
		tags := []profiles.Interest{{Tag: "go", Weight: 1}}
		if i%2 == 1 {
			tags = nil
		}
		tb.Upsert(profiles.Profile{UserID: "cyd", Interests: tags})
	}
	if n := len(tb.Postings(profiles.RuleInterest, tb.Lookup("go"))); n > 40 {
		t.Errorf("postings of go hold %d slots after churn", n)
	}
	got, _, _ = score(t, r, 1, tb, go1, 0)
	if !sameScores(got, scored{"gus": 2}) {
		t.Errorf("after churn: %v", got)
	}
}

func TestDropPartition(t *testing.T) {
	r := rules(t, freshetRules)
	var ps []profiles.Profile
	for i := range 10 {
		ps = append(ps, profiles.Profile{UserID: string(rune('a' + i)), Partition: int32(i % 3), Follows: []string{"tag:go"}})
	}
	tb := table(ps...)
	if n := tb.DropPartition(1); n != 3 {
		t.Fatalf("dropped %d, want 3", n)
	}
	got, _, cands := score(t, r, 1, tb, change([]string{"go"}, "", nil, ""), 0)
	if len(got) != 7 || cands != 7 || tb.Len() != 7 || tb.PartitionLen(1) != 0 {
		t.Errorf("after drop: %v, %d candidates, len %d", got, cands, tb.Len())
	}
	for u := range got {
		if p, _ := tb.Get(u); p.Partition == 1 {
			t.Errorf("%s of partition 1 still scored", u)
		}
	}
	// Slots are reused.
	tb.Upsert(profiles.Profile{UserID: "new", Partition: 1, Follows: []string{"tag:go"}})
	if tb.Slots() != 10 {
		t.Errorf("slots = %d, want 10 (reused)", tb.Slots())
	}
}

func TestFieldsOfDelete(t *testing.T) {
	c := &events.ContentChange{Op: events.OpDelete, ContentID: "9", URLPath: "/a/9", Tags: []string{"go"}}
	f := pipeline.ContentFields(c)
	if f["old.url"][0] != "/a/9" || len(f["new.url"]) != 0 || f["tags"][0] != "go" || f["op"][0] != "delete" || f["id"][0] != "9" {
		t.Errorf("fields of a delete: %v", f)
	}
	c = &events.ContentChange{Op: events.OpUpdate, ContentID: "9", URLPath: "/b/9", Before: &events.ContentBefore{URLPath: "/a/9"}, MissingFields: []string{"tags"}, Tags: []string{"x"}}
	f = pipeline.ContentFields(c)
	if f["old.url"][0] != "/a/9" || f["new.url"][0] != "/b/9" || f["tags"] != nil {
		t.Errorf("fields of an update: %v", f)
	}
}
