package codec

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/codec/codectest"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/schemas"
)

// randomEventsPerSchema is how many random events of each schema the
// differential tests try, besides the samples.
const randomEventsPerSchema = 400

// differentialCases returns the samples and seeded random events of every
// schema, named.
func differentialCases() ([]string, []events.Event) {
	all := samples()
	names := sortedKeys(all)
	evs := make([]events.Event, 0, len(names)+6*randomEventsPerSchema)
	for _, name := range names {
		evs = append(evs, all[name])
	}
	g := newGen(1)
	for i := range 6 * randomEventsPerSchema {
		ev := g.event(i)
		names = append(names, fmt.Sprintf("random/%d/%s", i, shortName(ev.Schema())))
		evs = append(evs, ev)
	}
	return names, evs
}

// TestDirectEncodeMatchesGoavro holds the direct encoders to goavro's
// output: for every sample and random event, the body is byte for byte the
// one goavro writes for ev.Native(), once map entries are put in the same
// order (goavro writes them in map iteration order; the direct encoder
// sorts them, so its output is already canonical).
func TestDirectEncodeMatchesGoavro(t *testing.T) {
	c := newCodec(t)
	names, evs := differentialCases()
	for i, ev := range evs {
		e := c.byName[ev.Schema()]
		if !e.direct {
			t.Fatalf("%s: direct path off", e.Name)
		}
		fast, ok := appendDirect(nil, ev)
		if !ok {
			t.Fatalf("%s: direct encoder refused %#v", names[i], ev)
		}
		slow, err := e.codec.BinaryFromNative(nil, ev.Native())
		if err != nil {
			t.Fatalf("%s: goavro: %v", names[i], err)
		}
		canonSlow, err := canonicalBody(e.root, slow)
		if err != nil {
			t.Fatalf("%s: goavro output: %v", names[i], err)
		}
		canonFast, err := canonicalBody(e.root, fast)
		if err != nil {
			t.Fatalf("%s: direct output: %v", names[i], err)
		}
		if !bytes.Equal(canonFast, fast) {
			t.Errorf("%s: direct output is not in canonical (sorted map) order", names[i])
		}
		if !bytes.Equal(fast, canonSlow) {
			t.Errorf("%s: direct encoding differs from goavro's\n got % x\nwant % x", names[i], prefix(fast), prefix(canonSlow))
		}
	}
}

// prefix shortens long bodies in failure messages.
func prefix(b []byte) []byte { return b[:min(len(b), 256)] }

// TestDirectDecodeMatchesGoavro holds the direct decoders to goavro's path
// (Decode, then events.FromNative): the same struct for every sample and
// random event, and through DecodeEvent the same Decoded, Native included.
func TestDirectDecodeMatchesGoavro(t *testing.T) {
	ctx := context.Background()
	c, slow := newCodec(t), newCodec(t, withoutDirect())
	names, evs := differentialCases()
	for i, ev := range evs {
		data, err := slow.EncodeEvent(ctx, "", ev)
		if err != nil {
			t.Fatal(err)
		}
		want, wantD, err := slow.DecodeEvent(ctx, data)
		if err != nil {
			t.Fatalf("%s: goavro: %v", names[i], err)
		}
		got, _, err := decodeDirect(ev.Schema(), data[soeHeaderLen:])
		if err != nil {
			t.Fatalf("%s: direct decoder: %v", names[i], err)
		}
		if !sameValue(got, want) {
			t.Fatalf("%s: direct decoder\n got %#v\nwant %#v", names[i], got, want)
		}

		got, gotD, err := c.DecodeEvent(ctx, data)
		if err != nil || !sameValue(got, want) {
			t.Fatalf("%s: DecodeEvent = %#v, %v\nwant %#v", names[i], got, err, want)
		}
		if !sameValue(gotD, wantD) {
			t.Fatalf("%s: DecodeEvent's Decoded\n got %s\nwant %s", names[i], dump(gotD.Native), dump(wantD.Native))
		}
		got, gotD, err = c.DecodeTyped(ctx, data)
		wantD.Native = nil
		if err != nil || !sameValue(got, want) || !sameValue(gotD, wantD) {
			t.Fatalf("%s: DecodeTyped = %#v, %+v, %v", names[i], got, gotD, err)
		}
	}
}

