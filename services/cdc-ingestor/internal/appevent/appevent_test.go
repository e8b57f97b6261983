package appevent

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
)

func newCodec(t testing.TB) *codec.Codec {
	c, err := codec.New()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var meta = Meta{Origin: events.OriginHTTP, DB: "app", At: time.Unix(100, 0).UTC(), IDParts: []string{"http", "app"}}

func TestDecode(t *testing.T) {
	c := newCodec(t)
	ev, err := Decode(c, []byte(`{"op":"update","content_id":"7","title":"Hi","tags":["go"],"body":"text","event_id":"req-1"}`), meta)
	if err != nil {
		t.Fatal(err)
	}
	if ev.ContentID != "7" || ev.Title != "Hi" || ev.Op != events.OpUpdate || ev.Body == nil || *ev.Body != "text" || ev.Source.Origin != events.OriginHTTP {
		t.Fatalf("event = %+v", ev)
	}
	if ev.EventID != events.ID("http", "app", "req-1") {
		t.Fatalf("event id %s is not derived from the idempotency key", ev.EventID)
	}
	again, _ := Decode(c, []byte(`{"op":"create","content_id":"8"}`), meta)
	twice, _ := Decode(c, []byte(`{"op":"create","content_id":"8"}`), meta)
	if again.EventID != twice.EventID || again.EventID == "" {
		t.Fatalf("ids of an identical resend differ: %s %s", again.EventID, twice.EventID)
	}
}

func TestDecodeRejects(t *testing.T) {
	c := newCodec(t)
	for name, tc := range map[string]struct{ body, want string }{
		"missing key":   {`{"op":"create","title":"x"}`, "content_id"},
		"empty key":     {`{"op":"create","content_id":""}`, "content_id"},
		"wrong type":    {`{"op":"create","content_id":"1","version":"three"}`, "version"},
		"unknown field": {`{"op":"create","content_id":"1","colour":"red"}`, "colour"},
		"bad op":        {`{"op":"explode","content_id":"1"}`, "explode"},
		"server field":  {`{"op":"create","content_id":"1","source":{}}`, "source"},
		"not an object": {`[1,2]`, "object"},
		"trailing data": {`{"op":"create","content_id":"1"} {}`, "after"},
		"truncate":      {`{"op":"truncate","content_id":"1"}`, "truncate"},
	} {
		_, err := Decode(c, []byte(tc.body), meta)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v; want ErrInvalid naming %q", name, err, tc.want)
		}
	}
}

// FuzzDecode: no bytes an app sends panic the decoder; what it accepts
// encodes with the codec.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"op":"create","content_id":"1"}`, `{"op":"update","content_id":"7","tags":["a"],"body":null,"attributes":{"a":"b"}}`,
		`{"content_id":1}`, `{`, `null`, `{"op":"create","content_id":"1","published_at":1700000000000000}`, `{"before":{"title":"x"},"op":"update","content_id":"2"}`} {
		f.Add([]byte(s))
	}
	c := newCodec(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := Decode(c, data, meta)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if _, err := c.EncodeEvent(t.Context(), "content.changes", ev); err != nil {
			t.Fatalf("accepted event does not encode: %v", err)
		}
	})
}
