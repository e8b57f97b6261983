package pgoutput

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// ErrMalformed is wrapped by every error of Parse: the message is short,
// holds an unknown type or tuple kind, or has bytes left over.
var ErrMalformed = errors.New("malformed pgoutput message")

// Message types (the first byte of a message).
const (
	TypeBegin    = 'B'
	TypeCommit   = 'C'
	TypeOrigin   = 'O'
	TypeRelation = 'R'
	TypeType     = 'Y'
	TypeInsert   = 'I'
	TypeUpdate   = 'U'
	TypeDelete   = 'D'
	TypeTruncate = 'T'
	TypeMessage  = 'M'
)

// Kinds of a tuple value.
const (
	KindNull      = 'n' // NULL
	KindUnchanged = 'u' // an unchanged TOASTed value, not sent
	KindText      = 't' // text format
	KindBinary    = 'b' // binary format (not requested by the ingestor)
)

// Kinds of the old tuple of an update or delete.
const (
	OldKey  = 'K' // the replica identity key columns (others are null)
	OldFull = 'O' // the whole old row (REPLICA IDENTITY FULL)
)

// Message is one decoded message: *Begin, *Commit, *Origin, *Relation,
// *TypeInfo, *Insert, *Update, *Delete, *Truncate or *LogicalMessage.
type Message interface{ messageType() byte }

// Begin starts a transaction.
type Begin struct {
	FinalLSN   uint64 // LSN of the commit record
	CommitTime time.Time
	Xid        uint32
}

// Commit ends a transaction.
type Commit struct {
	Flags      uint8
	CommitLSN  uint64 // LSN of the commit record
	EndLSN     uint64 // end of the commit record: what to confirm
	CommitTime time.Time
}

// Origin names the replication origin of a transaction.
type Origin struct {
	CommitLSN uint64
	Name      string
}

// Column is one column of a relation.
type Column struct {
	Key     bool // part of the replica identity
	Name    string
	TypeOID uint32
	TypeMod int32
}

// Relation describes a table; it precedes the first change of the table in a
// session and every change after its definition changed.
type Relation struct {
	ID              uint32
	Namespace       string
	Name            string
	ReplicaIdentity byte // d(efault), n(othing), f(ull), i(ndex)
	Columns         []Column
}

// TypeInfo names a type the relations use.
type TypeInfo struct {
	OID       uint32
	Namespace string
	Name      string
}

// Value is one column of a tuple. Data aliases the message.
type Value struct {
	Kind byte // KindNull, KindUnchanged, KindText or KindBinary
	Data []byte
}

// Tuple is a row's values, in the relation's column order.
type Tuple []Value

// Insert is a new row.
type Insert struct {
	RelationID uint32
	New        Tuple
}

// Update is a changed row. OldKind is 0 when no old tuple was sent, else
// OldKey or OldFull.
type Update struct {
	RelationID uint32
	OldKind    byte
	Old        Tuple
	New        Tuple
}

// Delete is a deleted row: its key (OldKey) or whole row (OldFull).
type Delete struct {
	RelationID uint32
	OldKind    byte
	Old        Tuple
}

// Truncate empties relations.
type Truncate struct {
	Options     uint8 // 1: cascade, 2: restart identity
	RelationIDs []uint32
}

// LogicalMessage is what pg_logical_emit_message wrote. Content aliases the
// message.
type LogicalMessage struct {
	Transactional bool
	LSN           uint64
	Prefix        string
	Content       []byte
}

func (*Begin) messageType() byte          { return TypeBegin }
func (*Commit) messageType() byte         { return TypeCommit }
func (*Origin) messageType() byte         { return TypeOrigin }
func (*Relation) messageType() byte       { return TypeRelation }
func (*TypeInfo) messageType() byte       { return TypeType }
func (*Insert) messageType() byte         { return TypeInsert }
func (*Update) messageType() byte         { return TypeUpdate }
func (*Delete) messageType() byte         { return TypeDelete }
func (*Truncate) messageType() byte       { return TypeTruncate }
func (*LogicalMessage) messageType() byte { return TypeMessage }

// pgEpoch is 2000-01-01 UTC, the epoch of Postgres timestamps.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: short %s", ErrMalformed, what)
	}
	r.b = nil
}

