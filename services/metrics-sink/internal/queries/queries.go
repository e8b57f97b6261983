// Package queries runs the ready-made questions of
// schemas/clickhouse/queries and prints their answers as a table.
//
// A query file may hold two placeholders: {since}, replaced by a DateTime
// literal, and {event}, replaced by a quoted change event id (” for every
// change). The functions are safe for concurrent use.
package queries

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/freshet/freshet/schemas"
	"github.com/freshet/freshet/services/metrics-sink/internal/chschema"
)

// ErrUnknown is returned for a query name that has no file.
var ErrUnknown = errors.New("unknown query")

func files() map[string]string {
	m, err := chschema.Files(schemas.ClickHouse)
	if err != nil {
		panic(err) // the files are compiled in
	}
	return m
}

// Names lists the ready-made queries, sorted.
func Names() []string { return slices.Sorted(maps.Keys(files())) }

var eventRe = regexp.MustCompile(`^[A-Za-z0-9_.:-]{0,128}$`)

// SQL returns query name with its placeholders filled: rows since since,
// and only change event (when not "").
func SQL(name string, since time.Time, event string) (string, error) {
	q, ok := files()[name]
	if !ok {
		return "", fmt.Errorf("%w %q (have: %s)", ErrUnknown, name, strings.Join(Names(), ", "))
	}
	if !eventRe.MatchString(event) {
		return "", fmt.Errorf("event id %q: want letters, digits and _ . : -", event)
	}
	return Fill(q, since, event), nil
}

// Fill replaces the placeholders of a query text.
func Fill(q string, since time.Time, event string) string {
	return strings.NewReplacer(
		"{since}", fmt.Sprintf("toDateTime(%d)", max(since.Unix(), 0)),
		"{event}", "'"+event+"'",
	).Replace(q)
}

// Result is the answer to a query, as text.
type Result struct {
	Columns []string
	Rows    [][]string
}

// Run runs query name and returns its answer.
func Run(ctx context.Context, conn driver.Conn, name string, since time.Time, event string) (Result, error) {
	q, err := SQL(name, since, event)
	if err != nil {
		return Result{}, err
	}
	return Query(ctx, conn, q)
}

// Query runs any query and returns its answer as text.
func Query(ctx context.Context, conn driver.Conn, q string) (Result, error) {
	rs, err := conn.Query(ctx, q)
	if err != nil {
		return Result{}, err
	}
	defer rs.Close()
	var res Result
	res.Columns = rs.Columns()
	types := rs.ColumnTypes()
	for rs.Next() {
		dest := make([]any, len(types))
		for i, ct := range types {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rs.Scan(dest...); err != nil {
			return Result{}, err
		}
		row := make([]string, len(dest))
		for i, d := range dest {
			row[i] = format(reflect.ValueOf(d).Elem().Interface())
		}
		res.Rows = append(res.Rows, row)
	}
	return res, rs.Err()
}

func format(v any) string {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32)
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04:05")
	case *string:
		if x == nil {
			return "NULL"
		}
		return *x
	}
	return fmt.Sprint(v)
}

// Print writes r as an aligned table, or "(no rows)".
func (r Result) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(r.Columns, "\t"))
	dashes := make([]string, len(r.Columns))
	for i, c := range r.Columns {
		dashes[i] = strings.Repeat("-", len([]rune(c)))
	}
	fmt.Fprintln(tw, strings.Join(dashes, "\t"))
	for _, row := range r.Rows {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if len(r.Rows) == 0 {
		fmt.Fprintln(tw, "(no rows)")
	}
	return tw.Flush()
}
