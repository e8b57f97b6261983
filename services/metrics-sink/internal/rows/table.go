package rows

import (
	"strings"
)

// column is one column of a table being filled.
type column interface {
	// Name is the column's name in ClickHouse.
	Name() string
	// Values returns the column's values, a slice for Append.
	Values() any
	// keep drops the rows whose mask entry is false.
	keep(mask []bool)
	reset()
}

type col[T any] struct {
	name string
	v    []T
}

func (c *col[T]) Name() string { return c.name }
func (c *col[T]) Values() any  { return c.v }
func (c *col[T]) add(v T)      { c.v = append(c.v, v) }
func (c *col[T]) reset() {
	clear(c.v)
	c.v = c.v[:0]
}
func (c *col[T]) keep(mask []bool) {
	n := 0
	for i, ok := range mask {
		if ok {
			c.v[n] = c.v[i]
			n++
		}
	}
	clear(c.v[n:])
	c.v = c.v[:n]
}

func newCol[T any](t *Table, name string) *col[T] {
	c := &col[T]{name: name}
	t.cols = append(t.cols, c)
	return c
}

// Table holds the rows of one ClickHouse table, column by column, with the
// Kafka partition and offset of each row.
type Table struct {
	name   string
	cols   []column
	part   *col[uint32]
	offset *col[uint64]
	topic  *strCol // the topic column of a table that holds several topics' rows
}

func newTable(name string) *Table { return &Table{name: name} }

// finish adds the kafka_partition and kafka_offset columns, last.
func (t *Table) finish() {
	t.part = newCol[uint32](t, "kafka_partition")
	t.offset = newCol[uint64](t, "kafka_offset")
}

// Name is the table's name.
func (t *Table) Name() string { return t.name }

// Len is the number of rows held.
func (t *Table) Len() int { return len(t.offset.v) }

// Columns returns the columns, in the order of Insert's column list.
func (t *Table) Columns() []column { return t.cols }

// Insert returns the INSERT statement for PrepareBatch, naming every
// column (18.16 needs them named).
func (t *Table) Insert() string {
	names := make([]string, len(t.cols))
	for i, c := range t.cols {
		names[i] = c.Name()
	}
	return "INSERT INTO " + t.name + " (" + strings.Join(names, ", ") + ")"
}

// Position returns the Kafka partition and offset of row i.
func (t *Table) Position(i int) (int32, int64) {
	return int32(t.part.v[i]), int64(t.offset.v[i])
}

// Topic returns the topic row i was read from when the table holds rows
// of several topics (dlq_records), "" otherwise.
func (t *Table) Topic(i int) string {
	if t.topic == nil {
		return ""
	}
	return t.topic.at(i)
}

// TopicColumn names the column Topic reads, "" when there is none.
func (t *Table) TopicColumn() string {
	if t.topic == nil {
		return ""
	}
	return t.topic.name
}

// Keep drops the rows whose mask entry is false (len(mask) == Len()).
func (t *Table) Keep(mask []bool) {
	for _, c := range t.cols {
		c.keep(mask)
	}
}

// Reset empties the table, keeping its memory.
func (t *Table) Reset() {
	for _, c := range t.cols {
		c.reset()
	}
}

func (t *Table) position(partition int32, offset int64) {
	t.part.add(uint32(partition))
	t.offset.add(uint64(offset))
}

// StringSize returns the strings column i holds, and their bytes: the
// values of a String column, the items of an Array(String) one; zero for
// other columns.
func (t *Table) StringSize(i int) (n, bytes int) {
	var s Strings
	if f, ok := t.cols[i].(Flat); ok {
		items, _ := f.Flat()
		s, _ = items.(Strings)
	} else {
		s, _ = t.cols[i].(Strings)
	}
	if s == nil {
		return 0, 0
	}
	buf, ends := s.Strings()
	return len(ends), len(buf)
}
