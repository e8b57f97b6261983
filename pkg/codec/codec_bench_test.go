package codec

import (
	"context"
	"testing"

	"github.com/freshet/freshet/pkg/events"
)

// Run with: go test ./pkg/codec -run '^$' -bench . -benchtime 2s

func benchEncode(b *testing.B, ev events.Event, typed bool) {
	ctx := context.Background()
	c := newCodec(b)
	native := ev.Native()
	var buf []byte
	for b.Loop() {
		var err error
		if typed {
			buf, err = c.AppendEncodeEvent(ctx, buf[:0], "", ev)
		} else {
			buf, err = c.AppendEncode(ctx, buf[:0], "", ev.Schema(), native)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
}

func benchDecode(b *testing.B, ev events.Event, typed bool) {
	ctx := context.Background()
	c := newCodec(b)
	data, err := c.EncodeEvent(ctx, "", ev)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if typed {
			_, _, err = c.DecodeEvent(ctx, data)
		} else {
			_, err = c.Decode(ctx, data)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeContentChange(b *testing.B) {
	b.Run("native", func(b *testing.B) { benchEncode(b, samples()["ContentChange/full"], false) })
	b.Run("typed", func(b *testing.B) { benchEncode(b, samples()["ContentChange/full"], true) })
}

func BenchmarkDecodeContentChange(b *testing.B) {
	b.Run("native", func(b *testing.B) { benchDecode(b, samples()["ContentChange/full"], false) })
	b.Run("typed", func(b *testing.B) { benchDecode(b, samples()["ContentChange/full"], true) })
}

func BenchmarkEncodeDelivery(b *testing.B) {
	b.Run("native", func(b *testing.B) { benchEncode(b, samples()["Delivery/full"], false) })
	b.Run("typed", func(b *testing.B) { benchEncode(b, samples()["Delivery/full"], true) })
}

func BenchmarkDecodeDelivery(b *testing.B) {
	b.Run("native", func(b *testing.B) { benchDecode(b, samples()["Delivery/full"], false) })
	b.Run("typed", func(b *testing.B) { benchDecode(b, samples()["Delivery/full"], true) })
}

// BenchmarkDecodeResolved measures a value written with an older schema
// version, resolved into the current one.
func BenchmarkDecodeResolved(b *testing.B) {
	ctx := context.Background()
	v1 := newCodec(b, WithSchemas(schemaFS(b, withoutFields("regions", "before"))))
	v1Schema, err := v1.Schema(events.ContentChangeSchema)
	if err != nil {
		b.Fatal(err)
	}
	native := samples()["ContentChange/full"].Native()
	delete(native, "regions")
	delete(native, "before")
	data, err := v1.Encode(ctx, "", events.ContentChangeSchema, native)
	if err != nil {
		b.Fatal(err)
	}
	c := newCodec(b, WithWriterSchemas(v1Schema.JSON))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Decode(ctx, data); err != nil {
			b.Fatal(err)
		}
	}
}
