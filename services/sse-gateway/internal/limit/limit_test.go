package limit

import (
	"testing"
	"time"
)

func TestCounter(t *testing.T) {
	c := NewCounter(2)
	if !c.Acquire("a") || !c.Acquire("a") {
		t.Fatal("first two acquires refused")
	}
	if c.Acquire("a") {
		t.Fatal("third acquire allowed")
	}
	if !c.Acquire("b") {
		t.Fatal("other key refused")
	}
	c.Release("a")
	if !c.Acquire("a") {
		t.Fatal("acquire after release refused")
	}
	c.Release("a")
	c.Release("a")
	c.Release("b")
	if c.Count("a") != 0 || len(c.n) != 0 {
		t.Fatalf("counter kept keys: %v", c.n)
	}
}

func TestRate(t *testing.T) {
	r := &Rate{PerSecond: 2, Burst: 3}
	now := time.Unix(1000, 0)
	for i := range 3 {
		if ok, _ := r.Allow("ip", now); !ok {
			t.Fatalf("burst token %d refused", i)
		}
	}
	ok, wait := r.Allow("ip", now)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("past the burst: ok=%v wait=%v", ok, wait)
	}
	if ok, _ := r.Allow("other", now); !ok {
		t.Fatal("another key shares the bucket")
	}
	if ok, _ := r.Allow("ip", now.Add(500*time.Millisecond)); !ok {
		t.Fatal("refilled token refused")
	}
	r.sweep(now.Add(time.Hour), 3)
	if len(r.buckets) != 0 {
		t.Fatalf("sweep kept %d full buckets", len(r.buckets))
	}
}

func TestRateMaxKeys(t *testing.T) {
	r := &Rate{PerSecond: 1, Burst: 1, MaxKeys: 2}
	now := time.Unix(1000, 0)
	r.Allow("a", now)
	r.Allow("b", now)
	if ok, _ := r.Allow("c", now); ok {
		t.Fatal("a third key was admitted past MaxKeys while the others are not idle")
	}
	if ok, _ := r.Allow("c", now.Add(2*time.Second)); !ok {
		t.Fatal("a new key was refused after the others went idle")
	}
}
