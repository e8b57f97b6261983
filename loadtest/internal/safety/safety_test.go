package safety

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

func TestCheckAddr(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:5432", true},
		{"127.3.2.1:80", true},
		{"[::1]:9092", true},
		{"localhost:8081", true},
		{"127.0.0.1", true},
		{"10.0.0.1:5432", false},
		{"192.168.1.5:80", false},
		{"[::ffff:8.8.8.8]:53", false},
		{"example.com:80", false},
		{"0.0.0.0:80", false},
		{"", false},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			err := CheckAddr(tc.addr)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckAddr(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrNotLoopback) {
				t.Fatalf("error %v is not ErrNotLoopback", err)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	if err := CheckURL("postgres://postgres@127.0.0.1:5432/freshet"); err != nil {
		t.Error(err)
	}
	for _, u := range []string{"http://93.184.216.34/", "postgres://db.example.com/x", "/relative"} {
		if err := CheckURL(u); !errors.Is(err, ErrNotLoopback) {
			t.Errorf("CheckURL(%q) = %v, want ErrNotLoopback", u, err)
		}
	}
}

// TestDialerRefusesRemote checks the refusal happens at connect time,
// before any packet leaves: the dial fails with ErrNotLoopback.
func TestDialerRefusesRemote(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := DialContext(ctx, "tcp", "192.0.2.1:80") // TEST-NET-1
	if !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("dial 192.0.2.1: %v, want ErrNotLoopback", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := DialContext(ctx, "tcp", l.Addr().String())
	if err != nil {
		t.Fatalf("dial loopback: %v", err)
	}
	c.Close()
}

func TestBoundValidate(t *testing.T) {
	for _, b := range []Bound{{}, {Duration: time.Minute}, {Count: 10}, {Duration: 3 * time.Hour, Count: 1}, {Duration: -1, Count: 1}} {
		if b.Validate() == nil {
			t.Errorf("Bound%+v accepted", b)
		}
	}
	if err := (Bound{Duration: time.Minute, Count: 1}).Validate(); err != nil {
		t.Error(err)
	}
}

// TestPacerStopsAtCount: a pacer far faster than the test hands out
// exactly its count, then 0, whatever the rate.
func TestPacerStopsAtCount(t *testing.T) {
	p := NewPacer(1e9, 1000, 100)
	var got int64
	for range 10000 {
		n := p.Take(context.Background())
		if n == 0 {
			break
		}
		if n > 100 {
			t.Fatalf("took %d, more than the burst", n)
		}
		got += n
	}
	if got != 1000 || p.Done() != 1000 {
		t.Fatalf("handed out %d (Done %d), want 1000", got, p.Done())
	}
	if n := p.Take(context.Background()); n != 0 {
		t.Fatalf("after the count: %d", n)
	}
}

// TestPacerStopsAtContext: a pacer whose next operation is far away
// returns 0 as soon as its context ends.
func TestPacerStopsAtContext(t *testing.T) {
	p := NewPacer(0.001, 10, 1) // the first operation is due after 1000 s
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if n := p.Take(ctx); n != 0 {
		t.Fatalf("Take after cancel = %d", n)
	}
}
