package codec

import (
	"fmt"

	"github.com/freshet/freshet/pkg/codec/avrowire"
)

// Limits that keep decoding of outside bytes bounded.
const (
	// maxDepth bounds nesting while scanning, so a recursive writer schema
	// cannot exhaust the stack.
	maxDepth = 64
	// maxZeroSizeItems bounds the items of an array or map whose items
	// encode in zero bytes (nulls, empty records), which the input length
	// cannot bound.
	maxZeroSizeItems = 1 << 12
)

// scanner checks that b holds exactly one value of a schema before goavro
// decodes it: every length and count fits in the bytes that remain, every
// enum and union index is in range, and nothing is left over. goavro
// allocates by the counts it reads (up to 2^31 items), so this pass is what
// keeps a few hostile bytes from asking for gigabytes.
type scanner struct {
	b   []byte
	pos int
}

func scanValue(n *node, b []byte) error {
	s := scanner{b: b}
	if err := s.value(n, 0); err != nil {
		return err
	}
	if s.pos != len(b) {
		return fmt.Errorf("%w: %d bytes after the value", ErrMalformed, len(b)-s.pos)
	}
	return nil
}

func (s *scanner) remaining() int { return len(s.b) - s.pos }

// varint reads a zig-zag varint of at most maxBytes bytes.
func (s *scanner) varint(maxBytes int) (int64, error) {
	v, n := avrowire.Varint(s.b[s.pos:], maxBytes)
	switch {
	case n == 0:
		s.pos = len(s.b)
		return 0, fmt.Errorf("%w: varint at byte %d", ErrTruncated, s.pos)
	case n < 0:
		s.pos += maxBytes
		return 0, fmt.Errorf("%w: varint longer than %d bytes at byte %d", ErrMalformed, maxBytes, s.pos)
	}
	s.pos += n
	return v, nil
}

func (s *scanner) long() (int64, error) { return s.varint(10) }

func (s *scanner) int() (int64, error) {
	v, err := s.varint(5)
	if err != nil {
		return 0, err
	}
	if v < -1<<31 || v > 1<<31-1 {
		return 0, fmt.Errorf("%w: int out of range: %d", ErrMalformed, v)
	}
	return v, nil
}

func (s *scanner) skip(n int64) error {
	if n < 0 {
		return fmt.Errorf("%w: negative length %d at byte %d", ErrMalformed, n, s.pos)
	}
	if n > int64(s.remaining()) {
		return fmt.Errorf("%w: %d bytes needed at byte %d, %d left", ErrTruncated, n, s.pos, s.remaining())
	}
	s.pos += int(n)
	return nil
}

func (s *scanner) value(n *node, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: nesting deeper than %d", ErrMalformed, maxDepth)
	}
	switch n.kind {
	case kNull:
		return nil
	case kBoolean:
		if s.remaining() < 1 {
			return fmt.Errorf("%w: boolean at byte %d", ErrTruncated, s.pos)
		}
		if s.b[s.pos] > 1 {
			return fmt.Errorf("%w: boolean byte %#x", ErrMalformed, s.b[s.pos])
		}
		s.pos++
		return nil
	case kInt:
		_, err := s.int()
		return err
	case kLong:
		_, err := s.long()
		return err
	case kFloat:
		return s.skip(4)
	case kDouble:
		return s.skip(8)
	case kFixed:
		return s.skip(int64(n.size))
	case kBytes, kString:
		l, err := s.long()
		if err != nil {
			return err
		}
		return s.skip(l)
	case kEnum:
		i, err := s.int()
		if err != nil {
			return err
		}
		if i < 0 || i >= int64(len(n.symbols)) {
			return fmt.Errorf("%w: enum %s index %d out of range", ErrMalformed, n.name, i)
		}
		return nil
	case kUnion:
		i, err := s.long()
		if err != nil {
			return err
		}
		if i < 0 || i >= int64(len(n.branches)) {
			return fmt.Errorf("%w: union index %d out of range", ErrMalformed, i)
		}
		return s.value(n.branches[i], depth+1)
	case kRecord:
		for _, f := range n.fields {
			if err := s.value(f.typ, depth+1); err != nil {
				return err
			}
		}
		return nil
	case kArray:
		return s.blocks(n.items.minSize, func() error { return s.value(n.items, depth+1) })
	case kMap:
		return s.blocks(1+n.values.minSize, func() error {
			l, err := s.long()
			if err != nil {
				return err
			}
			if err := s.skip(l); err != nil {
				return err
			}
			return s.value(n.values, depth+1)
		})
	}
	return fmt.Errorf("%w: unsupported type %s", ErrMalformed, n.kind)
}

// blocks scans the blocks of an array or map whose items take at least
// itemMin bytes each.
func (s *scanner) blocks(itemMin int, item func() error) error {
	total := int64(0)
	for {
		count, err := s.long()
		if err != nil {
			return err
		}
		if count == 0 {
			return nil
		}
		if count < 0 {
			if count == -1<<63 {
				return fmt.Errorf("%w: block count out of range", ErrMalformed)
			}
			count = -count
			size, err := s.long()
			if err != nil {
				return err
			}
			if size < 0 {
				return fmt.Errorf("%w: negative block size %d", ErrMalformed, size)
			}
		}
		if itemMin > 0 {
			if count > int64(s.remaining()/itemMin) {
				return fmt.Errorf("%w: block of %d items at byte %d, %d bytes left", ErrTruncated, count, s.pos, s.remaining())
			}
		} else if total += count; total > maxZeroSizeItems {
			return fmt.Errorf("%w: more than %d empty items", ErrMalformed, maxZeroSizeItems)
		}
		for i := int64(0); i < count; i++ {
			if err := item(); err != nil {
				return err
			}
		}
	}
}
