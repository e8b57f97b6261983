package rows_test

import (
	"context"
	"net/netip"
	"regexp"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/services/metrics-sink/internal/rows"
	"github.com/freshet/freshet/services/metrics-sink/internal/sinktest"
)

// FuzzAdd: no record value makes decoding and Add panic; an event Add
// accepts becomes exactly one row of its table, under its event id, and
// an event of another type is refused with ErrWrongEvent.
func FuzzAdd(f *testing.F) {
	c, err := codec.New()
	if err != nil {
		f.Fatal(err)
	}
	for _, ev := range sinktest.Script(2) {
		b, err := c.EncodeEvent(context.Background(), "t", ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("not avro"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, _, err := c.DecodeTyped(context.Background(), data)
		if err != nil {
			return
		}
		accepted := 0
		for _, k := range rows.Kinds {
			s := rows.NewSet()
			err := s.Add(k, ev, 1, 42)
			if k == rows.DLQ {
				if err == nil {
					t.Fatal("the DLQ input took an event")
				}
				continue
			}
			if err != nil {
				if s.Len() != 0 {
					t.Fatalf("%s: refused, but %d rows held", k, s.Len())
				}
				continue
			}
			accepted++
			tb := s.Table(k)
			if tb.Len() != 1 || s.Len() != 1 {
				t.Fatalf("%s: %d rows", k, tb.Len())
			}
			if p, o := tb.Position(0); p != 1 || o != 42 {
				t.Fatalf("%s: position %d@%d", k, p, o)
			}
			if id := tb.Columns()[0].Values().([]string)[0]; id != ev.ID() {
				t.Fatalf("%s: event_id %q, want %q", k, id, ev.ID())
			}
		}
		if want := 0; ev.Schema() == events.LatencySampleSchema || ev.Schema() == events.PurgeAuditSchema ||
			ev.Schema() == events.RumBeaconSchema || ev.Schema() == events.DeliverySchema {
			want = 1
			if accepted != want {
				t.Fatalf("%s taken by %d inputs", ev.Schema(), accepted)
			}
		}
	})
}

var ipv4 = regexp.MustCompile(`\b(?:\d{1,3}\.){3}\d{1,3}\b`)

// FuzzAddDLQ: any headers make one row whose texts are valid UTF-8,
// bounded, and hold no IPv4 address.
func FuzzAddDLQ(f *testing.F) {
	f.Add("content.changes", "personalizer/decode", "dial tcp 10.1.2.3:9092: refused", "2026-12-01T10:00:00Z")
	f.Add("", "", "\xff\xfe [2001:db8::1]:80", "garbage")
	f.Fuzz(func(t *testing.T, topic, component, errText, at string) {
		s := rows.NewSet()
		s.AddDLQ("x.dlq", map[string]string{"freshet.dlq.topic": topic, "freshet.dlq.component": component,
			"freshet.dlq.error": errText, "freshet.dlq.time": at}, time.Unix(0, 0), 0, 7)
		tb := s.Table(rows.DLQ)
		if tb.Len() != 1 || tb.Topic(0) != "x.dlq" {
			t.Fatalf("%d rows, topic %q", tb.Len(), tb.Topic(0))
		}
		for _, c := range tb.Columns() {
			v, ok := c.Values().([]string)
			if !ok {
				continue
			}
			if !utf8.ValidString(v[0]) || len(v[0]) > rows.MaxError {
				t.Fatalf("%s: %q", c.Name(), v[0])
			}
			for _, m := range ipv4.FindAllString(v[0], -1) {
				if _, err := netip.ParseAddr(m); err == nil {
					t.Fatalf("%s keeps the address %s: %q", c.Name(), m, v[0])
				}
			}
		}
	})
}

// FuzzIsIP: the quick check before parsing never turns away an address.
func FuzzIsIP(f *testing.F) {
	for _, s := range []string{"10.1.2.3", "10.1.2.3:80", "[2001:db8::1]:80", "fe80::1%eth0", "::ffff:1.2.3.4", "public.content", "fastly", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, e1 := netip.ParseAddr(s)
		_, e2 := netip.ParseAddrPort(s)
		if want := e1 == nil || e2 == nil; rows.IsIP(s) != want {
			t.Fatalf("isIP(%q) = %v, netip says %v", s, !want, want)
		}
	})
}
