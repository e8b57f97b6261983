package stats

// Sequence checks one stream's deliveries against the numbers the load
// generator gave them, 0, 1, 2, ... in order. A number seen again is a
// duplicate; a number skipped, before a later one or missing at the end,
// is a gap. Order within one stream is what the gateway guarantees (one
// user's deliveries share a partition), so a number lower than the next
// expected that was never seen also counts as a gap closed out of order,
// i.e. a reordering, reported apart.
type Sequence struct {
	next      int64
	seen      map[int64]struct{} // numbers below next that arrived
	dups      int
	reordered int
}

// Observe records delivery n.
func (s *Sequence) Observe(n int64) {
	if s.seen == nil {
		s.seen = make(map[int64]struct{})
	}
	if _, ok := s.seen[n]; ok {
		s.dups++
		return
	}
	s.seen[n] = struct{}{}
	if n < s.next {
		s.reordered++
		return
	}
	s.next = n + 1
}

// Received is how many distinct numbers arrived.
func (s *Sequence) Received() int { return len(s.seen) }

// Next is the number expected next (one past the highest seen).
func (s *Sequence) Next() int64 { return s.next }

// Result counts gaps (numbers in [0, want) that never arrived),
// duplicates (arrivals of a number already seen) and reorderings.
func (s *Sequence) Result(want int64) (gaps, dups, reordered int) {
	for n := range want {
		if _, ok := s.seen[n]; !ok {
			gaps++
		}
	}
	return gaps, s.dups, s.reordered
}
