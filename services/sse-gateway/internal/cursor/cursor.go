package cursor

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// MaxPositions bounds the partitions of one cursor, and MaxLen its text,
// so that a hostile Last-Event-ID costs little to reject.
const (
	MaxPositions = 256
	MaxLen       = 64 * 42
	maxPartition = math.MaxInt32
)

// ErrMalformed is wrapped by every error of Parse.
var ErrMalformed = errors.New("malformed cursor")

// Pos is the next offset to deliver from one partition.
type Pos struct {
	Partition int32
	Offset    int64
}

// Cursor is a stream's position: at most one Pos per partition, sorted by
// partition. The zero value is the empty cursor.
type Cursor []Pos

// String writes c as Parse reads it: "p-o" pairs joined with ".".
func (c Cursor) String() string {
	return string(c.Append(nil))
}

// Append appends the text of c to dst.
func (c Cursor) Append(dst []byte) []byte {
	for i, p := range c {
		if i > 0 {
			dst = append(dst, '.')
		}
		dst = strconv.AppendInt(dst, int64(p.Partition), 10)
		dst = append(dst, '-')
		dst = strconv.AppendInt(dst, p.Offset, 10)
	}
	return dst
}

// Offset returns the offset of partition p, and whether c has it.
func (c Cursor) Offset(p int32) (int64, bool) {
	i := sort.Search(len(c), func(i int) bool { return c[i].Partition >= p })
	if i < len(c) && c[i].Partition == p {
		return c[i].Offset, true
	}
	return 0, false
}

// With returns c with partition p at offset o, added or replaced. c itself
// is not modified.
func (c Cursor) With(p int32, o int64) Cursor {
	i := sort.Search(len(c), func(i int) bool { return c[i].Partition >= p })
	out := make(Cursor, 0, len(c)+1)
	out = append(out, c[:i]...)
	out = append(out, Pos{p, o})
	if i < len(c) && c[i].Partition == p {
		i++
	}
	return append(out, c[i:]...)
}

// Parse reads a cursor written by String. Partitions must be strictly
// increasing, numbers decimal without sign or leading zeros, offsets not
// negative. The empty string is an error: a stream without a cursor has
// no Last-Event-ID at all.
func Parse(s string) (Cursor, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrMalformed)
	}
	if len(s) > MaxLen {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(s), MaxLen)
	}
	n := strings.Count(s, ".") + 1
	if n > MaxPositions {
		return nil, fmt.Errorf("%w: %d positions, at most %d", ErrMalformed, n, MaxPositions)
	}
	c := make(Cursor, 0, n)
	for i, part := range strings.Split(s, ".") {
		ps, os, ok := strings.Cut(part, "-")
		if !ok {
			return nil, fmt.Errorf("%w: position %d: want partition-offset", ErrMalformed, i)
		}
		p, err := number(ps, maxPartition)
		if err != nil {
			return nil, fmt.Errorf("%w: position %d: partition: %v", ErrMalformed, i, err)
		}
		o, err := number(os, math.MaxInt64)
		if err != nil {
			return nil, fmt.Errorf("%w: position %d: offset: %v", ErrMalformed, i, err)
		}
		if i > 0 && int32(p) <= c[i-1].Partition {
			return nil, fmt.Errorf("%w: position %d: partitions must increase", ErrMalformed, i)
		}
		c = append(c, Pos{int32(p), o})
	}
	return c, nil
}

func number(s string, limit int64) (int64, error) {
	if s == "" {
		return 0, errors.New("empty")
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, errors.New("leading zero")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("not a decimal number")
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v > limit {
		return 0, fmt.Errorf("out of range")
	}
	return v, nil
}
