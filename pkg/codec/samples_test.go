package codec

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/freshet/freshet/pkg/events"
)

var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)

func ptr[T any](v T) *T { return &v }

func sampleSource() events.Source {
	return events.Source{
		Origin: events.OriginReplication, DB: "cms", Table: "public.articles",
		LSN: 0x16B3748, CommitLSN: 0x16B37A0, TxID: 771, Seq: 2, CommitTime: t0,
	}
}

func sampleTrace() events.Trace {
	return events.Trace{
		CommittedAt: t0, ProducedAt: t0.Add(3 * time.Millisecond),
		Stages: []events.Stage{
			{Name: "cdc-ingestor.decoded", At: t0.Add(time.Millisecond)},
			{Name: "cdc-ingestor.acked", At: t0.Add(4 * time.Millisecond)},
		},
	}
}

// samples returns every event type, fully populated (every union non-null)
// and minimal (every optional field at its zero value), keyed by a name.
func samples() map[string]events.Event {
	src, tr := sampleSource(), sampleTrace()
	change := events.ContentChange{
		EventID: events.ChangeID("cms", "public.articles", 0x16B3748, "42"),
		Source:  src, Trace: tr, Op: events.OpUpdate, ContentID: "42", Kind: "article",
		Title: "Rain, then sun", Summary: "The weekend forecast.", Body: ptr("<p>Rain first.</p>"),
		Tags: []string{"weather", "paris"}, Section: "news", Locale: "fr-FR",
		Authors: []string{"7"}, Regions: []string{"FR"}, URLPath: "/articles/42-rain-then-sun",
		SurrogateKeys: []string{"front-page"}, Version: 9, PublishedAt: t0.Add(-time.Hour),
		Broadcast: true, Channels: []string{"breaking"},
		Attributes: map[string]string{"priority": "2", "paywall": "f"},
		Before: &events.ContentBefore{
			Kind: "article", Title: "Rain", Tags: []string{"weather"}, Section: "news", Locale: "fr-FR",
			URLPath: "/articles/42-rain", SurrogateKeys: []string{"front-page"}, Version: 8,
			Attributes: map[string]string{"priority": "1"},
		},
		MissingFields: []string{"body"},
	}
	profile := events.UserProfile{
		EventID: events.ChangeID("cms", "public.user_profiles", 99, "u-1"), Source: src, Trace: tr,
		UserID: "u-1", Locale: "fr-FR", Region: "FR",
		Interests: []events.Interest{{Tag: "weather", Weight: 0.8}, {Tag: "sport", Weight: -0.5}},
		Follows:   []string{"author:7", "section:news"}, Segments: []string{"subscriber"},
		UpdatedAt: t0, Attributes: map[string]string{"plan": "gold"}, MissingFields: []string{"attributes"},
	}
	delivery := events.Delivery{
		EventID: events.ID(change.EventID, "user", "u-1"), ChangeEventID: change.EventID,
		Source: src, Trace: tr, Op: events.OpUpdate, UserID: "u-1", Content: change.Projection(),
		Score: 1.75, Reasons: []events.Reason{{Rule: "interest", Match: "tag:weather", Score: 0.8}, {Rule: "follow", Match: "author:7", Score: 0.95}},
		Deadline: t0.Add(time.Hour),
	}
	purge := events.PurgeAudit{
		EventID: events.ID("varnish-1", change.EventID), Source: src, Trace: tr, PurgeID: "p-123",
		Target: "varnish-1", Provider: "varnish", ChangeEventIDs: []string{change.EventID},
		Keys: []string{"content:42", "tag:weather"}, URLs: []string{"/articles/42-rain"}, Soft: true,
		Attempts: 3, Outcome: events.OutcomeFailed, StatusCode: 503, Error: "503 Service Unavailable",
		StartedAt: t0.Add(5 * time.Millisecond), FinishedAt: t0.Add(40 * time.Millisecond),
		LatencyFromCommit: 40 * time.Millisecond, Part: 2, Parts: 3,
	}
	beacon := events.RumBeacon{
		EventID: events.ID("s-1", "3"), Source: &events.Source{Origin: events.OriginBrowser, DB: "site", CommitTime: t0},
		Trace: &events.Trace{CommittedAt: t0, ProducedAt: t0}, ReceivedAt: t0, ClientTime: t0.Add(-2 * time.Second),
		SessionID: "s-1", UserHash: "9f86d081884c7d65", Route: "/articles/:id", DeviceClass: events.DeviceMobile,
		ConnectionClass: "4g", Region: "FR",
		Metrics: []events.WebVital{
			{Name: events.VitalLCP, Value: 1830.5, Delta: 1830.5, Rating: events.RatingGood, NavigationType: events.NavNavigate, ID: "v4-1"},
			{Name: events.VitalCLS, Value: 0.12, Delta: 0.02, Rating: events.RatingNeedsImprovement, NavigationType: events.NavBackForwardCache, ID: "v4-2"},
		},
		SSELags: []events.SSELag{{EventID: delivery.EventID, LagMS: 41.25}},
	}
	sample := events.LatencySample{
		EventID: events.ID(change.EventID, "cdc-ingestor", "commit_to_ack"), Source: &src, Trace: &tr,
		SubjectEventID: change.EventID, Service: "cdc-ingestor", Instance: "cdc-0", Stage: "commit_to_ack",
		Duration: 4200 * time.Microsecond, At: t0.Add(4 * time.Millisecond), Labels: map[string]string{"topic": "content.changes"},
	}
	minimal := events.Source{Origin: events.OriginHTTP, DB: "app", CommitTime: t0}
	minTrace := events.Trace{CommittedAt: t0, ProducedAt: t0}
	return map[string]events.Event{
		"ContentChange/full":    change,
		"ContentChange/minimal": events.ContentChange{EventID: "e1", Source: minimal, Trace: minTrace, Op: events.OpDelete, ContentID: "42"},
		"UserProfile/full":      profile,
		"UserProfile/minimal":   events.UserProfile{EventID: "e2", Source: minimal, Trace: minTrace, UserID: "u-2", Deleted: true, UpdatedAt: t0},
		"Delivery/full":         delivery,
		"Delivery/minimal":      events.Delivery{EventID: "e3", ChangeEventID: "e1", Source: minimal, Trace: minTrace, Op: events.OpCreate, Channel: "breaking", Content: events.ContentProjection{ID: "42"}},
		"PurgeAudit/full":       purge,
		"PurgeAudit/minimal":    events.PurgeAudit{EventID: "e4", Source: minimal, Trace: minTrace, Target: "cf", Provider: "cloudflare", Attempts: 1, Outcome: events.OutcomeAcked, StartedAt: t0, FinishedAt: t0, Part: 1, Parts: 1},
		"RumBeacon/full":        beacon,
		"RumBeacon/minimal":     events.RumBeacon{EventID: "e5", ReceivedAt: t0, SessionID: "s-2", DeviceClass: events.DeviceUnknown},
		"LatencySample/full":    sample,
		"LatencySample/minimal": events.LatencySample{EventID: "e6", SubjectEventID: "e1", Service: "invalidator", Stage: "purge", At: t0},
	}
}

// sortedKeys returns the keys of samples in a stable order.
func sortedKeys(m map[string]events.Event) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// dump renders a native value deterministically (map keys sorted, floats
// by their bits, so NaN equals itself), for comparing values.
func dump(v any) string {
	var b strings.Builder
	dumpTo(&b, v)
	return b.String()
}

func dumpTo(b *strings.Builder, v any) {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for _, k := range keys {
			fmt.Fprintf(b, "%q:", k)
			dumpTo(b, t[k])
			b.WriteByte(',')
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for _, e := range t {
			dumpTo(b, e)
			b.WriteByte(',')
		}
		b.WriteByte(']')
	case float64:
		fmt.Fprintf(b, "f64:%x", math.Float64bits(t))
	case float32:
		fmt.Fprintf(b, "f32:%x", math.Float32bits(t))
	case time.Time:
		fmt.Fprintf(b, "time:%d.%09d", t.Unix(), t.Nanosecond())
	default:
		fmt.Fprintf(b, "%T:%#v", v, v)
	}
}