// TestDirectDecodeEdgeValues decodes values the events hold differently
// from the bytes (so that ev.Native() is not what goavro decodes), written
// by goavro from native maps: DecodeEvent must still return what it returns
// without the direct path, Native included, and DecodeTyped the same event.
func TestDirectDecodeEdgeValues(t *testing.T) {
	ctx := context.Background()
	c, slow := newCodec(t), newCodec(t, withoutDirect())
	zeroTime := map[string]any{"long.timestamp-micros": time.Time{}}
	cases := []struct {
		sample string
		edit   map[string]any
	}{
		{"PurgeAudit/full", map[string]any{"error": map[string]any{"string": ""}}},
		{"PurgeAudit/full", map[string]any{"latency_from_commit_us": int64(math.MinInt64)}},
		{"PurgeAudit/full", map[string]any{"part": int32(0)}},
		{"PurgeAudit/minimal", map[string]any{"parts": int32(0)}},
		{"LatencySample/full", map[string]any{"duration_us": int64(math.MaxInt64)}},
		{"Delivery/full", map[string]any{"deadline": zeroTime}},
		{"ContentChange/full", map[string]any{"published_at": zeroTime}},
		{"RumBeacon/full", map[string]any{"client_time": zeroTime}},
	}
	for _, tc := range cases {
		ev := samples()[tc.sample]
		native := ev.Native()
		for k, v := range tc.edit {
			native[k] = v
		}
		data, err := c.Encode(ctx, "", ev.Schema(), native)
		if err != nil {
			t.Fatal(err)
		}
		if _, lossy, err := decodeDirect(ev.Schema(), data[soeHeaderLen:]); err != nil || !lossy {
			t.Errorf("%s %v: decodeDirect lossy = %v, %v; want true", tc.sample, tc.edit, lossy, err)
		}
		want, wantD, err := slow.DecodeEvent(ctx, data)
		if err != nil {
			t.Fatal(err)
		}
		got, gotD, err := c.DecodeEvent(ctx, data)
		if err != nil || !sameValue(got, want) || !sameValue(gotD, wantD) {
			t.Errorf("%s %v: DecodeEvent\n got %v %s\nwant %s", tc.sample, tc.edit, err, dump(gotD.Native), dump(wantD.Native))
		}
		got, _, err = c.DecodeTyped(ctx, data)
		if err != nil || !sameValue(got, want) {
			t.Errorf("%s %v: DecodeTyped = %#v, %v\nwant %#v", tc.sample, tc.edit, got, err, want)
		}
	}
}

