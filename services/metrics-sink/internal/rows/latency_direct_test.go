package rows_test

import (
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/services/metrics-sink/internal/rows"
	"github.com/freshet/freshet/services/metrics-sink/internal/sinktest"
)

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
	c := newCodec(t)
	for i, ev := range latencySamples() {
		took := sameRows(t, c, rows.Latency, encode(t, c, &ev))
		if want := len(ev.Labels) <= 16; took != want {
			t.Errorf("sample %d: direct path %v, want %v", i, took, want)
		}
	}
}

// FuzzAddLatencyValue: whatever the value, AddLatencyValue either adds
// nothing and says so, or adds exactly the row the codec and Add give.
func FuzzAddLatencyValue(f *testing.F) {
	var seeds []events.Event
	for _, ev := range latencySamples() {
		seeds = append(seeds, &ev)
	}
	fuzzDirect(f, rows.Latency, seeds)
}
