package codec

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/freshet/freshet/pkg/events"
)

// FuzzDecode feeds arbitrary bytes to Decode. It must never panic; what it
// decodes must convert to its typed event, and both the native and the typed
// value must encode again and decode to the same value.
func FuzzDecode(f *testing.F) {
	ctx := context.Background()
	v1 := newCodec(f, WithSchemas(schemaFS(f, withoutFields("regions", "before"))))
	v1Schema, err := v1.Schema(events.ContentChangeSchema)
	if err != nil {
		f.Fatal(err)
	}
	c := newCodec(f, WithWriterSchemas(v1Schema.JSON))

	all := samples()
	for _, name := range sortedKeys(all) {
		data, err := c.EncodeEvent(ctx, "", all[name])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		// The same body in the Confluent framing (no registry here).
		f.Add(append(binary.BigEndian.AppendUint32([]byte{0}, 1), data[soeHeaderLen:]...))
	}
	native := all["ContentChange/full"].Native()
	delete(native, "regions")
	delete(native, "before")
	old, err := v1.Encode(ctx, "", events.ContentChangeSchema, native)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(old)
	f.Add([]byte{})
	f.Add([]byte{0xC3, 0x01})

	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := c.Decode(ctx, data)
		if err != nil {
			if !IsDataError(err) {
				t.Fatalf("decode error that is not a data error: %v", err)
			}
			return
		}
		again, err := c.Encode(ctx, "", d.Schema, d.Native)
		if err != nil {
			t.Fatalf("decoded value does not encode: %v\n%s", err, dump(d.Native))
		}
		d2, err := c.Decode(ctx, again)
		if err != nil {
			t.Fatalf("re-encoded value does not decode: %v", err)
		}
		if dump(d2.Native) != dump(d.Native) {
			t.Fatalf("native round trip:\n got %s\nwant %s", dump(d2.Native), dump(d.Native))
		}

		ev, err := events.FromNative(d.Schema, d.Native)
		if err != nil {
			t.Fatalf("decoded value has no typed form: %v", err)
		}
		typed, err := c.EncodeEvent(ctx, "", ev)
		if err != nil {
			t.Fatalf("typed value does not encode: %v", err)
		}
		ev2, _, err := c.DecodeEvent(ctx, typed)
		if err != nil {
			t.Fatalf("typed value does not decode: %v", err)
		}
		if dump(ev2.Native()) != dump(ev.Native()) {
			t.Fatalf("typed round trip:\n got %s\nwant %s", dump(ev2.Native()), dump(ev.Native()))
		}
	})
}
