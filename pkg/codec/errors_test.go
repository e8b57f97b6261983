package codec

import (
	"context"
	"encoding/binary"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/freshet/freshet/pkg/codec/codectest"
	"github.com/freshet/freshet/pkg/events"
)

func TestDecodeErrors(t *testing.T) {
	ctx := context.Background()
	c := newCodec(t)
	valid, err := c.EncodeEvent(ctx, "content.changes", samples()["ContentChange/full"])
	if err != nil {
		t.Fatal(err)
	}
	fp := binary.LittleEndian.Uint64(valid[2:10])
	soe := func(fp uint64, body ...byte) []byte {
		return append(binary.LittleEndian.AppendUint64([]byte{0xC3, 0x01}, fp), body...)
	}
	// A ContentChange body whose first field, event_id, claims 2^40 bytes.
	huge := soe(fp, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40)
	// A LatencySample whose labels map claims a billion entries.
	ls, _ := c.Schema(events.LatencySampleSchema)
	bigMap := soe(ls.Fingerprint,
		0x02, 'e', // event_id
		0x00, 0x00, // source, trace: null
		0x02, 's', 0x02, 's', 0x00, 0x02, 's', // subject_event_id, service, instance, stage
		0x02, 0x02, // duration_us, at
		0x80, 0xa8, 0xd6, 0xb9, 0x07) // labels: block of 10^9 entries

	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"unknown first byte", []byte{0x42, 1, 2, 3}, ErrBadMagic},
		{"json", []byte(`{"event_id":"x"}`), ErrBadMagic},
		{"single-object, wrong second byte", []byte{0xC3, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0}, ErrBadMagic},
		{"single-object header cut short", valid[:6], ErrTruncated},
		{"unknown fingerprint", soe(fp^1, valid[10:]...), ErrUnknownSchema},
		{"body cut short", valid[:len(valid)-1], ErrTruncated},
		{"header only", valid[:10], ErrTruncated},
		{"bytes after the value", append(append([]byte(nil), valid...), 0), ErrMalformed},
		{"string longer than the input", huge, ErrTruncated},
		{"map count larger than the input", bigMap, ErrTruncated},
		{"varint longer than 10 bytes", soe(fp, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), ErrMalformed},
		{"confluent header cut short", []byte{0, 0, 1}, ErrTruncated},
		{"confluent without registry", []byte{0, 0, 0, 0, 1, 2}, ErrNoRegistry},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Decode(ctx, tc.data)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Op != "decode" {
				t.Fatalf("err %T is not a decode *Error", err)
			}
			if !IsDataError(err) {
				t.Errorf("IsDataError(%v) = false", err)
			}
		})
	}

	t.Run("error names schema and fingerprint", func(t *testing.T) {
		_, err := c.Decode(ctx, valid[:len(valid)-1])
		if msg := err.Error(); !strings.Contains(msg, events.ContentChangeSchema) || !strings.Contains(msg, "fingerprint") {
			t.Errorf("error %q does not name the schema and fingerprint", msg)
		}
	})
}

func TestRegistryErrors(t *testing.T) {
	ctx := context.Background()
	reg := codectest.NewRegistry()
	defer reg.Close()
	c := newCodec(t, WithRegistry(reg.URL()))

	t.Run("unknown id is a data error, remembered", func(t *testing.T) {
		data := []byte{0, 0, 0, 0x30, 0x39, 2, 'x'}
		for range 3 {
			_, err := c.Decode(ctx, data)
			if !errors.Is(err, ErrUnknownSchema) || !IsDataError(err) || IsTransient(err) {
				t.Fatalf("err = %v, want ErrUnknownSchema", err)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.SchemaID != 12345 {
				t.Fatalf("err = %#v, want SchemaID 12345", err)
			}
		}
		if n := reg.Requests("GET /schemas/ids/{id}"); n != 1 {
			t.Errorf("3 decodes of an unknown id asked the registry %d times, want 1", n)
		}
	})

	t.Run("id of a schema with no current version", func(t *testing.T) {
		id := reg.Register("other-value", `{"type":"record","name":"Other","fields":[{"name":"a","type":"int"}]}`)
		data := binary.BigEndian.AppendUint32([]byte{0}, uint32(id))
		_, err := c.Decode(ctx, append(data, 2))
		if !errors.Is(err, ErrUnknownSchema) {
			t.Fatalf("err = %v, want ErrUnknownSchema", err)
		}
	})

	t.Run("registry down is transient", func(t *testing.T) {
		down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, `{"error_code":50001,"message":"store error"}`, http.StatusInternalServerError)
		}))
		defer down.Close()
		c := newCodec(t, WithRegistry(down.URL))
		_, err := c.Decode(ctx, []byte{0, 0, 0, 0, 1, 2})
		if !errors.Is(err, ErrRegistry) || IsDataError(err) || !IsTransient(err) {
			t.Fatalf("decode: err = %v, want a transient ErrRegistry", err)
		}
		_, err = c.EncodeEvent(ctx, "content.changes", samples()["ContentChange/minimal"])
		if !errors.Is(err, ErrRegistry) {
			t.Fatalf("encode: err = %v, want ErrRegistry", err)
		}
	})
}

func TestEncodeErrors(t *testing.T) {
	ctx := context.Background()
	c := newCodec(t)
	cases := []struct {
		name   string
		schema string
		native any
		want   error
	}{
		{"unknown schema", "dev.freshet.events.Nope", map[string]any{}, ErrUnknownSchema},
		{"not a record", events.DeliverySchema, "hello", ErrEncode},
		{"required field missing", events.LatencySampleSchema, map[string]any{"event_id": "x"}, ErrEncode},
		{"wrong type", events.ContentChangeSchema, func() map[string]any {
			m := samples()["ContentChange/full"].Native()
			m["version"] = "nine"
			return m
		}(), ErrEncode},
		{"enum symbol not in the schema", events.ContentChangeSchema, func() map[string]any {
			m := samples()["ContentChange/full"].Native()
			m["op"] = "upsert"
			return m
		}(), ErrEncode},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.AppendEncode(ctx, []byte("keep"), "", tc.schema, tc.native)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if string(out) != "keep" {
				t.Errorf("dst = %q after a failed encode, want it unchanged", out)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	cases := []struct {
		name string
		opts []Option
		want string
	}{
		{"writer schema that is not JSON", []Option{WithWriterSchemas("{")}, "writer schema"},
		{"writer schema with no current version", []Option{WithWriterSchemas(`{"type":"record","name":"dev.freshet.events.Gone","fields":[]}`)}, "no current version"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
