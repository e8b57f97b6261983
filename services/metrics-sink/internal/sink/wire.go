package sink

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/freshet/freshet/services/metrics-sink/internal/rows"
)

// clickhouse-go appends a slice of numbers or times to its column one
// value at a time, so the column grows by doubling, and it makes a slice
// of null flags as long as the values for every column it is handed: a
// batch of 50,000 rows cost a sixth of the bytes the sink allocated that
// way. What it has besides is Decode, which reads a column in the native
// format of the wire into a column of exactly that size: for numbers and
// times, the values' little-endian bytes one after the other; for
// strings, each one's length then its bytes, which is close to how the
// rows hold them (rows.Strings), so they need no []string either. So the
// columns of a table go to the batch in that format, written into a
// buffer the sink keeps (scratch), and are decoded from there.

// scratch is the buffer the columns of a batch are written into, kept
// from one batch to the next.
type scratch struct{ buf []byte }

// appendWire appends values to c, an empty column, through Decode, and
// reports whether it could: values must be a slice of uint8, uint16,
// uint32, uint64, int64 or float64 into a column of the same type
// (UInt8...Float64), or of times into a DateTime column (stored as
// clickhouse-go stores them, proto.ToDateTime).
func appendWire(c column.Interface, values any, sc *scratch) (bool, error) {
	if c.Rows() != 0 {
		return false, nil
	}
	typ := string(c.Type())
	le := binary.LittleEndian
	switch v := values.(type) {
	case []uint8:
		return decodeWire(c, typ == "UInt8", sc, len(v), func(b []byte) []byte { return append(b, v...) })
	case []uint16:
		return decodeWire(c, typ == "UInt16", sc, len(v), func(b []byte) []byte { return each(b, v, le.AppendUint16) })
	case []uint32:
		return decodeWire(c, typ == "UInt32", sc, len(v), func(b []byte) []byte { return each(b, v, le.AppendUint32) })
	case []uint64:
		return decodeWire(c, typ == "UInt64", sc, len(v), func(b []byte) []byte { return each(b, v, le.AppendUint64) })
	case []int64:
		return decodeWire(c, typ == "Int64", sc, len(v), func(b []byte) []byte {
			return each(b, v, func(b []byte, x int64) []byte { return le.AppendUint64(b, uint64(x)) })
		})
	case []float64:
		return decodeWire(c, typ == "Float64", sc, len(v), func(b []byte) []byte {
			return each(b, v, func(b []byte, x float64) []byte { return le.AppendUint64(b, math.Float64bits(x)) })
		})
	case []time.Time:
		dt := typ == "DateTime" || strings.HasPrefix(typ, "DateTime(")
		return decodeWire(c, dt, sc, len(v), func(b []byte) []byte {
			return each(b, v, func(b []byte, t time.Time) []byte { return le.AppendUint32(b, uint32(proto.ToDateTime(t))) })
		})
	}
	return false, nil
}

// appendStrings appends the values of s to c, an empty String column,
// through Decode, and reports whether it could.
func appendStrings(c column.Interface, s rows.Strings, sc *scratch) (bool, error) {
	if c.Rows() != 0 || c.Type() != "String" {
		return false, nil
	}
	_, ends := s.Strings()
	return decodeWire(c, true, sc, len(ends), func(b []byte) []byte { return putStrings(b, s) })
}

// putStrings appends the values of s to b in the wire's format of a
// String column: each one's length (a uvarint), then its bytes.
func putStrings(b []byte, s rows.Strings) []byte {
	buf, ends := s.Strings()
	b = slices.Grow(b, len(buf)+2*len(ends))
	start := uint32(0)
	for _, end := range ends {
		b = binary.AppendUvarint(b, uint64(end-start))
		b = append(b, buf[start:end]...)
		start = end
	}
	return b
}

// decodeWire, when the column's type matches, writes n values with put
// into sc's buffer and decodes them into c.
func decodeWire(c column.Interface, matches bool, sc *scratch, n int, put func([]byte) []byte) (bool, error) {
	if !matches {
		return false, nil
	}
	if n == 0 {
		return true, nil
	}
	sc.buf = put(sc.buf[:0])
	return true, c.Decode(proto.NewReader(bytes.NewReader(sc.buf)), n)
}

// each appends every value of v to b with put.
func each[T any](b []byte, v []T, put func([]byte, T) []byte) []byte {
	for _, x := range v {
		b = put(b, x)
	}
	return b
}
