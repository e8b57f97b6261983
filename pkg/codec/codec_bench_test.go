package codec

import (
	"context"
	"testing"

	"github.com/freshet/freshet/pkg/events"
)

// Run with: go test ./pkg/codec -run '^$' -bench . -benchmem
//
// The sub-benchmarks name the path measured: native is Encode or Decode of
// goavro's native form; typed is EncodeEvent or DecodeEvent (the direct
// path; DecodeEvent also builds Decoded.Native); typed-only is DecodeTyped
// (the direct path alone); typed-goavro is EncodeEvent or DecodeEvent with
// the direct path off, through ev.Native() or events.FromNative and goavro,
// as they were before the direct path.

// Paths, as sub-benchmark names.
const (
	pathNative      = "native"
	pathTyped       = "typed"
	pathTypedOnly   = "typed-only"
	pathTypedGoavro = "typed-goavro"
)

func benchCodec(b *testing.B, path string) *Codec {
	if path == pathTypedGoavro {
		return newCodec(b, withoutDirect())
	}
	return newCodec(b)
}

func benchEncode(b *testing.B, ev events.Event, path string) {
	ctx := context.Background()
	c := benchCodec(b, path)
	native := ev.Native()
	var buf []byte
	for b.Loop() {
		var err error
		if path == pathNative {
			buf, err = c.AppendEncode(ctx, buf[:0], "", ev.Schema(), native)
		} else {
			buf, err = c.AppendEncodeEvent(ctx, buf[:0], "", ev)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
}

func benchDecode(b *testing.B, ev events.Event, path string) {
	ctx := context.Background()
	c := benchCodec(b, path)
	data, err := c.EncodeEvent(ctx, "", ev)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		switch path {
		case pathNative:
			_, err = c.Decode(ctx, data)
		case pathTypedOnly:
			_, _, err = c.DecodeTyped(ctx, data)
		default:
			_, _, err = c.DecodeEvent(ctx, data)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// benchPaths runs bench for sample on each path.
func benchPaths(b *testing.B, bench func(*testing.B, events.Event, string), sample string, paths ...string) {
	for _, path := range paths {
		b.Run(path, func(b *testing.B) { bench(b, samples()[sample], path) })
	}
}

func BenchmarkEncodeContentChange(b *testing.B) {
	benchPaths(b, benchEncode, "ContentChange/full", pathNative, pathTyped, pathTypedGoavro)
}

func BenchmarkDecodeContentChange(b *testing.B) {
	benchPaths(b, benchDecode, "ContentChange/full", pathNative, pathTyped, pathTypedOnly, pathTypedGoavro)
}

func BenchmarkEncodeDelivery(b *testing.B) {
	benchPaths(b, benchEncode, "Delivery/full", pathNative, pathTyped, pathTypedGoavro)
}

func BenchmarkDecodeDelivery(b *testing.B) {
	benchPaths(b, benchDecode, "Delivery/full", pathNative, pathTyped, pathTypedOnly, pathTypedGoavro)
}

// BenchmarkEncodeEvents and BenchmarkDecodeEvents cover the full sample of
// every event, on the direct path and on goavro's.
func BenchmarkEncodeEvents(b *testing.B) {
	for _, name := range eventSchemas() {
		b.Run(name, func(b *testing.B) {
			benchPaths(b, benchEncode, name+"/full", pathTyped, pathTypedGoavro)
		})
	}
}

func BenchmarkDecodeEvents(b *testing.B) {
	for _, name := range eventSchemas() {
		b.Run(name, func(b *testing.B) {
			benchPaths(b, benchDecode, name+"/full", pathTypedOnly, pathTyped, pathTypedGoavro)
		})
	}
}

func eventSchemas() []string {
	return []string{"ContentChange", "Delivery", "UserProfile", "LatencySample", "RumBeacon", "PurgeAudit"}
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
