// Package safety keeps Freshet's load generator on this machine and within
// its bounds: every connection it opens goes through [Dialer] or
// [DialContext], which refuse any address outside 127.0.0.0/8 and ::1 at
// connect time (after name resolution, so a name that resolves elsewhere
// is refused too), and every scenario runs under a [Bound]: a deadline and
// a count it never exceeds.
//
// Everything here is safe for concurrent use.
package safety

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// ErrNotLoopback is returned for an address that is not on this machine.
var ErrNotLoopback = errors.New("not a loopback address: the load generator only sends to 127.0.0.0/8 and ::1")

// CheckAddr accepts host:port (or a bare host) whose host is a loopback IP
// literal or "localhost". Names other than localhost are refused rather
// than resolved: what a name resolves to can change.
func CheckAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Unmap().IsLoopback() {
		return fmt.Errorf("%s: %w", addr, ErrNotLoopback)
	}
	return nil
}

// CheckURL checks the host of a URL (http://, postgres://, ...).
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q: %w", raw, err)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: no host: %w", raw, ErrNotLoopback)
	}
	return CheckAddr(u.Host)
}

// control refuses, at connect time, a socket whose remote address is not
// loopback.
func control(network, address string, _ syscall.RawConn) error {
	return CheckAddr(address)
}

// Dialer returns a dialer that only connects to loopback addresses, from
// local (nil: any) source address.
func Dialer(local net.Addr, timeout time.Duration) *net.Dialer {
	return &net.Dialer{LocalAddr: local, Timeout: timeout, Control: control}
}

// DialContext connects like net.Dialer.DialContext, to loopback only.
func DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return Dialer(nil, 10*time.Second).DialContext(ctx, network, addr)
}

// HTTPClient returns an HTTP client that only reaches loopback addresses.
func HTTPClient(timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = DialContext
	tr.Proxy = nil
	tr.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: tr, Timeout: timeout}
}

// Bound is the most a scenario may do: it stops at Duration or after Count
// operations, whichever comes first. Zero fields are refused by Validate:
// a load test here is always bounded.
type Bound struct {
	Duration time.Duration
	Count    int64
}

// Validate refuses an unbounded or absurd bound.
func (b Bound) Validate() error {
	if b.Duration <= 0 || b.Duration > 2*time.Hour {
		return fmt.Errorf("bound: duration %s must be in (0, 2h]", b.Duration)
	}
	if b.Count <= 0 {
		return fmt.Errorf("bound: count %d must be positive", b.Count)
	}
	return nil
}

// Context returns ctx limited to the bound's duration.
func (b Bound) Context(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.Duration)
}

// Pacer hands out at most Count operations at rate per second until ctx
// ends or the count is spent. Take blocks until the next operation is due
// and returns how many operations to do now (more than one when the
// caller fell behind, at most burst), or 0 when the run is over.
type Pacer struct {
	rate  float64
	burst int64
	left  int64
	start time.Time
	done  int64
}

// NewPacer paces rate operations per second, at most count in all.
func NewPacer(rate float64, count int64, burst int64) *Pacer {
	return &Pacer{rate: rate, burst: max(burst, 1), left: count, start: time.Now()}
}

// Take waits for the next operations; 0 means stop.
func (p *Pacer) Take(ctx context.Context) int64 {
	if p.left <= 0 || ctx.Err() != nil {
		return 0
	}
	due := p.start.Add(time.Duration(float64(p.done+1) / p.rate * float64(time.Second)))
	if wait := time.Until(due); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0
		case <-t.C:
		}
	}
	// Everything due by now, within the burst and the count.
	n := int64(time.Since(p.start).Seconds()*p.rate) - p.done
	n = min(max(n, 1), p.burst, p.left)
	p.done += n
	p.left -= n
	return n
}

// Done is how many operations were handed out.
func (p *Pacer) Done() int64 { return p.done }
