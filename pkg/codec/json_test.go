package codec

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/freshet/freshet/pkg/events"
)

func TestJSONRoundTrip(t *testing.T) {
	ctx := context.Background()
	c := newCodec(t)
	all := samples()
	for _, name := range sortedKeys(all) {
		ev := all[name]
		t.Run(name, func(t *testing.T) {
			text, err := c.EncodeJSON(ev.Schema(), ev.Native())
			if err != nil {
				t.Fatal(err)
			}
			native, err := c.DecodeJSON(ev.Schema(), text)
			if err != nil {
				t.Fatalf("%v\n%s", err, text)
			}
			data, err := c.Encode(ctx, "", ev.Schema(), native)
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := c.DecodeEvent(ctx, data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, asPointer(ev)) {
				t.Errorf("got  %#v\nwant %#v\njson %s", got, asPointer(ev), text)
			}
		})
	}
}

func TestDecodeJSONErrors(t *testing.T) {
	c := newCodec(t)
	const ok = `{"event_id":"e","subject_event_id":"s","service":"a","stage":"b","duration_us":3,"at":1700000000000000}`
	if _, err := c.DecodeJSON(events.LatencySampleSchema, []byte(ok)); err != nil {
		t.Fatalf("valid JSON with defaults left out: %v", err)
	}
	cases := []struct {
		name, schema, json string
		want               error
	}{
		{"unknown schema", "Nope", ok, ErrUnknownSchema},
		{"unknown field", events.LatencySampleSchema, `{"event_id":"e","bogus":1}`, ErrMalformed},
		{"missing required field", events.LatencySampleSchema, `{"event_id":"e"}`, ErrMalformed},
		{"wrong type", events.LatencySampleSchema, `{"event_id":7,"subject_event_id":"s","service":"a","stage":"b","duration_us":3,"at":1}`, ErrMalformed},
		{"not an object", events.LatencySampleSchema, `[1,2]`, ErrMalformed},
		{"trailing data", events.LatencySampleSchema, ok + `{}`, ErrMalformed},
		{"cut short", events.LatencySampleSchema, ok[:20], ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.DecodeJSON(tc.schema, []byte(tc.json))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzDecodeJSON feeds arbitrary JSON to DecodeJSON, as HTTP ingest will.
// It must never panic, and what it accepts must encode and decode.
func FuzzDecodeJSON(f *testing.F) {
	ctx := context.Background()
	c := newCodec(f)
	all := samples()
	for _, name := range sortedKeys(all) {
		text, err := c.EncodeJSON(all[name].Schema(), all[name].Native())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(all[name].Schema(), text)
	}
	f.Add(events.ContentChangeSchema, []byte(`{"before":{"tags":[1]}}`))
	f.Fuzz(func(t *testing.T, schema string, text []byte) {
		native, err := c.DecodeJSON(schema, text)
		if err != nil {
			if !IsDataError(err) {
				t.Fatalf("not a data error: %v", err)
			}
			return
		}
		data, err := c.Encode(ctx, "", schema, native)
		if err != nil {
			t.Fatalf("accepted JSON does not encode: %v", err)
		}
		if _, _, err := c.DecodeEvent(ctx, data); err != nil {
			t.Fatalf("accepted JSON does not decode: %v", err)
		}
	})
}
