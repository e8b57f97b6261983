package codec

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io/fs"
	"reflect"
	"testing"
	"testing/fstest"
	"time"

	"github.com/freshet/freshet/pkg/codec/codectest"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/schemas"
)

// schemaFS copies the embedded event and type files (not history/) into a
// MapFS, letting edit change the parsed ContentChange.avsc.
func schemaFS(t testing.TB, edit func(doc map[string]any)) fstest.MapFS {
	t.Helper()
	out := fstest.MapFS{}
	for _, pattern := range []string{"*.avsc", "types/*.avsc"} {
		files, err := fs.Glob(schemas.Avro, pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range files {
			b, err := fs.ReadFile(schemas.Avro, p)
			if err != nil {
				t.Fatal(err)
			}
			if p == "ContentChange.avsc" && edit != nil {
				var doc map[string]any
				if err := json.Unmarshal(b, &doc); err != nil {
					t.Fatal(err)
				}
				edit(doc)
				if b, err = json.Marshal(doc); err != nil {
					t.Fatal(err)
				}
			}
			out[p] = &fstest.MapFile{Data: b}
		}
	}
	return out
}

// withoutFields removes fields from a record schema document.
func withoutFields(names ...string) func(doc map[string]any) {
	return func(doc map[string]any) {
		drop := map[string]bool{}
		for _, n := range names {
			drop[n] = true
		}
		var kept []any
		for _, f := range doc["fields"].([]any) {
			if !drop[f.(map[string]any)["name"].(string)] {
				kept = append(kept, f)
			}
		}
		doc["fields"] = kept
	}
}

// TestOldWriterNewReader plays a schema change: version 1 of ContentChange
// had no regions and no before; version 2 (the current one) added them with
// defaults. Values written with version 1 must decode with the current
// codec, with the defaults filled in, in both framings.
func TestOldWriterNewReader(t *testing.T) {
	ctx := context.Background()
	v1 := newCodec(t, WithSchemas(schemaFS(t, withoutFields("regions", "before"))))
	v1Schema, err := v1.Schema(events.ContentChangeSchema)
	if err != nil {
		t.Fatal(err)
	}
	ev := samples()["ContentChange/full"].(events.ContentChange)
	native := ev.Native()
	delete(native, "regions")
	delete(native, "before")
	old, err := v1.Encode(ctx, "content.changes", events.ContentChangeSchema, native)
	if err != nil {
		t.Fatal(err)
	}

	want := ev
	want.Regions, want.Before = nil, nil
	check := func(t *testing.T, c *Codec, data []byte) {
		t.Helper()
		got, d, err := c.DecodeEvent(ctx, data)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Resolved || d.Fingerprint != v1Schema.Fingerprint || d.Schema != events.ContentChangeSchema {
			t.Errorf("Decoded = %+v, want resolved from fingerprint %016x", d, v1Schema.Fingerprint)
		}
		if !reflect.DeepEqual(got, &want) {
			t.Errorf("got %#v\nwant %#v", got, &want)
		}
		if r, ok := d.Native["regions"].([]any); !ok || len(r) != 0 {
			t.Errorf("regions = %#v, want the default []", d.Native["regions"])
		}
		if b, ok := d.Native["before"]; !ok || b != nil {
			t.Errorf("before = %#v, want the default null", d.Native["before"])
		}
	}

	t.Run("unknown without the old version", func(t *testing.T) {
		_, err := newCodec(t).Decode(ctx, old)
		if !errors.Is(err, ErrUnknownSchema) || !IsDataError(err) {
			t.Fatalf("err = %v, want ErrUnknownSchema", err)
		}
	})
	t.Run("single-object, old version given", func(t *testing.T) {
		check(t, newCodec(t, WithWriterSchemas(v1Schema.JSON)), old)
	})
	t.Run("single-object, old version in history", func(t *testing.T) {
		fsys := schemaFS(t, nil)
		fsys["history/ContentChange.v1.avsc"] = &fstest.MapFile{Data: []byte(v1Schema.JSON)}
		check(t, newCodec(t, WithSchemas(fsys)), old)
	})
	t.Run("confluent, old version from the registry", func(t *testing.T) {
		reg := codectest.NewRegistry()
		defer reg.Close()
		id := reg.Register("content.changes-value", v1Schema.JSON)
		framed := binary.BigEndian.AppendUint32([]byte{0}, uint32(id))
		framed = append(framed, old[soeHeaderLen:]...)
		check(t, newCodec(t, WithRegistry(reg.URL())), framed)
	})
	t.Run("new writer, old reader drops the new fields", func(t *testing.T) {
		current, err := newCodec(t).Schema(events.ContentChangeSchema)
		if err != nil {
			t.Fatal(err)
		}
		oldReader := newCodec(t, WithSchemas(schemaFS(t, withoutFields("regions", "before"))), WithWriterSchemas(current.JSON))
		data, err := newCodec(t).EncodeEvent(ctx, "content.changes", ev)
		if err != nil {
			t.Fatal(err)
		}
		d, err := oldReader.Decode(ctx, data)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := d.Native["regions"]; ok || !d.Resolved {
			t.Errorf("old reader got regions (resolved %v)", d.Resolved)
		}
		if d.Native["title"] != ev.Title {
			t.Errorf("title = %v, want %q", d.Native["title"], ev.Title)
		}
	})
}

// TestResolutionRules checks the rules of Avro schema resolution one by one,
// each with a writer and a reader version of a small record.
func TestResolutionRules(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	cases := []struct {
		name           string
		writer, reader string // the record's fields
		in             map[string]any
		want           map[string]any
		wantErr        error
	}{
		{
			name:   "int promoted to long, float and double",
			writer: `[{"name":"a","type":"int"},{"name":"b","type":"int"},{"name":"c","type":"long"},{"name":"d","type":"float"}]`,
			reader: `[{"name":"a","type":"long"},{"name":"b","type":"double"},{"name":"c","type":"float"},{"name":"d","type":"double"}]`,
			in:     map[string]any{"a": int32(7), "b": int32(-3), "c": int64(1 << 40), "d": float32(1.5)},
			want:   map[string]any{"a": int64(7), "b": float64(-3), "c": float32(1 << 40), "d": float64(1.5)},
		},
		{
			name:   "string read as bytes and bytes as string",
			writer: `[{"name":"a","type":"string"},{"name":"b","type":"bytes"}]`,
			reader: `[{"name":"a","type":"bytes"},{"name":"b","type":"string"}]`,
			in:     map[string]any{"a": "hé", "b": []byte("yo")},
			want:   map[string]any{"a": []byte("hé"), "b": "yo"},
		},
		{
			name:   "writer-only field dropped, reader-only fields defaulted",
			writer: `[{"name":"keep","type":"string"},{"name":"gone","type":"long"}]`,
			reader: `[{"name":"keep","type":"string"},
				{"name":"n","type":"long","default":5},
				{"name":"s","type":["null","string"],"default":null},
				{"name":"l","type":{"type":"array","items":"string"},"default":["x"]},
				{"name":"m","type":{"type":"map","values":"int"},"default":{"k":1}},
				{"name":"t","type":{"type":"long","logicalType":"timestamp-micros"},"default":1000000},
				{"name":"r","type":{"type":"record","name":"Sub","fields":[{"name":"x","type":"int","default":2},{"name":"y","type":"string"}]},"default":{"y":"z"}},
				{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]},"default":"B"},
				{"name":"b","type":"bytes","default":"\u00ff"}]`,
			in: map[string]any{"keep": "k", "gone": int64(1)},
			want: map[string]any{
				"keep": "k", "n": int64(5), "s": nil, "l": []any{"x"}, "m": map[string]any{"k": int32(1)},
				"t": time.Unix(1, 0).UTC(), "r": map[string]any{"x": int32(2), "y": "z"}, "e": "B", "b": []byte{0xff},
			},
		},
		{
			name:   "field renamed, found by alias",
			writer: `[{"name":"old_name","type":"string"}]`,
			reader: `[{"name":"new_name","aliases":["old_name"],"type":"string"}]`,
			in:     map[string]any{"old_name": "v"},
			want:   map[string]any{"new_name": "v"},
		},
		{
			name:   "unknown enum symbol read as the reader's default",
			writer: `[{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","C"]}}]`,
			reader: `[{"name":"e","type":{"type":"enum","name":"E","symbols":["unknown","A","B"],"default":"unknown"}}]`,
			in:     map[string]any{"e": "C"},
			want:   map[string]any{"e": "unknown"},
		},
		{
			name:    "unknown enum symbol without a default",
			writer:  `[{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","C"]}}]`,
			reader:  `[{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}}]`,
			in:      map[string]any{"e": "C"},
			wantErr: ErrIncompatible,
		},
		{
			name:    "reader field without default missing from the writer",
			writer:  `[{"name":"a","type":"string"}]`,
			reader:  `[{"name":"a","type":"string"},{"name":"b","type":"string"}]`,
			in:      map[string]any{"a": "x"},
			wantErr: ErrIncompatible,
		},
		{
			name:    "type that cannot be promoted",
			writer:  `[{"name":"a","type":"long"}]`,
			reader:  `[{"name":"a","type":"int"}]`,
			in:      map[string]any{"a": int64(1)},
			wantErr: ErrIncompatible,
		},
		{
			name:   "plain value read into a union, union into a wider union",
			writer: `[{"name":"a","type":"int"},{"name":"b","type":["null","string"]},{"name":"c","type":["null","int"]}]`,
			reader: `[{"name":"a","type":["null","long"]},{"name":"b","type":["null","long","string"]},{"name":"c","type":["null","double"]}]`,
			in:     map[string]any{"a": int32(4), "b": map[string]any{"string": "s"}, "c": nil},
			want:   map[string]any{"a": map[string]any{"long": int64(4)}, "b": map[string]any{"string": "s"}, "c": nil},
		},
		{
			name:   "union read as its non-null branch",
			writer: `[{"name":"a","type":["null","string"]}]`,
			reader: `[{"name":"a","type":"string"}]`,
			in:     map[string]any{"a": map[string]any{"string": "s"}},
			want:   map[string]any{"a": "s"},
		},
		{
			name:    "null union value read as a non-null type",
			writer:  `[{"name":"a","type":["null","string"]}]`,
			reader:  `[{"name":"a","type":"string"}]`,
			in:      map[string]any{"a": nil},
			wantErr: ErrIncompatible,
		},
		{
			name:   "timestamp-millis read as timestamp-micros, and as plain long",
			writer: `[{"name":"a","type":{"type":"long","logicalType":"timestamp-millis"}},{"name":"b","type":{"type":"long","logicalType":"timestamp-micros"}}]`,
			reader: `[{"name":"a","type":{"type":"long","logicalType":"timestamp-micros"}},{"name":"b","type":"long"}]`,
			in:     map[string]any{"a": ts, "b": ts},
			want:   map[string]any{"a": ts.Truncate(time.Millisecond), "b": ts.UnixMicro()},
		},
		{
			name: "records inside arrays and maps gain fields",
			writer: `[{"name":"l","type":{"type":"array","items":{"type":"record","name":"I","fields":[{"name":"x","type":"int"}]}}},
				{"name":"m","type":{"type":"map","values":"I"}}]`,
			reader: `[{"name":"l","type":{"type":"array","items":{"type":"record","name":"I","fields":[{"name":"x","type":"long"},{"name":"y","type":"string","default":"d"}]}}},
				{"name":"m","type":{"type":"map","values":"I"}}]`,
			in: map[string]any{
				"l": []any{map[string]any{"x": int32(1)}, map[string]any{"x": int32(2)}},
				"m": map[string]any{"k": map[string]any{"x": int32(3)}},
			},
			want: map[string]any{
				"l": []any{map[string]any{"x": int64(1), "y": "d"}, map[string]any{"x": int64(2), "y": "d"}},
				"m": map[string]any{"k": map[string]any{"x": int64(3), "y": "d"}},
			},
		},
	}
	record := func(fields string) fstest.MapFS {
		return fstest.MapFS{"R.avsc": &fstest.MapFile{Data: []byte(`{"type":"record","name":"R","namespace":"test","fields":` + fields + `}`)}}
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newCodec(t, WithSchemas(record(tc.writer)))
			ws, err := w.Schema("test.R")
			if err != nil {
				t.Fatal(err)
			}
			data, err := w.Encode(ctx, "", "R", tc.in)
			if err != nil {
				t.Fatal(err)
			}
			r := newCodec(t, WithSchemas(record(tc.reader)), WithWriterSchemas(ws.JSON))
			d, err := r.Decode(ctx, data)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !d.Resolved {
				t.Error("Resolved = false")
			}
			if dump(d.Native) != dump(tc.want) {
				t.Errorf("got  %s\nwant %s", dump(d.Native), dump(tc.want))
			}
			// What resolution yields is a valid value of the reader.
			if _, err := r.Encode(ctx, "", "R", d.Native); err != nil {
				t.Errorf("resolved value does not encode with the reader: %v", err)
			}
		})
	}
}

