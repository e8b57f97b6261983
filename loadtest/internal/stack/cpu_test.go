package stack

import (
	"math"
	"testing"
)

func TestParseStat(t *testing.T) {
	line := "1234 (cache (main)) S 1200 1234 1234 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 1 0 100 1000 10 18446744073709551615"
	p, ok := parseStat(line)
	if !ok || p.pid != 1234 || p.ppid != 1200 || p.comm != "cache (main)" || p.ticks != 310 {
		t.Fatalf("parseStat = %+v, %v", p, ok)
	}
	if _, ok := parseStat("garbage"); ok {
		t.Fatal("garbage parsed")
	}
}

func TestSince(t *testing.T) {
	got := Since(map[string]float64{"a": 1, "b": 2}, map[string]float64{"a": 1, "b": 5, "c": 1})
	if len(got) != 2 || got["b"] != 3 || got["c"] != 1 {
		t.Fatalf("Since = %v", got)
	}
}

func TestBucketQuantile(t *testing.T) {
	inf := math.Inf(1)
	before := map[float64]float64{0.01: 10, 0.05: 10, 0.1: 10, inf: 10}
	after := map[float64]float64{0.01: 60, 0.05: 108, 0.1: 110, inf: 110}
	if b, n := BucketQuantile(before, after, 0.5); b != 0.01 || n != 100 {
		t.Errorf("p50 bound %v over %v, want 0.01 over 100", b, n)
	}
	if b, _ := BucketQuantile(before, after, 0.99); b != 0.1 {
		t.Errorf("p99 bound %v, want 0.1", b)
	}
	if b, n := BucketQuantile(after, after, 0.99); b != 0 || n != 0 {
		t.Errorf("no observations: %v %v", b, n)
	}
}

func TestFreeRun(t *testing.T) {
	seen := map[int]bool{}
	for range 5 {
		p, err := freeRun(3)
		if err != nil {
			t.Fatal(err)
		}
		if p < portLow || p+3 > portHigh {
			t.Fatalf("port %d outside [%d, %d)", p, portLow, portHigh)
		}
		for i := range 3 {
			if seen[p+i] {
				t.Fatalf("port %d handed out twice", p+i)
			}
			seen[p+i] = true
		}
	}
}