// TestDirectPathThroughTheAPI compares EncodeEvent with and without the
// direct path in both framings, and checks that what the direct path
// cannot encode (an enum symbol the schema does not have) fails as it did.
func TestDirectPathThroughTheAPI(t *testing.T) {
	ctx := context.Background()
	reg := codectest.NewRegistry()
	defer reg.Close()
	pairs := map[Framing][2]*Codec{
		SingleObject: {newCodec(t), newCodec(t, withoutDirect())},
		Confluent:    {newCodec(t, WithRegistry(reg.URL())), newCodec(t, WithRegistry(reg.URL()), withoutDirect())},
	}
	names, evs := differentialCases()
	for _, framing := range []Framing{SingleObject, Confluent} {
		fast, slow := pairs[framing][0], pairs[framing][1]
		for i, ev := range evs {
			topic := topicOf[ev.Schema()]
			got, err := fast.AppendEncodeEvent(ctx, []byte("keep"), topic, ev)
			if err != nil {
				t.Fatal(err)
			}
			want, err := slow.AppendEncodeEvent(ctx, []byte("keep"), topic, ev)
			if err != nil {
				t.Fatal(err)
			}
			header := 4 + soeHeaderLen
			if framing == Confluent {
				header = 4 + confluentHeaderLen
			}
			root := fast.byName[ev.Schema()].root
			canon, err := canonicalBody(root, want[header:])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[:header], want[:header]) || !bytes.Equal(got[header:], canon) {
				t.Fatalf("%s/%s: EncodeEvent\n got % x\nwant % x", framing, names[i], prefix(got), prefix(want))
			}
		}
	}

	// Decoding: values of the current schemas take the direct path in both
	// framings (DecodeTyped leaves Native nil only then); a value written
	// with a past version is resolved by goavro.
	for _, framing := range []Framing{SingleObject, Confluent} {
		c := pairs[framing][0]
		data, err := c.EncodeEvent(ctx, "content.deliveries", samples()["Delivery/full"])
		if err != nil {
			t.Fatal(err)
		}
		if _, d, err := c.DecodeTyped(ctx, data); err != nil || d.Native != nil || d.Framing != framing {
			t.Errorf("%s: DecodeTyped = %+v, %v; want the direct path", framing, d, err)
		}
	}
	v1 := newCodec(t, WithSchemas(schemaFS(t, withoutFields("regions", "before"))))
	v1Schema, err := v1.Schema(events.ContentChangeSchema)
	if err != nil {
		t.Fatal(err)
	}
	old, err := v1.EncodeEvent(ctx, "", samples()["ContentChange/full"])
	if err != nil {
		t.Fatal(err)
	}
	ev, d, err := newCodec(t, WithWriterSchemas(v1Schema.JSON)).DecodeTyped(ctx, old)
	if err != nil || !d.Resolved || d.Native == nil || ev.(*events.ContentChange).Regions != nil {
		t.Errorf("past writer: DecodeTyped = %#v, %+v, %v; want it resolved by goavro", ev, d, err)
	}

	bad := []events.Event{
		events.Delivery{Op: "upsert"},
		&events.ContentChange{Op: ""},
		events.PurgeAudit{Outcome: "lost"},
		events.RumBeacon{DeviceClass: "watch"},
		events.RumBeacon{Metrics: []events.WebVital{{Name: "FID", Rating: events.RatingGood}}},
		events.LatencySample{Source: &events.Source{Origin: "carrier-pigeon"}},
	}
	c, slow := newCodec(t), newCodec(t, withoutDirect())
	for _, ev := range bad {
		got, err := c.AppendEncodeEvent(ctx, []byte("keep"), "", ev)
		_, want := slow.AppendEncodeEvent(ctx, []byte("keep"), "", ev)
		if !errors.Is(err, ErrEncode) || err.Error() != want.Error() || string(got) != "keep" {
			t.Errorf("%T: AppendEncodeEvent = %q, %v; want \"keep\", %v", ev, got, err, want)
		}
	}
	// A nil pointer is not the direct path's to encode.
	if _, ok := appendDirect(nil, (*events.Delivery)(nil)); ok {
		t.Error("appendDirect encoded a nil *Delivery")
	}
}

// TestDirectDecodeRejects runs TestDecodeErrors' hostile and broken bodies
// through the direct decoder: each is refused with a data error, without
// allocating by the lengths it claims, and DecodeEvent still returns
// Decode's error.
func TestDirectDecodeRejects(t *testing.T) {
	ctx := context.Background()
	c, slow := newCodec(t), newCodec(t, withoutDirect())
	valid, err := c.EncodeEvent(ctx, "", samples()["ContentChange/full"])
	if err != nil {
		t.Fatal(err)
	}
	body := valid[soeHeaderLen:]
	cases := []struct {
		name   string
		schema string
		body   []byte
		want   error
	}{
		{"cut short", events.ContentChangeSchema, body[:len(body)-1], ErrTruncated},
		{"empty", events.ContentChangeSchema, nil, ErrTruncated},
		{"bytes after the value", events.ContentChangeSchema, append(append([]byte(nil), body...), 0), ErrMalformed},
		{"string of 2^40 bytes", events.ContentChangeSchema, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x40}, ErrTruncated},
		{"varint longer than 10 bytes", events.ContentChangeSchema, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, ErrMalformed},
		{"map of a billion entries", events.LatencySampleSchema, []byte{
			0x02, 'e', 0x00, 0x00, 0x02, 's', 0x02, 's', 0x00, 0x02, 's', 0x02, 0x02,
			0x80, 0xa8, 0xd6, 0xb9, 0x07}, ErrTruncated},
		{"array of a billion stages", events.LatencySampleSchema, []byte{
			0x02, 'e', 0x00, 0x02, 0x02, 0x02, // trace: committed_at, produced_at
			0x80, 0xa8, 0xd6, 0xb9, 0x07}, ErrTruncated},
		{"negative block size", events.LatencySampleSchema, []byte{
			0x02, 'e', 0x00, 0x00, 0x02, 's', 0x02, 's', 0x00, 0x02, 's', 0x02, 0x02,
			0x01, 0x01, 0x00, 0x00, 0x00}, ErrMalformed},
		{"map key twice", events.LatencySampleSchema, []byte{
			0x02, 'e', 0x00, 0x00, 0x02, 's', 0x02, 's', 0x00, 0x02, 's', 0x02, 0x02,
			0x04, 0x02, 'k', 0x00, 0x02, 'k', 0x00, 0x00}, ErrMalformed},
		{"union index 2", events.LatencySampleSchema, []byte{0x02, 'e', 0x04}, ErrMalformed},
		{"enum index out of range", events.DeliverySchema, []byte{0x00, 0x00, 0x10}, ErrMalformed},
		{"boolean 2", events.UserProfileSchema, append(append([]byte{0x00}, sourceAndTrace()...), 0x00, 0x04), ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			before := ms.TotalAlloc
			_, _, err := decodeDirect(tc.schema, tc.body)
			runtime.ReadMemStats(&ms)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if n := ms.TotalAlloc - before; n > 1<<16 {
				t.Errorf("allocated %d bytes rejecting %d", n, len(tc.body))
			}
			data := append(soeHeader(t, c, tc.schema), tc.body...)
			_, _, got := c.DecodeEvent(ctx, data)
			_, _, want := slow.DecodeEvent(ctx, data)
			if got == nil || want == nil || got.Error() != want.Error() || !IsDataError(got) {
				t.Errorf("DecodeEvent: %v, want %v", got, want)
			}
		})
	}
}

