package rows_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/services/metrics-sink/internal/rows"
	"github.com/freshet/freshet/services/metrics-sink/internal/sinktest"
)

// TestDirectLatencyMatchesSchema fails when schemas/avro's LatencySample
// is no longer the version AddLatencyValue reads: update latencyValue.read
// for the new version, then latencyFingerprint.
func TestDirectLatencyMatchesSchema(t *testing.T) {
	c, err := codec.New()
	if err != nil {
		t.Fatal(err)
	}
	if !rows.DirectLatency(c) {
		s, _ := c.Schema(events.LatencySampleSchema)
		t.Fatalf("LatencySample's fingerprint is now %#x: update rows/latency_direct.go", s.Fingerprint)
	}
}

// latencySamples are samples in every shape the direct path reads, and
// some it leaves to the codec.
func latencySamples() []events.LatencySample {
	at := sinktest.Base
	trace := &events.Trace{CommittedAt: at.Add(-time.Second), ProducedAt: at, Stages: []events.Stage{{Name: "a", At: at}, {Name: "b", At: at}}}
	many := map[string]string{}
	for i := range 20 {
		many[strings.Repeat("k", i+1)] = "v"
	}
	return []events.LatencySample{
		sinktest.LatencySample(7),
		{EventID: "e1", Trace: trace, Service: "invalidator", Stage: "commit_to_purged", Duration: -time.Millisecond, At: at.Add(1500 * time.Microsecond),
			Labels: map[string]string{"target": "varnish", "provider": "fastly", "route": "10.1.2.3", "user": "u-1", "region": "[2001:db8::1]:80", "kind": ""}},
		{EventID: "e2", Source: &events.Source{Origin: events.OriginOutbox, CommitTime: at.Add(-time.Minute)}, Trace: trace, At: at},
		{EventID: "e3"},
		{EventID: "e4", At: time.Unix(-5, 300), Duration: time.Duration(1<<62 + 7)},
		{EventID: "e5", Labels: many},
	}
}

// TestAddLatencyValueTakesSamples: the samples services write take the
// direct path (else it would be dead code), and give the rows Add gives.
func TestAddLatencyValueTakesSamples(t *testing.T) {
	c, err := codec.New()
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range latencySamples() {
		v, err := c.EncodeEvent(context.Background(), "t", &ev)
		if err != nil {
			t.Fatal(err)
		}
		took := sameRows(t, c, v)
		if want := len(ev.Labels) <= 16; took != want {
			t.Errorf("sample %d: direct path %v, want %v", i, took, want)
		}
	}
}

// FuzzAddLatencyValue: whatever the value, AddLatencyValue either adds
// nothing and says so, or adds exactly the row the codec and Add give.
func FuzzAddLatencyValue(f *testing.F) {
	c, err := codec.New()
	if err != nil {
		f.Fatal(err)
	}
	for _, ev := range latencySamples() {
		v, err := c.EncodeEvent(context.Background(), "t", &ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v)
	}
	f.Add([]byte("not avro"))
	f.Fuzz(func(t *testing.T, data []byte) { sameRows(t, c, data) })
}

// sameRows checks AddLatencyValue against DecodeTyped and Add on value,
// and reports whether the direct path took it.
func sameRows(t *testing.T, c *codec.Codec, value []byte) bool {
	t.Helper()
	direct, slow := rows.NewSet(), rows.NewSet()
	if !direct.AddLatencyValue(value, 2, 9) {
		if direct.Len() != 0 || direct.Minimized != 0 {
			t.Fatalf("refused, but %d rows and %d minimized", direct.Len(), direct.Minimized)
		}
		return false
	}
	ev, _, err := c.DecodeTyped(context.Background(), value)
	if err != nil {
		t.Fatalf("direct path took a value the codec refuses: %v", err)
	}
	if err := slow.Add(rows.Latency, ev, 2, 9); err != nil {
		t.Fatalf("direct path took a value Add refuses: %v", err)
	}
	if direct.Len() != 1 || slow.Len() != 1 || direct.Minimized != slow.Minimized {
		t.Fatalf("rows %d and %d, minimized %d and %d", direct.Len(), slow.Len(), direct.Minimized, slow.Minimized)
	}
	dc, sc := direct.Table(rows.Latency).Columns(), slow.Table(rows.Latency).Columns()
	for i := range dc {
		a, b := dc[i].Values(), sc[i].Values()
		if ta, ok := a.([]time.Time); ok {
			tb := b.([]time.Time)
			if !ta[0].Equal(tb[0]) || ta[0].Location() != tb[0].Location() {
				t.Fatalf("%s: %v, Add gives %v", dc[i].Name(), ta[0], tb[0])
			}
			continue
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%s: %#v, Add gives %#v", dc[i].Name(), a, b)
		}
	}
	return true
}
