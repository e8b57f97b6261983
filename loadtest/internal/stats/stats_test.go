package stats

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var l Latencies
	if l.Percentile(99) != 0 || l.Max() != 0 || l.Mean() != 0 {
		t.Fatal("empty latencies must answer 0")
	}
	// 1..100 ms, added in reverse: nearest rank gives p50 = 50 ms, p99 = 99 ms.
	for i := 100; i >= 1; i-- {
		l.Add(time.Duration(i) * time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {95, 95 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0.1, time.Millisecond}} {
		if got := l.Percentile(tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if l.Mean() != 50500*time.Microsecond {
		t.Errorf("mean %v", l.Mean())
	}
	if n := l.CountAbove(90 * time.Millisecond); n != 10 {
		t.Errorf("CountAbove(90ms) = %d, want 10", n)
	}
	// Adding after a percentile re-sorts.
	l.Add(time.Second)
	if l.Max() != time.Second {
		t.Errorf("max after add: %v", l.Max())
	}
	var m Latencies
	m.Add(2 * time.Second)
	l.Merge(&m)
	if l.Len() != 102 || l.Max() != 2*time.Second {
		t.Errorf("merge: len %d max %v", l.Len(), l.Max())
	}
	s := l.Summarize()
	if s.Count != 102 || s.Max != 2000 {
		t.Errorf("summary %+v", s)
	}
}

func TestPercentileSmall(t *testing.T) {
	var l Latencies
	l.Add(7 * time.Millisecond)
	for _, p := range []float64{1, 50, 99, 100} {
		if l.Percentile(p) != 7*time.Millisecond {
			t.Errorf("p%v of one value: %v", p, l.Percentile(p))
		}
	}
}

func TestSequence(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		seen                 []int64
		want                 int64
		gaps, dups, reorders int
	}{
		{"complete", []int64{0, 1, 2, 3}, 4, 0, 0, 0},
		{"nothing", nil, 3, 3, 0, 0},
		{"gap in the middle", []int64{0, 1, 3}, 4, 1, 0, 0},
		{"missing tail", []int64{0, 1}, 4, 2, 0, 0},
		{"duplicate after resume", []int64{0, 1, 2, 2, 3}, 4, 0, 1, 0},
		{"replayed from the start", []int64{0, 1, 2, 0, 1, 2, 3}, 4, 0, 3, 0},
		{"late arrival", []int64{0, 2, 1, 3}, 4, 0, 0, 1},
		{"beyond want ignored for gaps", []int64{0, 1, 2, 3, 4}, 3, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s Sequence
			for _, n := range tc.seen {
				s.Observe(n)
			}
			g, d, r := s.Result(tc.want)
			if g != tc.gaps || d != tc.dups || r != tc.reorders {
				t.Fatalf("gaps %d dups %d reordered %d, want %d %d %d", g, d, r, tc.gaps, tc.dups, tc.reorders)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	v, err := ParseLoadAvg("1.52 0.80 0.40 2/300 12345\n")
	if err != nil || v != 1.52 {
		t.Fatalf("ParseLoadAvg = %v, %v", v, err)
	}
	if _, err := ParseLoadAvg(""); err == nil {
		t.Fatal("empty loadavg accepted")
	}
	st := SummarizeLoad([]float64{1, 3, 2})
	if st.Start != 1 || st.End != 2 || st.Max != 3 || st.Mean != 2 {
		t.Fatalf("SummarizeLoad = %+v", st)
	}
	if SummarizeLoad(nil) != (LoadStats{}) {
		t.Fatal("no samples must give zeros")
	}
	s := StartLoadSampler(time.Hour)
	a := s.Stop()
	b := s.Stop() // twice is fine
	if a != b {
		t.Fatalf("Stop twice: %+v then %+v", a, b)
	}
}

func TestMachineCPU(t *testing.T) {
	m, err := ParseMachineCPU("cpu  1000 50 300 5000 100 10 20 30 0 0\ncpu0 1 2 3 4 5 6 7 8\n")
	if err != nil {
		t.Fatal(err)
	}
	if m.Busy != 14.1 || m.Total != 65.1 {
		t.Fatalf("ParseMachineCPU = %+v, want busy 14.1 total 65.1", m)
	}
	if _, err := ParseMachineCPU("intr 1 2 3"); err == nil {
		t.Fatal("bad /proc/stat accepted")
	}
	if d := (MachineCPU{3, 10}).Sub(MachineCPU{1, 4}); d != (MachineCPU{2, 6}) {
		t.Fatalf("Sub = %+v", d)
	}
}