// sourceAndTrace is a minimal Source and Trace body.
func sourceAndTrace() []byte {
	return []byte{0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}
}

func soeHeader(t testing.TB, c *Codec, schema string) []byte {
	s, err := c.Schema(schema)
	if err != nil {
		t.Fatal(err)
	}
	return binary.LittleEndian.AppendUint64([]byte{soeMagic0, soeMagic1}, s.Fingerprint)
}

// TestDirectPathMatchesSchemas fails when a schema of schemas/avro changes
// without the direct path following it: the direct encoders and decoders
// are written for one version of each schema, recorded by fingerprint.
func TestDirectPathMatchesSchemas(t *testing.T) {
	current, _, err := loadFS(schemas.Avro)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range current {
		seen[e.Name] = true
		t.Run(shortName(e.Name), func(t *testing.T) {
			want, ok := directFingerprints[e.Name]
			switch {
			case !ok:
				t.Fatalf("%s has no direct encoder and decoder: add them to pkg/codec/direct_events.go and direct.go", e.Name)
			case want != e.Fingerprint:
				t.Fatalf("schemas/avro/%s.avsc (or a type it uses) changed: its fingerprint is now %016x, the direct path was written for %016x. "+
					"Update the encoder and decoder of %s in pkg/codec/direct_events.go to the new schema (field order, types, unions, enum symbols), "+
					"then its fingerprint in directFingerprints (pkg/codec/direct.go), and run go test ./pkg/codec; until then the codec uses goavro for %s.",
					shortName(e.Name), e.Fingerprint, want, shortName(e.Name), shortName(e.Name))
			}
		})
	}
	for name := range directFingerprints {
		if !seen[name] {
			t.Errorf("directFingerprints names %s, which schemas/avro does not have", name)
		}
	}
	c := newCodec(t)
	for _, name := range c.Names() {
		if !c.byName[name].direct {
			t.Errorf("%s: direct path off in a codec of the compiled-in schemas", name)
		}
	}
	if c := newCodec(t, WithSchemas(schemaFS(t, withoutFields("regions")))); c.byName[events.ContentChangeSchema].direct {
		t.Error("direct path on for a ContentChange schema it was not written for")
	}

	// The enum tables, symbol by symbol.
	tables := map[string][]string{
		"SourceOrigin": strs(originSymbols), "ContentOp": strs(opSymbols), "PurgeOutcome": strs(outcomeSymbols),
		"DeviceClass": strs(deviceSymbols), "VitalName": strs(vitalSymbols), "VitalRating": strs(ratingSymbols),
		"NavigationType": strs(navSymbols),
	}
	enums := map[string][]string{}
	for _, e := range current {
		collectEnums(e.root, enums, map[*node]bool{})
	}
	for name, syms := range enums {
		if got := tables[shortName(name)]; fmt.Sprint(got) != fmt.Sprint(syms) {
			t.Errorf("enum %s: direct path has symbols %q, the schema %q (update direct_events.go)", name, got, syms)
		}
	}
	if len(enums) != len(tables) {
		t.Errorf("schemas have %d enums, the direct path %d", len(enums), len(tables))
	}

	// The least sizes of array items, which bound the counts decoded.
	mins := map[string]int{"Stage": minStage, "Reason": minReason, "Interest": minInterest, "WebVital": minVital, "SseLag": minLag}
	for _, e := range current {
		walkNodes(e.root, map[*node]bool{}, func(n *node) {
			if n.kind == kArray && n.items.kind == kRecord {
				if want, ok := mins[shortName(n.items.name)]; !ok || want != n.items.minSize {
					t.Errorf("array of %s: items take at least %d bytes, direct_events.go says %d", n.items.name, n.items.minSize, want)
				}
			}
		})
	}
}

