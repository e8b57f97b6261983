package pgoutput

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
	"time"
)

// The encoders below write messages the way Postgres's pgoutput does
// (src/backend/replication/logical/proto.c), for the tests and fuzz seeds.

func u16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func u32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func u64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }
func cstr(b []byte, s string) []byte {
	return append(append(b, s...), 0)
}
func pgTime(b []byte, t time.Time) []byte { return u64(b, uint64(t.Sub(pgEpoch)/time.Microsecond)) }

func tuple(b []byte, t Tuple) []byte {
	b = u16(b, uint16(len(t)))
	for _, v := range t {
		b = append(b, v.Kind)
		if v.Kind == KindText || v.Kind == KindBinary {
			b = u32(b, uint32(len(v.Data)))
			b = append(b, v.Data...)
		}
	}
	return b
}

var when = time.Date(2026, 11, 25, 12, 0, 0, 123456000, time.UTC)

func samples() map[string]struct {
	data []byte
	want Message
} {
	row := Tuple{{Kind: KindText, Data: []byte("42")}, {Kind: KindNull}, {Kind: KindUnchanged}, {Kind: KindText, Data: []byte{}}}
	key := Tuple{{Kind: KindText, Data: []byte("42")}, {Kind: KindNull}, {Kind: KindNull}, {Kind: KindNull}}
	out := map[string]struct {
		data []byte
		want Message
	}{}
	add := func(name string, data []byte, want Message) {
		out[name] = struct {
			data []byte
			want Message
		}{data, want}
	}
	b := u64([]byte{'B'}, 0x16B3748)
	b = pgTime(b, when)
	b = u32(b, 777)
	add("begin", b, &Begin{FinalLSN: 0x16B3748, CommitTime: when, Xid: 777})
	c := u64(u64([]byte{'C', 0}, 0x16B3748), 0x16B3780)
	c = pgTime(c, when)
	add("commit", c, &Commit{CommitLSN: 0x16B3748, EndLSN: 0x16B3780, CommitTime: when})
	r := cstr(cstr(u32([]byte{'R'}, 16384), "public"), "content")
	r = append(r, 'f')
	r = u16(r, 2)
	r = u32(cstr(append(r, 1), "id"), 20)
	r = u32(r, 0xFFFFFFFF)
	r = u32(cstr(append(r, 0), "title"), 25)
	r = u32(r, 0xFFFFFFFF)
	add("relation", r, &Relation{ID: 16384, Namespace: "public", Name: "content", ReplicaIdentity: 'f', Columns: []Column{
		{Key: true, Name: "id", TypeOID: 20, TypeMod: -1}, {Name: "title", TypeOID: 25, TypeMod: -1}}})
	add("type", cstr(cstr(u32([]byte{'Y'}, 90001), "public"), "mood"), &TypeInfo{OID: 90001, Namespace: "public", Name: "mood"})
	add("origin", cstr(u64([]byte{'O'}, 99), "node1"), &Origin{CommitLSN: 99, Name: "node1"})
	add("insert", tuple(append(u32([]byte{'I'}, 16384), 'N'), row), &Insert{RelationID: 16384, New: row})
	add("update", tuple(append(u32([]byte{'U'}, 16384), 'N'), row), &Update{RelationID: 16384, New: row})
	add("update full", tuple(append(tuple(append(u32([]byte{'U'}, 16384), 'O'), row), 'N'), row), &Update{RelationID: 16384, OldKind: OldFull, Old: row, New: row})
	add("update key", tuple(append(tuple(append(u32([]byte{'U'}, 16384), 'K'), key), 'N'), row), &Update{RelationID: 16384, OldKind: OldKey, Old: key, New: row})
	add("delete key", tuple(append(u32([]byte{'D'}, 16384), 'K'), key), &Delete{RelationID: 16384, OldKind: OldKey, Old: key})
	add("delete full", tuple(append(u32([]byte{'D'}, 16384), 'O'), row), &Delete{RelationID: 16384, OldKind: OldFull, Old: row})
	add("truncate", u32(u32(append(u32([]byte{'T'}, 2), 1), 16384), 16390), &Truncate{Options: 1, RelationIDs: []uint32{16384, 16390}})
	msg := cstr(u64([]byte{'M', 1}, 0x200), "freshet.outbox")
	msg = append(u32(msg, 7), `{"a":1}`...)
	add("message", msg, &LogicalMessage{Transactional: true, LSN: 0x200, Prefix: "freshet.outbox", Content: []byte(`{"a":1}`)})
	return out
}

func TestParse(t *testing.T) {
	for name, s := range samples() {
		t.Run(name, func(t *testing.T) {
			got, err := Parse(s.data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, s.want) {
				t.Fatalf("Parse = %#v, want %#v", got, s.want)
			}
			// Every strict prefix is malformed, and says so without panicking.
			for i := 0; i < len(s.data); i++ {
				if _, err := Parse(s.data[:i]); !errors.Is(err, ErrMalformed) {
					t.Fatalf("Parse(prefix %d of %d) error = %v, want ErrMalformed", i, len(s.data), err)
				}
			}
			// Bytes left over are malformed too.
			if _, err := Parse(append(append([]byte(nil), s.data...), 0)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(with a trailing byte) error = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	for name, data := range map[string][]byte{
		"unknown type":        {'Z', 0, 0},
		"bad value kind":      append(u16(append(u32([]byte{'I'}, 1), 'N'), 1), 'x'),
		"insert without N":    append(u32([]byte{'I'}, 1), 'K', 0, 0),
		"huge column count":   u16(append(u32([]byte{'I'}, 1), 'N'), 0xFFFF),
		"huge value length":   u32(append(u16(append(u32([]byte{'I'}, 1), 'N'), 1), 't'), 0xFFFFFFFF),
		"huge truncate count": append(u32([]byte{'T'}, 0xFFFFFFFF), 0, 0, 0, 0, 1),
		"delete without old":  append(u32([]byte{'D'}, 1), 'N', 0, 0),
		"no nul in prefix":    append(u64([]byte{'M', 1}, 1), "abc"...),
	} {
		if m, err := Parse(data); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Parse = %#v, %v; want ErrMalformed", name, m, err)
		}
	}
}

// FuzzParse: no input panics, and what parses re-encodes to the same bytes.
func FuzzParse(f *testing.F) {
	for _, s := range samples() {
		f.Add(s.data)
	}
	f.Add([]byte{})
	f.Add([]byte{'I', 0, 0, 0, 1, 'N', 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		switch m := m.(type) {
		case *Insert:
			if re := tuple(append(u32([]byte{'I'}, m.RelationID), 'N'), m.New); string(re) != string(data) {
				t.Fatalf("insert re-encodes to %x, want %x", re, data)
			}
		case *Delete:
			if re := tuple(append(u32([]byte{'D'}, m.RelationID), m.OldKind), m.Old); string(re) != string(data) {
				t.Fatalf("delete re-encodes to %x, want %x", re, data)
			}
		}
	})
}