func (r *reader) u8(what string) byte {
	if len(r.b) < 1 {
		r.fail(what)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u16(what string) uint16 {
	if len(r.b) < 2 {
		r.fail(what)
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *reader) u32(what string) uint32 {
	if len(r.b) < 4 {
		r.fail(what)
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) u64(what string) uint64 {
	if len(r.b) < 8 {
		r.fail(what)
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) time(what string) time.Time {
	us := int64(r.u64(what))
	return pgEpoch.Add(time.Duration(us) * time.Microsecond).UTC()
}

func (r *reader) bytes(n int, what string) []byte {
	if n < 0 || len(r.b) < n {
		r.fail(what)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) cstring(what string) string {
	i := bytes.IndexByte(r.b, 0)
	if i < 0 {
		r.fail(what + " (no NUL terminator)")
		return ""
	}
	s := string(r.b[:i])
	r.b = r.b[i+1:]
	return s
}

// tuple reads a TupleData; what names it in errors only (no string is built
// on the way: this is the hot path of the ingestor).
func (r *reader) tuple(what string) Tuple {
	if len(r.b) < 2 {
		r.failf("%s: short column count", what)
		return nil
	}
	n := int(binary.BigEndian.Uint16(r.b))
	r.b = r.b[2:]
	// Each value takes at least one byte: a count larger than what is left
	// is malformed, and allocating for it would trust outside bytes.
	if n > len(r.b) {
		r.failf("%s: %d columns in %d bytes", what, n, len(r.b))
		return nil
	}
	t := make(Tuple, n)
	b := r.b
	for i := range t {
		if len(b) < 1 {
			r.failf("%s: short value kind", what)
			return nil
		}
		k := b[0]
		b = b[1:]
		switch k {
		case KindNull, KindUnchanged:
			t[i] = Value{Kind: k}
		case KindText, KindBinary:
			if len(b) < 4 {
				r.failf("%s: short value length", what)
				return nil
			}
			l := int(binary.BigEndian.Uint32(b))
			b = b[4:]
			if l < 0 || l > len(b) {
				r.failf("%s: value of %d bytes in %d", what, l, len(b))
				return nil
			}
			t[i] = Value{Kind: k, Data: b[:l:l]}
			b = b[l:]
		default:
			r.failf("%s: unknown value kind %q", what, k)
			return nil
		}
	}
	r.b = b
	return t
}

func (r *reader) failf(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
	r.b = nil
}

// Parse decodes one pgoutput message (the WAL data of an XLogData).
func Parse(data []byte) (Message, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrMalformed)
	}
	r := &reader{b: data[1:]}
	var m Message
	switch data[0] {
	case TypeBegin:
		m = &Begin{FinalLSN: r.u64("begin"), CommitTime: r.time("begin"), Xid: r.u32("begin")}
	case TypeCommit:
		m = &Commit{Flags: r.u8("commit"), CommitLSN: r.u64("commit"), EndLSN: r.u64("commit"), CommitTime: r.time("commit")}
	case TypeOrigin:
		m = &Origin{CommitLSN: r.u64("origin"), Name: r.cstring("origin name")}
	case TypeRelation:
		rel := &Relation{ID: r.u32("relation"), Namespace: r.cstring("relation namespace"), Name: r.cstring("relation name"), ReplicaIdentity: r.u8("relation")}
		n := int(r.u16("relation column count"))
		if n > len(r.b) {
			r.fail("relation columns")
		} else {
			rel.Columns = make([]Column, n)
			for i := range rel.Columns {
				rel.Columns[i] = Column{Key: r.u8("column flags")&1 == 1, Name: r.cstring("column name"), TypeOID: r.u32("column type"), TypeMod: int32(r.u32("column typmod"))}
			}
		}
		m = rel
	case TypeType:
		m = &TypeInfo{OID: r.u32("type"), Namespace: r.cstring("type namespace"), Name: r.cstring("type name")}
	case TypeInsert:
		ins := &Insert{RelationID: r.u32("insert")}
		if k := r.u8("insert tuple kind"); r.err == nil && k != 'N' {
			return nil, fmt.Errorf("%w: insert: want new tuple 'N', got %q", ErrMalformed, k)
		}
		ins.New = r.tuple("insert")
		m = ins
	case TypeUpdate:
		up := &Update{RelationID: r.u32("update")}
		k := r.u8("update tuple kind")
		if k == OldKey || k == OldFull {
			up.OldKind = k
			up.Old = r.tuple("update old")
			k = r.u8("update tuple kind")
		}
		if r.err == nil && k != 'N' {
			return nil, fmt.Errorf("%w: update: want new tuple 'N', got %q", ErrMalformed, k)
		}
		up.New = r.tuple("update new")
		m = up
	case TypeDelete:
		del := &Delete{RelationID: r.u32("delete")}
		k := r.u8("delete tuple kind")
		if r.err == nil && k != OldKey && k != OldFull {
			return nil, fmt.Errorf("%w: delete: want old tuple 'K' or 'O', got %q", ErrMalformed, k)
		}
		del.OldKind = k
		del.Old = r.tuple("delete old")
		m = del
	case TypeTruncate:
		n := int(r.u32("truncate"))
		tr := &Truncate{Options: r.u8("truncate options")}
		if r.err == nil && n > len(r.b)/4 {
			r.fail("truncate relations")
		} else if r.err == nil {
			tr.RelationIDs = make([]uint32, n)
			for i := range tr.RelationIDs {
				tr.RelationIDs[i] = r.u32("truncate relation")
			}
		}
		m = tr
	case TypeMessage:
		lm := &LogicalMessage{Transactional: r.u8("message flags")&1 == 1, LSN: r.u64("message"), Prefix: r.cstring("message prefix")}
		l := r.u32("message length")
		lm.Content = r.bytes(int(l), "message content")
		m = lm
	default:
		return nil, fmt.Errorf("%w: unknown message type %q", ErrMalformed, data[0])
	}
	if r.err != nil {
		return nil, fmt.Errorf("pgoutput: %c: %w", data[0], r.err)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("pgoutput: %c: %w: %d bytes left over", data[0], ErrMalformed, len(r.b))
	}
	return m, nil
}