// purgeAuditBeforeParts is the released PurgeAudit version before part and
// parts were added.
const purgeAuditBeforeParts = "history/PurgeAudit.c9b83bc874864f66.avsc"

// TestPurgeAuditWithoutParts decodes a PurgeAudit written with the version
// before part and parts (its file in history/): every such record was a
// batch's only record, and reads as part 1 of 1, the schema's defaults,
// through the compiled-in history and through a registry. A record of the
// current version still reads with the old version, without them.
func TestPurgeAuditWithoutParts(t *testing.T) {
	ctx := context.Background()
	oldJSON, err := fs.ReadFile(schemas.Avro, purgeAuditBeforeParts)
	if err != nil {
		t.Fatal(err)
	}
	old := newCodec(t, WithSchemas(fstest.MapFS{"PurgeAudit.avsc": &fstest.MapFile{Data: oldJSON}}))
	oldSchema, err := old.Schema(events.PurgeAuditSchema)
	if err != nil {
		t.Fatal(err)
	}
	if oldSchema.Fingerprint != 0xc9b83bc874864f66 {
		t.Fatalf("%s has fingerprint %016x", purgeAuditBeforeParts, oldSchema.Fingerprint)
	}
	ev := samples()["PurgeAudit/full"].(events.PurgeAudit)
	native := ev.Native()
	delete(native, "part")
	delete(native, "parts")
	data, err := old.Encode(ctx, "edge.purges", events.PurgeAuditSchema, native)
	if err != nil {
		t.Fatal(err)
	}
	want := ev
	want.Part, want.Parts = 1, 1

	check := func(t *testing.T, c *Codec, data []byte) {
		t.Helper()
		if c.byName[events.PurgeAuditSchema].Fingerprint == oldSchema.Fingerprint {
			t.Fatal("the current PurgeAudit is the old version")
		}
		for _, decode := range []func(context.Context, []byte) (events.Event, Decoded, error){c.DecodeEvent, c.DecodeTyped} {
			got, d, err := decode(ctx, data)
			if err != nil {
				t.Fatal(err)
			}
			if !d.Resolved || d.Fingerprint != oldSchema.Fingerprint {
				t.Errorf("Decoded = %+v, want resolved from fingerprint %016x", d, oldSchema.Fingerprint)
			}
			if !sameValue(got, &want) {
				t.Errorf("got  %#v\nwant %#v", got, &want)
			}
		}
	}
	t.Run("single-object, old version in history", func(t *testing.T) { check(t, newCodec(t), data) })
	t.Run("confluent, old version from the registry", func(t *testing.T) {
		reg := codectest.NewRegistry()
		defer reg.Close()
		id := reg.Register("edge.purges-value", string(oldJSON))
		check(t, newCodec(t, WithRegistry(reg.URL())), append(binary.BigEndian.AppendUint32([]byte{0}, uint32(id)), data[soeHeaderLen:]...))
	})
	t.Run("new writer, old reader drops part and parts", func(t *testing.T) {
		current, err := newCodec(t).Schema(events.PurgeAuditSchema)
		if err != nil {
			t.Fatal(err)
		}
		oldReader := newCodec(t, WithSchemas(fstest.MapFS{"PurgeAudit.avsc": &fstest.MapFile{Data: oldJSON}}), WithWriterSchemas(current.JSON))
		data, err := newCodec(t).EncodeEvent(ctx, "edge.purges", ev)
		if err != nil {
			t.Fatal(err)
		}
		d, err := oldReader.Decode(ctx, data)
		if err != nil {
			t.Fatal(err)
		}
		_, hasPart := d.Native["part"]
		_, hasParts := d.Native["parts"]
		if hasPart || hasParts || !d.Resolved {
			t.Errorf("old reader got part %v, parts %v (resolved %v)", hasPart, hasParts, d.Resolved)
		}
		if d.Native["attempts"] != int32(ev.Attempts) || dump(d.Native["change_event_ids"]) != dump(native["change_event_ids"]) {
			t.Errorf("old reader: %s", dump(d.Native))
		}
	})
}
