package rows_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/freshet/freshet/services/metrics-sink/internal/rows"
)

// TestKeepArrays: Keep drops the rows of the flat array columns as it
// does those of the others, and leaves Flat's items and ends consistent.
func TestKeepArrays(t *testing.T) {
	for _, mask := range [][]bool{
		{true, false, true, false, true, true},
		{false, false, false, false, false, false},
		{true, true, true, true, true, true},
		{false, true, false, true, false, false},
	} {
		s := rows.NewSet()
		beacons := rumBeacons()[:len(mask)]
		for i := range beacons {
			if err := s.Add(rows.Beacons, &beacons[i], 0, int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		tb := s.Table(rows.Beacons)
		want := map[string][]any{}
		for _, c := range tb.Columns() {
			v := reflect.ValueOf(c.Values())
			for i, ok := range mask {
				if ok {
					want[c.Name()] = append(want[c.Name()], clone(v.Index(i).Interface()))
				}
			}
		}
		tb.Keep(mask)
		for _, c := range tb.Columns() {
			v := reflect.ValueOf(c.Values())
			var got []any
			for i := range v.Len() {
				got = append(got, v.Index(i).Interface())
			}
			if !reflect.DeepEqual(floatless(got), floatless(want[c.Name()])) {
				t.Fatalf("mask %v, %s: %v, want %v", mask, c.Name(), got, want[c.Name()])
			}
			if f, ok := c.(rows.Flat); ok {
				items, ends := f.Flat()
				if len(ends) != tb.Len() || len(ends) > 0 && int(ends[len(ends)-1]) != itemCount(items) {
					t.Fatalf("%s: %d ends for %d rows, items %v", c.Name(), len(ends), tb.Len(), items)
				}
			}
			if s, ok := c.(rows.Strings); ok {
				buf, ends := s.Strings()
				if len(ends) != tb.Len() || len(ends) > 0 && int(ends[len(ends)-1]) != len(buf) {
					t.Fatalf("%s: %d ends for %d rows, %d bytes", c.Name(), len(ends), tb.Len(), len(buf))
				}
			}
		}
	}
}

// itemCount is the number of items of a Flat column: its strings, or
// the length of its slice.
func itemCount(items any) int {
	if s, ok := items.(rows.Strings); ok {
		buf, ends := s.Strings()
		if len(ends) > 0 && int(ends[len(ends)-1]) != len(buf) {
			return -1 // the strings' own ends disagree with their bytes
		}
		return len(ends)
	}
	return reflect.ValueOf(items).Len()
}

// clone copies a row of an array column (Values' rows are the column's
// own items, which Keep moves).
func clone(x any) any {
	switch v := x.(type) {
	case []string:
		return slices.Clone(v)
	case []float64:
		return slices.Clone(v)
	}
	return x
}

// floatless turns []float64 rows into their bits (NaN is not DeepEqual
// to itself).
func floatless(v []any) []any {
	out := make([]any, len(v))
	for i, x := range v {
		if f, ok := x.([]float64); ok {
			out[i] = floatBits([][]float64{f})[0]
		} else {
			out[i] = x
		}
	}
	return out
}
