package rows

// The strings of a table are stored flat, column by column: their bytes
// one after the other, and the end of each. A column of Go strings (a
// pointer and a length per value, into memory of its own) was most of
// what the garbage collector had to scan in the sink: the rows of two
// batches are live at once, and under the sink's memory limit the
// collector ran back to back, scanning them every time. Flat, a string
// costs its bytes and four more, and nothing to scan; and it is close to
// what ClickHouse's native format of a String column is (each value's
// length, then its bytes), which the sink writes from it.

// Strings is implemented by the String columns of a table, and the items
// of its Array(String) columns (Flat).
type Strings interface {
	// Strings returns the bytes of every value one after the other, and
	// the end of each in them: value i is buf[ends[i-1]:ends[i]], the
	// first buf[:ends[0]]. Both are the column's own, valid until the
	// table is changed.
	Strings() (buf []byte, ends []uint32)
}

var (
	_ Strings = (*strCol)(nil)
	_ Strings = (*strs)(nil)
	_ Flat    = (*strArrCol)(nil)
)

// strs is strings stored flat.
type strs struct {
	buf  []byte
	ends []uint32
}

func (s *strs) Strings() ([]byte, []uint32) { return s.buf, s.ends }

// add appends a copy of v.
func (s *strs) add(v string) {
	s.buf = append(s.buf, v...)
	s.ends = append(s.ends, uint32(len(s.buf)))
}

// addBytes appends a copy of b.
func (s *strs) addBytes(b []byte) {
	s.buf = append(s.buf, b...)
	s.ends = append(s.ends, uint32(len(s.buf)))
}

// bounds returns where value i starts and ends in buf.
func (s *strs) bounds(i int) (start, end uint32) {
	if i > 0 {
		start = s.ends[i-1]
	}
	return start, s.ends[i]
}

// at returns a copy of value i.
func (s *strs) at(i int) string {
	start, end := s.bounds(i)
	return string(s.buf[start:end])
}

// values returns a copy of values [from, to).
func (s *strs) values(from, to int) []string {
	out := make([]string, to-from)
	for i := range out {
		out[i] = s.at(from + i)
	}
	return out
}

func (s *strs) reset() {
	s.buf = s.buf[:0]
	s.ends = s.ends[:0]
}

// keepRuns keeps, of the values, the runs [from, to) that keep calls for,
// in order, and drops the others. It returns the number of values kept.
func (s *strs) keepRuns(runs func(keep func(from, to int))) int {
	n, kept := uint32(0), 0
	runs(func(from, to int) {
		for i := from; i < to; i++ {
			start, end := s.bounds(i)
			n += uint32(copy(s.buf[n:], s.buf[start:end]))
			s.ends[kept] = n
			kept++
		}
	})
	s.buf = s.buf[:n]
	s.ends = s.ends[:kept]
	return kept
}

// strCol is a String column.
type strCol struct {
	name string
	strs
}

func newStrCol(t *Table, name string) *strCol {
	c := &strCol{name: name}
	t.cols = append(t.cols, c)
	return c
}

func (c *strCol) Name() string { return c.name }

// Values returns a copy of the values, a []string.
func (c *strCol) Values() any { return c.values(0, len(c.ends)) }

func (c *strCol) keep(mask []bool) {
	c.keepRuns(func(keep func(from, to int)) {
		for i, ok := range mask {
			if ok {
				keep(i, i+1)
			}
		}
	})
}

// strArrCol is an Array(String) column, stored flat (Flat).
type strArrCol struct {
	name  string
	items strs
	ends  []uint64 // of each row in items
}

func newStrArrCol(t *Table, name string) *strArrCol {
	c := &strArrCol{name: name}
	t.cols = append(t.cols, c)
	return c
}

func (c *strArrCol) Name() string { return c.name }

// Values returns a copy of the rows, a [][]string; an empty row is an
// empty slice, never nil.
func (c *strArrCol) Values() any {
	out := make([][]string, len(c.ends))
	start := 0
	for i, end := range c.ends {
		out[i] = c.items.values(start, int(end))
		start = int(end)
	}
	return out
}

// Flat returns the items as Strings.
func (c *strArrCol) Flat() (any, []uint64) { return &c.items, c.ends }

// add appends a row holding a copy of v.
func (c *strArrCol) add(v []string) {
	for _, s := range v {
		c.items.add(s)
	}
	c.end()
}

// push appends an item to the row end closes.
func (c *strArrCol) push(v string) { c.items.add(v) }

// pushBytes appends a copy of b as an item to the row end closes.
func (c *strArrCol) pushBytes(b []byte) { c.items.addBytes(b) }

// end closes the row: the items pushed since the last end are its own.
func (c *strArrCol) end() { c.ends = append(c.ends, uint64(len(c.items.ends))) }

func (c *strArrCol) reset() {
	c.items.reset()
	c.ends = c.ends[:0]
}

func (c *strArrCol) keep(mask []bool) {
	rows := 0
	c.items.keepRuns(func(keep func(from, to int)) {
		start := uint64(0)
		kept := uint64(0)
		for i, ok := range mask {
			end := c.ends[i]
			if ok {
				keep(int(start), int(end))
				kept += end - start
				c.ends[rows] = kept
				rows++
			}
			start = end
		}
	})
	c.ends = c.ends[:rows]
}
