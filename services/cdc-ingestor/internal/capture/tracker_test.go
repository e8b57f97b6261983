package capture

import (
	"errors"
	"testing"
	"time"
)

func TestTrackerConfirmsInCommitOrder(t *testing.T) {
	tr := newTracker(10)
	a, b := tr.begin(time.Time{}), tr.begin(time.Time{})
	tr.add(a)
	tr.add(b)
	tr.seal(b, 30)
	tr.done(b, nil) // b is acked first, but a is not: nothing moves
	if c, n, _ := tr.state(); c != 10 || n != 2 {
		t.Fatalf("state = %d, %d; want 10, 2 (a still in flight)", c, n)
	}
	tr.done(a, nil) // a's events acked but its commit not seen yet
	if c, _, _ := tr.state(); c != 10 {
		t.Fatalf("confirmed %d before a's commit arrived", c)
	}
	tr.seal(a, 20)
	if c, n, _ := tr.state(); c != 30 || n != 0 {
		t.Fatalf("state = %d, %d; want 30, 0", c, n)
	}
	select {
	case <-a.acked:
	default:
		t.Fatal("a.acked not closed")
	}
}

func TestTrackerStopsAtFailure(t *testing.T) {
	tr := newTracker(0)
	a, b := tr.begin(time.Time{}), tr.begin(time.Time{})
	tr.add(a)
	tr.seal(a, 5)
	tr.seal(b, 9)
	tr.done(a, errors.New("boom"))
	if c, _, err := tr.state(); c != 0 || err == nil {
		t.Fatalf("state = %d, %v; want 0 and the failure", c, err)
	}
}
