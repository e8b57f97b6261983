package wire

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
)

func base() events.Delivery {
	commit := time.Date(2026, 11, 25, 12, 0, 0, 123000, time.UTC)
	tr := events.Trace{CommittedAt: commit, ProducedAt: commit.Add(time.Millisecond)}
	tr.Mark("personalizer", commit.Add(2*time.Millisecond))
	return events.Delivery{
		ChangeEventID: "c0ffee",
		Source:        events.Source{Origin: events.OriginReplication, DB: "app", Table: "content", LSN: 77, CommitTime: commit},
		Trace:         tr,
		Op:            events.OpUpdate,
		Content:       events.ContentProjection{ID: "42", Title: "Go 2", Summary: "ß", URLPath: "/a/42", Locale: "en", Tags: []string{"go"}, Version: 3},
		Deadline:      commit.Add(15 * time.Minute),
	}
}

func TestTemplateMatchesCodec(t *testing.T) {
	c, err := codec.New()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		edit func(*events.Delivery)
	}{
		{"full", func(*events.Delivery) {}},
		{"no deadline", func(d *events.Delivery) { d.Deadline = time.Time{} }},
		{"empty projection", func(d *events.Delivery) { d.Content = events.ContentProjection{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := base()
			tc.edit(&b)
			tpl, err := NewTemplate(ctx, c, "content.deliveries", b)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range []struct {
				id, user string
				score    float64
				reasons  []events.Reason
			}{
				{events.ID("c0ffee", "user", "u1"), "u1", 3.5, []events.Reason{{Rule: "follow", Match: "author:7", Score: 2}, {Rule: "interest", Match: "go", Score: 1.5}}},
				{"", "", 0, nil},
				{"x", string(make([]byte, 300)), -1, []events.Reason{{Rule: "recency", Score: -0.25}}},
			} {
				got := tpl.Append(nil, d.id, d.user, d.score, d.reasons)
				want := b
				want.EventID, want.UserID, want.Score, want.Reasons = d.id, d.user, d.score, d.reasons
				wantBytes, err := c.EncodeEvent(ctx, "content.deliveries", want)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != string(wantBytes) {
					t.Fatalf("template bytes differ from the codec's for %q", d.user)
				}
				ev, _, err := c.DecodeEvent(ctx, got)
				if err != nil {
					t.Fatal(err)
				}
				if dec := ev.(*events.Delivery); dec.UserID != d.user || dec.Score != d.score || len(dec.Reasons) != len(d.reasons) {
					t.Errorf("decoded %+v", dec)
				}
			}
		})
	}
	if _, err := NewTemplate(ctx, c, "content.deliveries", events.Delivery{Channel: "breaking"}); err == nil {
		t.Error("a channel template was accepted")
	}
}

func TestProgress(t *testing.T) {
	p := Progress{0: 12, 3: 0, 11: 1 << 40}
	s := p.String()
	if s != "freshet.p1:0=12,3=0,11=1099511627776" {
		t.Errorf("String = %q", s)
	}
	got, err := ParseProgress(s)
	if err != nil || !reflect.DeepEqual(got, p) {
		t.Errorf("ParseProgress = %v, %v", got, err)
	}
	if got, err := ParseProgress(Progress{}.String()); err != nil || len(got) != 0 {
		t.Errorf("empty progress: %v, %v", got, err)
	}
	if _, err := ParseProgress("member-1234"); !errors.Is(err, ErrNotProgress) {
		t.Errorf("franz-go's member id metadata: %v", err)
	}
	for _, bad := range []string{"freshet.p1:1", "freshet.p1:-1=2", "freshet.p1:1=-2", "freshet.p1:1=2,1=3", "freshet.p1:a=1", "freshet.p1:1=2,", "freshet.p1:99999999999=1"} {
		if _, err := ParseProgress(bad); err == nil {
			t.Errorf("ParseProgress(%q) accepted", bad)
		}
	}
}

func FuzzParseProgress(f *testing.F) {
	for _, s := range []string{"freshet.p1:0=12,3=0", "freshet.p1:", "member", "freshet.p1:1=2,1=3", "freshet.p1:+1=+2", "freshet.p1:=,="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseProgress(s)
		if err != nil {
			return
		}
		back, err := ParseProgress(p.String())
		if err != nil || !reflect.DeepEqual(back, p) {
			t.Fatalf("round trip of %q: %v, %v", s, back, err)
		}
	})
}
