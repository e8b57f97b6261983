package scoring

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/services/personalizer/internal/profiles"
)

// Query is a change prepared for scoring: the keys its rules expand to,
// resolved against a table, and the recency decay.
type Query struct {
	keys   [3][]profiles.Key // by profiles.Rule
	region []profiles.Key
	locale []profiles.Key
	// Decay is the recency factor, 0.5^(age/half-life), in (0, 1].
	Decay float64
	// Age is the time since the change was committed (0 when in the future).
	Age time.Duration
	// Spread picks the partitions that get the remainder of the cap when it
	// does not divide evenly (see the package doc). The caller sets it from
	// the change (every instance the same), so that no partition is always
	// the one favoured.
	Spread uint32
}

// Hit is a user that passed the threshold.
type Hit struct {
	Slot      profiles.Slot
	UserID    string
	Partition int32
	Score     float64
}

// Scorer scores changes against a profile table with one rule set.
type Scorer struct {
	rules      *pipeline.Personalization
	partitions int
	weights    [3]float64 // by profiles.Rule
	seen       []uint32
	stamp      uint32
}

// New returns a scorer of rules for a user.profiles topic of partitions
// partitions (which splits the cap; see the package doc). rules must be
// validated (pipeline.Load does it) and is only read.
func New(rules *pipeline.Personalization, partitions int) *Scorer {
	return &Scorer{
		rules:      rules,
		partitions: max(partitions, 1),
		weights: [3]float64{
			profiles.RuleInterest: rules.Interest.Weight,
			profiles.RuleFollow:   rules.Follow.Weight,
			profiles.RuleSegment:  rules.Segment.Weight,
		},
	}
}

// Decay returns 0.5^(age/halfLife), 1 for a zero half-life or a non-positive
// age.
func Decay(age, halfLife time.Duration) float64 {
	if halfLife <= 0 || age <= 0 {
		return 1
	}
	return math.Exp2(-float64(age) / float64(halfLife))
}

// Prepare expands the rules' key templates over f and resolves the keys in t.
// Keys no profile holds are dropped: they cannot match. age is the time since
// the change was committed.
func (s *Scorer) Prepare(t *profiles.Table, f pipeline.Fields, age time.Duration) Query {
	q := Query{Decay: Decay(age, s.rules.RecencyHalfLife), Age: max(age, 0)}
	rules := [3]*pipeline.Rule{&s.rules.Interest, &s.rules.Follow, &s.rules.Segment}
	for r, rule := range rules {
		if s.weights[r] != 0 {
			q.keys[r] = resolve(t, rule.Match(f))
		}
	}
	if s.rules.Region.Weight != 0 {
		q.region = resolve(t, s.rules.Region.Match(f))
	}
	if s.rules.Locale.Weight != 0 {
		q.locale = resolve(t, s.rules.Locale.Match(f))
	}
	return q
}

