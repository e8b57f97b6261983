package stats

import (
	"math"
	"slices"
	"time"
)

// Latencies collects durations and answers percentiles over them.
type Latencies struct {
	d      []time.Duration
	sorted bool
}

// Add records one duration.
func (l *Latencies) Add(d time.Duration) {
	l.d = append(l.d, d)
	l.sorted = false
}

// Merge adds every duration of o.
func (l *Latencies) Merge(o *Latencies) {
	l.d = append(l.d, o.d...)
	l.sorted = false
}

// Len is the number of durations recorded.
func (l *Latencies) Len() int { return len(l.d) }

// Percentile returns the p-th percentile (0 < p <= 100) by the
// nearest-rank method: the smallest recorded duration such that at least p
// percent of the durations are at or below it. Zero when nothing was
// recorded.
func (l *Latencies) Percentile(p float64) time.Duration {
	if len(l.d) == 0 {
		return 0
	}
	if !l.sorted {
		slices.Sort(l.d)
		l.sorted = true
	}
	rank := int(math.Ceil(p / 100 * float64(len(l.d))))
	rank = min(max(rank, 1), len(l.d))
	return l.d[rank-1]
}

// Max is the largest duration recorded (zero when none).
func (l *Latencies) Max() time.Duration { return l.Percentile(100) }

// Mean is the arithmetic mean (zero when none).
func (l *Latencies) Mean() time.Duration {
	if len(l.d) == 0 {
		return 0
	}
	var sum float64
	for _, d := range l.d {
		sum += float64(d)
	}
	return time.Duration(sum / float64(len(l.d)))
}

// CountAbove is how many durations exceed limit.
func (l *Latencies) CountAbove(limit time.Duration) int {
	n := 0
	for _, d := range l.d {
		if d > limit {
			n++
		}
	}
	return n
}

// Summary is the usual view of a latency distribution, in milliseconds.
type Summary struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

// Summarize returns the count, p50, p95, p99, max and mean.
func (l *Latencies) Summarize() Summary {
	return Summary{
		Count: l.Len(), P50: Ms(l.Percentile(50)), P95: Ms(l.Percentile(95)),
		P99: Ms(l.Percentile(99)), Max: Ms(l.Max()), Mean: Ms(l.Mean()),
	}
}

// Ms is d in (fractional) milliseconds.
func Ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
