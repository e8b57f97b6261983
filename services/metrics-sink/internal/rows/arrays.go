package rows

// Flat is implemented by the array columns of a table: their rows are
// stored flat, as ClickHouse lays an Array column out on the wire (the
// end of each row, then the items of every row one after the other), so
// a row costs no slice of its own and a column can be handed over whole.
type Flat interface {
	// Flat returns the items of every row, one after the other
	// ([]string or []float64), and the end of each row in them: row i
	// is items[ends[i-1]:ends[i]], its first one items[:ends[0]]. Both
	// are the column's own, valid until the table is changed.
	Flat() (items any, ends []uint64)
}

var (
	_ Flat = (*arrCol[string])(nil)
	_ Flat = (*arrCol[float64])(nil)
)

// arrCol is a column of arrays, stored flat.
type arrCol[T any] struct {
	name  string
	items []T
	ends  []uint64
}

func newArrCol[T any](t *Table, name string) *arrCol[T] {
	c := &arrCol[T]{name: name}
	t.cols = append(t.cols, c)
	return c
}

func (c *arrCol[T]) Name() string { return c.name }

// Values returns the rows as a [][]T of slices of the items (no copy);
// an empty row is an empty slice, never nil.
func (c *arrCol[T]) Values() any {
	items := c.items
	if items == nil {
		items = []T{}
	}
	out := make([][]T, len(c.ends))
	start := uint64(0)
	for i, end := range c.ends {
		out[i] = items[start:end:end]
		start = end
	}
	return out
}

func (c *arrCol[T]) Flat() (any, []uint64) { return c.items, c.ends }

// add appends a row holding a copy of v.
func (c *arrCol[T]) add(v []T) {
	c.items = append(c.items, v...)
	c.end()
}

// push appends an item to the row end closes.
func (c *arrCol[T]) push(v T) { c.items = append(c.items, v) }

// end closes the row: the items pushed since the last end are its own.
func (c *arrCol[T]) end() { c.ends = append(c.ends, uint64(len(c.items))) }

func (c *arrCol[T]) reset() {
	clear(c.items)
	c.items = c.items[:0]
	c.ends = c.ends[:0]
}

func (c *arrCol[T]) keep(mask []bool) {
	n, rows := 0, 0
	start := uint64(0)
	for i, ok := range mask {
		end := c.ends[i]
		if ok {
			n += copy(c.items[n:], c.items[start:end])
			c.ends[rows] = uint64(n)
			rows++
		}
		start = end
	}
	clear(c.items[n:])
	c.items = c.items[:n]
	c.ends = c.ends[:rows]
}