func resolve(t *profiles.Table, names []string) []profiles.Key {
	var ks []profiles.Key
	for _, n := range names {
		if k := t.Lookup(n); k != profiles.NoKey {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return slices.Compact(ks)
}

// Score appends to dst the users of t that q's keys make candidates and whose
// score reaches the threshold, within each partition's quota of the cap
// (highest scores first),
// and returns it with the number of candidates scored.
func (s *Scorer) Score(t *profiles.Table, q *Query, dst []Hit) ([]Hit, int) {
	if n := t.Slots(); len(s.seen) < n {
		s.seen = append(s.seen, make([]uint32, n-len(s.seen))...)
	}
	s.stamp++
	if s.stamp == 0 { // wrapped: forget every stamp
		clear(s.seen)
		s.stamp = 1
	}
	start := len(dst)
	candidates := 0
	for r := profiles.RuleInterest; r <= profiles.RuleSegment; r++ {
		for _, k := range q.keys[r] {
			for _, slot := range t.Postings(r, k) {
				if s.seen[slot] == s.stamp || !t.Holds(slot, r, k) {
					continue
				}
				s.seen[slot] = s.stamp
				candidates++
				raw := s.raw(t, q, slot)
				if score := raw * q.Decay; score >= s.rules.Threshold {
					u, _ := t.User(slot)
					dst = append(dst, Hit{Slot: slot, UserID: u.ID, Partition: u.Partition, Score: score})
				}
			}
		}
	}
	return s.capHits(dst, start, q.Spread), candidates
}

// raw is the score of the user in slot before the recency decay.
func (s *Scorer) raw(t *profiles.Table, q *Query, slot profiles.Slot) float64 {
	var sum float64
	if w := s.weights[profiles.RuleInterest]; w != 0 {
		for _, k := range q.keys[profiles.RuleInterest] {
			if iw, ok := t.InterestWeight(slot, k); ok {
				sum += w * iw
			}
		}
	}
	for _, r := range []profiles.Rule{profiles.RuleFollow, profiles.RuleSegment} {
		if w := s.weights[r]; w != 0 {
			for _, k := range q.keys[r] {
				if t.Holds(slot, r, k) {
					sum += w
				}
			}
		}
	}
	u, _ := t.User(slot)
	if u.Region != profiles.NoKey && slices.Contains(q.region, u.Region) {
		sum += s.rules.Region.Weight
	}
	if u.Locale != profiles.NoKey && slices.Contains(q.locale, u.Locale) {
		sum += s.rules.Locale.Weight
	}
	return sum
}

// capHits keeps, in hits[start:], at most the quota of each partition of its
// highest scores.
func (s *Scorer) capHits(hits []Hit, start int, spread uint32) []Hit {
	limit := s.rules.MaxDeliveriesPerChange
	if limit <= 0 || len(hits)-start <= limit/s.partitions {
		return hits // no partition can be over its quota
	}
	h := hits[start:]
	slices.SortFunc(h, func(a, b Hit) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(b.Score, a.Score), cmp.Compare(a.UserID, b.UserID))
	})
	kept := h[:0]
	n, quota := 0, 0
	for i, x := range h {
		if i == 0 || x.Partition != h[i-1].Partition {
			n, quota = 0, Quota(limit, s.partitions, int(x.Partition), spread)
		}
		if n < quota {
			kept = append(kept, x)
			n++
		}
	}
	return hits[:start+len(kept)]
}

// SpreadOf returns a Query.Spread for the change whose event id is id: a
// hash (FNV-1a) that is the same in every instance.
func SpreadOf(id string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return h
}

// Quota is partition p's share of a cap of limit deliveries over partitions
// partitions: limit/partitions, plus one for limit%partitions of them, the
// ones that follow spread (mod partitions). The shares add up to limit.
func Quota(limit, partitions, p int, spread uint32) int {
	q := limit / partitions
	if (p-int(spread%uint32(partitions))+partitions)%partitions < limit%partitions {
		q++
	}
	return q
}

// Reasons appends the reasons of hit's score to dst (see the package doc).
func (s *Scorer) Reasons(t *profiles.Table, q *Query, hit Hit, dst []events.Reason) []events.Reason {
	var sum float64
	add := func(rule, match string, score float64) {
		dst = append(dst, events.Reason{Rule: rule, Match: match, Score: score})
		sum += score
	}
	if w := s.weights[profiles.RuleInterest]; w != 0 {
		for _, k := range q.keys[profiles.RuleInterest] {
			if iw, ok := t.InterestWeight(hit.Slot, k); ok {
				add(profiles.RuleInterest.String(), t.Name(k), w*iw)
			}
		}
	}
	for _, r := range []profiles.Rule{profiles.RuleFollow, profiles.RuleSegment} {
		if w := s.weights[r]; w != 0 {
			for _, k := range q.keys[r] {
				if t.Holds(hit.Slot, r, k) {
					add(r.String(), t.Name(k), w)
				}
			}
		}
	}
	u, _ := t.User(hit.Slot)
	if u.Region != profiles.NoKey && slices.Contains(q.region, u.Region) {
		add("region", t.Name(u.Region), s.rules.Region.Weight)
	}
	if u.Locale != profiles.NoKey && slices.Contains(q.locale, u.Locale) {
		add("locale", t.Name(u.Locale), s.rules.Locale.Weight)
	}
	if q.Decay < 1 {
		dst = append(dst, events.Reason{Rule: "recency", Match: "age:" + q.Age.Round(time.Second).String(), Score: sum*q.Decay - sum})
	}
	return dst
}
