package origin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/freshet/freshet/pkg/pipeline"
)

// errNotFound: no row has the url.
var errNotFound = errors.New("not found")

// keySeparator joins the values of a multi-column key into the content id,
// as the cdc-ingestor does.
const keySeparator = "/"

// column is one selected column: the event field it maps to.
type column struct {
	field string // "title", "tags", "attributes.author"
	list  bool   // a list field, selected as JSON
}

// source reads items from the content table.
type source struct {
	table       *pipeline.Table
	cols        []column
	keyCols     int // the first keyCols selected columns are the key
	defaultKind string
	byURLSQL    string
	listSQL     map[string]string // route kind → query, $1 the name
	limit       int
}

// newSource plans the queries of the content table name (or the first
// content table) of p.
func newSource(p *pipeline.Pipeline, name string, limit int) (*source, error) {
	tables := p.ContentTables()
	var t *pipeline.Table
	for _, c := range tables {
		if name == "" || c.Name == name || c.Relation() == name && c.Schema() == "public" {
			t = c
			break
		}
	}
	switch {
	case t == nil && name == "":
		return nil, errors.New("the pipeline captures no content table")
	case t == nil:
		return nil, fmt.Errorf("table %q is not a content table of the pipeline", name)
	}
	urlCol, ok := t.Columns[pipeline.FieldURL]
	if !ok {
		return nil, fmt.Errorf("table %s maps no column to url: the origin finds pages by url", t.Name)
	}
	s := &source{table: t, defaultKind: t.DefaultKind, listSQL: map[string]string{}, limit: limit}
	var sel []string
	keys := t.Key
	if len(keys) == 0 {
		keys = []string{t.Columns[pipeline.FieldID]}
	}
	for _, k := range keys {
		sel = append(sel, pgx.Identifier{k}.Sanitize()) // text output, as pgoutput sends it
	}
	s.keyCols = len(keys)
	fields := make([]string, 0, len(t.Columns))
	for f := range t.Columns {
		if f != pipeline.FieldID { // the id is the key, as in events
			fields = append(fields, f)
		}
	}
	slices.Sort(fields)
	for _, f := range fields {
		s.add(&sel, f, t.Columns[f])
	}
	attrs := make([]string, 0, len(t.Attributes))
	for a := range t.Attributes {
		attrs = append(attrs, a)
	}
	slices.Sort(attrs)
	for _, a := range attrs {
		s.add(&sel, "attributes."+a, t.Attributes[a])
	}
	from := pgx.Identifier{t.Schema(), t.Relation()}.Sanitize()
	order := make([]string, len(keys))
	for i, k := range keys {
		order[i] = pgx.Identifier{k}.Sanitize() + " DESC"
	}
	head := "SELECT " + strings.Join(sel, ", ") + " FROM " + from + " WHERE "
	s.byURLSQL = head + pgx.Identifier{urlCol}.Sanitize() + " = $1 ORDER BY " + strings.Join(order, ", ") + " LIMIT 1"
	tail := fmt.Sprintf(" ORDER BY %s LIMIT %d", strings.Join(order, ", "), limit)
	if c, ok := t.Columns[pipeline.FieldTags]; ok {
		s.listSQL[routeTag] = head + "$1 = ANY(" + pgx.Identifier{c}.Sanitize() + "::text[])" + tail
	}
	if c, ok := t.Columns[pipeline.FieldSection]; ok {
		s.listSQL[routeSection] = head + pgx.Identifier{c}.Sanitize() + "::text = $1" + tail
	}
	if c, ok := t.Attributes["author"]; ok {
		s.listSQL[routeAuthor] = head + pgx.Identifier{c}.Sanitize() + "::text = $1" + tail
	}
	return s, nil
}