func strs[T ~string](s []T) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = string(v)
	}
	return out
}

func collectEnums(n *node, out map[string][]string, seen map[*node]bool) {
	walkNodes(n, seen, func(n *node) {
		if n.kind == kEnum {
			out[n.name] = n.symbols
		}
	})
}

// walkNodes calls fn for every node of a schema graph once.
func walkNodes(n *node, seen map[*node]bool, fn func(*node)) {
	if seen[n] {
		return
	}
	seen[n] = true
	fn(n)
	for _, f := range n.fields {
		walkNodes(f.typ, seen, fn)
	}
	for _, b := range n.branches {
		walkNodes(b, seen, fn)
	}
	if n.items != nil {
		walkNodes(n.items, seen, fn)
	}
	if n.values != nil {
		walkNodes(n.values, seen, fn)
	}
}

// FuzzFastDecode feeds arbitrary bodies to the direct decoder of each
// schema and to goavro's path (scan, decode, FromNative). The direct
// decoder must never panic, must accept exactly what goavro's path accepts,
// with data errors only, and must decode the same value; DecodeEvent must
// return what it returns without the direct path, errors included.
func FuzzFastDecode(f *testing.F) {
	ctx := context.Background()
	c, slow := newCodec(f), newCodec(f, withoutDirect())
	names := c.Names()
	index := map[string]uint8{}
	for i, n := range names {
		index[n] = uint8(i)
	}
	_, evs := differentialCases()
	for i, ev := range evs {
		if i > 40 && ev.Schema() != events.ContentChangeSchema && ev.Schema() != events.DeliverySchema {
			continue
		}
		body, ok := appendDirect(nil, ev)
		if !ok {
			f.Fatal("direct encoder refused a sample")
		}
		if len(body) < 4096 {
			f.Add(index[ev.Schema()], body)
		}
	}
	f.Add(uint8(0), []byte{})
	f.Fuzz(func(t *testing.T, schema uint8, body []byte) {
		e := c.byName[names[int(schema)%len(names)]]
		got, _, err := decodeDirect(e.Name, body)
		d, slowErr := c.decodeBody(e, Decoded{}, body)
		var want events.Event
		if slowErr == nil {
			if want, slowErr = events.FromNative(d.Schema, d.Native); slowErr != nil {
				t.Fatalf("goavro's value has no typed form: %v", slowErr)
			}
		}
		switch {
		case err != nil && slowErr != nil:
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("direct decoder error %v is not a data error", err)
			}
		case err != nil:
			t.Fatalf("direct decoder refused what goavro accepts: %v", err)
		case slowErr != nil:
			t.Fatalf("direct decoder accepted what goavro refuses (%v): %#v", slowErr, got)
		case !sameValue(got, want):
			t.Fatalf("direct decoder\n got %#v\nwant %#v", got, want)
		}

		data := append(soeHeader(t, c, e.Name), body...)
		gotEv, gotD, gotErr := c.DecodeEvent(ctx, data)
		wantEv, wantD, wantErr := slow.DecodeEvent(ctx, data)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || !sameValue(gotEv, wantEv) || !sameValue(gotD, wantD) {
			t.Fatalf("DecodeEvent = %#v, %v; without the direct path %#v, %v", gotEv, gotErr, wantEv, wantErr)
		}
	})
}
