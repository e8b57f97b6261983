package rows_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/services/metrics-sink/internal/rows"
	"github.com/freshet/freshet/services/metrics-sink/internal/sinktest"
)

// rumBeacons are beacons in every shape the direct path reads, and some
// it leaves to the codec.
func rumBeacons() []events.RumBeacon {
	at := sinktest.Base
	vitals := func(n int) []events.WebVital {
		out := make([]events.WebVital, n)
		for i := range out {
			out[i] = events.WebVital{Name: events.VitalCLS, Value: float64(i) / 10, Delta: 1, Rating: events.RatingPoor, NavigationType: events.NavRestore, ID: "v"}
		}
		return out
	}
	lags := func(n int) []events.SSELag {
		out := make([]events.SSELag, n)
		for i := range out {
			out[i] = events.SSELag{EventID: strings.Repeat("e", i), LagMS: float64(i)}
		}
		return out
	}
	var script []events.RumBeacon
	for _, ev := range sinktest.Script(2) {
		if b, ok := ev.(events.RumBeacon); ok {
			script = append(script, b)
		}
	}
	return append(script,
		events.RumBeacon{EventID: "b1", ReceivedAt: at, SessionID: "s", UserHash: strings.Repeat("ab", 32), Route: "/news/{slug}",
			DeviceClass: events.DeviceTablet, ConnectionClass: "4g", Region: "eu",
			Metrics: []events.WebVital{
				{Name: events.VitalLCP, Value: 1800, Rating: events.RatingGood, NavigationType: events.NavNavigate, ID: "v1"},
				{Name: events.VitalINP, Value: 120, Rating: events.RatingNeedsImprovement, ID: "v2"},
				{Name: events.VitalFCP, Value: math.Inf(1), Rating: events.RatingGood, NavigationType: events.NavBackForwardCache},
			},
			SSELags: []events.SSELag{{EventID: "e1", LagMS: 40}, {EventID: "e2", LagMS: -55.5}}},
		events.RumBeacon{EventID: "b2", Source: &events.Source{Origin: events.OriginBrowser, CommitTime: at},
			Trace:      &events.Trace{CommittedAt: at, ProducedAt: at, Stages: []events.Stage{{Name: "a", At: at}}},
			ReceivedAt: at.Add(1500 * time.Microsecond), ClientTime: at, UserHash: "user-42", Region: "10.1.2.3"},
		events.RumBeacon{EventID: "b3", UserHash: strings.Repeat("AB", 32), Region: "[2001:db8::1]:80", ReceivedAt: time.Unix(-5, 300)},
		events.RumBeacon{EventID: "b4", Metrics: vitals(16), SSELags: lags(64)},
		events.RumBeacon{EventID: "b5", Metrics: vitals(17)},
		events.RumBeacon{EventID: "b6", SSELags: lags(65)},
	)
}

// TestAddBeaconValueTakesBeacons: the beacons the gateway writes take the
// direct path (else it would be dead code), and give the rows Add gives.
func TestAddBeaconValueTakesBeacons(t *testing.T) {
	c := newCodec(t)
	for i, ev := range rumBeacons() {
		took := sameRows(t, c, rows.Beacons, encode(t, c, &ev))
		if want := len(ev.Metrics) <= 16 && len(ev.SSELags) <= 64; took != want {
			t.Errorf("beacon %d (%s): direct path %v, want %v", i, ev.EventID, took, want)
		}
	}
}

// FuzzAddBeaconValue: whatever the value, AddBeaconValue either adds
// nothing and says so, or adds exactly the row the codec and Add give.
func FuzzAddBeaconValue(f *testing.F) {
	var seeds []events.Event
	for _, ev := range rumBeacons() {
		seeds = append(seeds, &ev)
	}
	fuzzDirect(f, rows.Beacons, seeds)
}
