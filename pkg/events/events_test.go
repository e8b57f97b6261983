package events

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestID(t *testing.T) {
	cases := []struct {
		name string
		a, b []string
		same bool
	}{
		{"same parts, same id", []string{"cms", "public.articles", "42"}, []string{"cms", "public.articles", "42"}, true},
		{"part boundaries matter", []string{"ab", "c"}, []string{"a", "bc"}, false},
		{"order matters", []string{"a", "b"}, []string{"b", "a"}, false},
		{"empty part is a part", []string{"a"}, []string{"a", ""}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := ID(tc.a...), ID(tc.b...)
			if len(a) != 32 || strings.Trim(a, "0123456789abcdef") != "" {
				t.Fatalf("ID = %q, want 32 lowercase hex digits", a)
			}
			if (a == b) != tc.same {
				t.Errorf("ID(%q) = %s, ID(%q) = %s, same = %v, want %v", tc.a, a, tc.b, b, a == b, tc.same)
			}
		})
	}
	if got, want := ChangeID("cms", "public.articles", 23803720, "42"), ID("cms", "public.articles", "23803720", "42"); got != want {
		t.Errorf("ChangeID = %s, want %s", got, want)
	}
}

func TestTraceCloneAndMark(t *testing.T) {
	t0 := time.Unix(100, 0).UTC()
	in := Trace{CommittedAt: t0, Stages: make([]Stage, 1, 4)}
	out := in.Clone()
	out.Mark("personalizer.scored", t0.Add(time.Second))
	in.Mark("other", t0)
	if len(out.Stages) != 2 || out.Stages[1].Name != "personalizer.scored" {
		t.Errorf("out.Stages = %v", out.Stages)
	}
	if in.Stages[1].Name != "other" {
		t.Errorf("appending to the clone changed the original: %v", in.Stages)
	}
}

// TestNativeRoundTrip converts typed values to native and back, with no
// codec in between (pkg/codec tests the wire round trip).
func TestNativeRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 123456000, time.UTC)
	src := Source{Origin: OriginSnapshot, DB: "cms", Table: "public.articles", LSN: 1 << 63, CommitLSN: 5, TxID: 9, Seq: 1, CommitTime: t0}
	tr := Trace{CommittedAt: t0, ProducedAt: t0, Stages: []Stage{{Name: "a", At: t0}}}
	body := ""
	cases := []Event{
		&ContentChange{EventID: "e", Source: src, Trace: tr, Op: OpCreate, ContentID: "1", Body: &body, Tags: []string{"x"},
			Attributes: map[string]string{"k": "v"}, Before: &ContentBefore{Title: "t", Tags: []string{"y"}}, PublishedAt: t0},
		&UserProfile{EventID: "e", Source: src, Trace: tr, UserID: "u", Interests: []Interest{{Tag: "x", Weight: 1}}, UpdatedAt: t0},
		&Delivery{EventID: "e", Source: src, Trace: tr, Op: OpDelete, UserID: "u", Content: ContentProjection{ID: "1", Tags: []string{"x"}},
			Reasons: []Reason{{Rule: "follow", Match: "author:1", Score: 1}}, Deadline: t0},
		&PurgeAudit{EventID: "e", Source: src, Trace: tr, Target: "v", Provider: "varnish", Attempts: 2, Outcome: OutcomeAcked,
			Error: "boom", StartedAt: t0, FinishedAt: t0, LatencyFromCommit: 1500 * time.Microsecond, Part: 2, Parts: 3},
		&RumBeacon{EventID: "e", Source: &src, Trace: &tr, ReceivedAt: t0, ClientTime: t0, SessionID: "s", DeviceClass: DeviceDesktop,
			Metrics: []WebVital{{Name: VitalINP, Value: 80, Rating: RatingGood, NavigationType: NavReload}}, SSELags: []SSELag{{EventID: "d", LagMS: 3}}},
		&LatencySample{EventID: "e", SubjectEventID: "s", Service: "x", Stage: "y", Duration: time.Millisecond, At: t0, Labels: map[string]string{"a": "b"}},
	}
	for _, ev := range cases {
		t.Run(ev.Schema(), func(t *testing.T) {
			got, err := FromNative(ev.Schema(), ev.Native())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, ev) {
				t.Errorf("got  %#v\nwant %#v", got, ev)
			}
		})
	}
}

// A PurgeAudit whose Part and Parts were not set is a batch's only record:
// its native form says part 1 of 1, as the schema's defaults do.
func TestPurgeAuditPartDefaults(t *testing.T) {
	m := PurgeAudit{Outcome: OutcomeAcked}.Native()
	if m["part"] != int32(1) || m["parts"] != int32(1) {
		t.Errorf("part, parts = %#v, %#v; want int32 1, 1", m["part"], m["parts"])
	}
	m = PurgeAudit{Part: 3, Parts: 4}.Native()
	if m["part"] != int32(3) || m["parts"] != int32(4) {
		t.Errorf("part, parts = %#v, %#v; want int32 3, 4", m["part"], m["parts"])
	}
}

func TestFromNativeErrors(t *testing.T) {
	valid := func() map[string]any {
		return Delivery{EventID: "e", Op: OpCreate, Content: ContentProjection{ID: "1"}}.Native()
	}
	cases := []struct {
		name   string
		schema string
		edit   func(m map[string]any)
		want   string
	}{
		{"unknown schema", "dev.freshet.events.Nope", func(map[string]any) {}, "no type for schema"},
		{"missing field", DeliverySchema, func(m map[string]any) { delete(m, "score") }, "Delivery.score: missing"},
		{"wrong type", DeliverySchema, func(m map[string]any) { m["event_id"] = 7 }, "Delivery.event_id: int is not a string"},
		{"wrong nested type", DeliverySchema, func(m map[string]any) { m["source"].(map[string]any)["lsn"] = "x" }, "Delivery.source.lsn: string is not an integer"},
		{"bad array item", DeliverySchema, func(m map[string]any) { m["reasons"] = []any{"x"} }, "Delivery.reasons: item 0: string is not a record"},
		{"bad timestamp", DeliverySchema, func(m map[string]any) { m["deadline"] = map[string]any{"long.timestamp-micros": "soon"} }, "Delivery.deadline: string is not a timestamp"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := valid()
			tc.edit(m)
			_, err := FromNative(tc.schema, m)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestFromNativeAcceptsBareUnionValues(t *testing.T) {
	t0 := time.Unix(1, 0).UTC()
	m := ContentChange{EventID: "e", Op: OpUpdate}.Native()
	m["body"] = "plain"
	m["published_at"] = t0
	c, err := ContentChangeFromNative(m)
	if err != nil {
		t.Fatal(err)
	}
	if c.Body == nil || *c.Body != "plain" || !c.PublishedAt.Equal(t0) {
		t.Errorf("Body = %v, PublishedAt = %v", c.Body, c.PublishedAt)
	}
}