// add selects column col for field f: a list as a JSON array of its
// elements' text, a scalar as its text output.
func (s *source) add(sel *[]string, f, col string) {
	id := pgx.Identifier{col}.Sanitize()
	list := f == pipeline.FieldTags || f == pipeline.FieldSurrogateKeys
	if list {
		id = "to_json(" + id + "::text[])"
	}
	*sel = append(*sel, id)
	s.cols = append(s.cols, column{field: f, list: list})
}

// listField is the event field a list route filters on.
func listField(kind string) string {
	switch kind {
	case routeTag:
		return pipeline.FieldTags
	case routeSection:
		return pipeline.FieldSection
	case routeAuthor:
		return "attributes.author"
	}
	return ""
}

// byURL reads the item at path.
func (s *source) byURL(ctx context.Context, db *pgxpool.Pool, path string) (*Item, error) {
	items, err := s.query(ctx, db, s.byURLSQL, path)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, errNotFound
	}
	return &items[0], nil
}

// list reads the items of a list route, and the fields of the change that
// holds only the list's field (whose keys are the list's own).
func (s *source) list(ctx context.Context, db *pgxpool.Pool, rt route) ([]Item, pipeline.Fields, error) {
	q, ok := s.listSQL[rt.kind]
	if !ok {
		return nil, nil, errNotFound // the table maps no column to the field
	}
	items, err := s.query(ctx, db, q, rt.name)
	if err != nil {
		return nil, nil, err
	}
	return items, pipeline.Fields{listField(rt.kind): {rt.name}}, nil
}

// query runs q in the text result format, so every value is the text
// Postgres prints for it: what the cdc-ingestor reads from pgoutput.
func (s *source) query(ctx context.Context, db *pgxpool.Pool, q string, arg string) ([]Item, error) {
	rows, err := db.Query(ctx, q, pgx.QueryResultFormats{pgx.TextFormatCode}, arg)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", s.table.Name, err)
	}
	defer rows.Close()
	var items []Item
	for rows.Next() {
		it, err := s.item(rows.RawValues())
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query %s: %w", s.table.Name, err)
	}
	return items, nil
}

// item builds an Item and its template fields from one row's raw values.
func (s *source) item(raw [][]byte) (Item, error) {
	var it Item
	f := pipeline.Fields{}
	key := make([]string, s.keyCols)
	for i := range s.keyCols {
		key[i] = string(raw[i])
	}
	it.ID = strings.Join(key, keySeparator)
	f[pipeline.FieldID] = []string{it.ID}
	for i, c := range s.cols {
		v := raw[s.keyCols+i]
		if v == nil {
			continue // NULL
		}
		if c.list {
			var els []*string
			if err := json.Unmarshal(v, &els); err != nil {
				return Item{}, fmt.Errorf("table %s: %s: %w", s.table.Name, c.field, err)
			}
			var list []string
			for _, e := range els {
				if e != nil && *e != "" {
					list = append(list, *e)
				}
			}
			if len(list) > 0 {
				f[c.field] = list
			}
			continue
		}
		if len(v) > 0 {
			f[c.field] = []string{string(v)}
		}
	}
	if _, ok := f[pipeline.FieldKind]; !ok && s.defaultKind != "" {
		f[pipeline.FieldKind] = []string{s.defaultKind}
	}
	one := func(name string) string {
		if v := f[name]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	it.Kind, it.Title, it.Summary, it.Body = one(pipeline.FieldKind), one(pipeline.FieldTitle), one(pipeline.FieldSummary), one(pipeline.FieldBody)
	it.Tags, it.Section, it.Locale = f[pipeline.FieldTags], one(pipeline.FieldSection), one(pipeline.FieldLocale)
	it.URL, it.Version = one(pipeline.FieldURL), one(pipeline.FieldVersion)
	for name, v := range f {
		if a, ok := strings.CutPrefix(name, "attributes."); ok {
			if it.Attributes == nil {
				it.Attributes = map[string]string{}
			}
			it.Attributes[a] = v[0]
		}
	}
	it.fields = f
	return it, nil
}
