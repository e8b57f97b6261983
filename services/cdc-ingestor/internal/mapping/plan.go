package mapping

import (
	"fmt"
	"sort"
	"strings"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/services/cdc-ingestor/internal/pgoutput"
)

// KeySeparator joins the values of several key columns into one content or
// user id.
const KeySeparator = "/"

// Plan maps the rows of one relation to events of one captured table.
type Plan struct {
	// Table is the pipeline's captured table.
	Table *pipeline.Table
	// Relation is what Postgres last said about the table.
	Relation *pgoutput.Relation

	name   string         // schema.table
	fields map[string]int // event field → column index
	attrs  []attr         // attributes, sorted by name
	keys   []int          // key column indexes, in Table.Key order
}

type attr struct {
	name string
	col  int
}

// NewPlan returns the plan of table for rel. Every key column must be in
// the relation; a mapped column that is not (yet) is left out of events
// until a relation message adds it.
func NewPlan(table *pipeline.Table, rel *pgoutput.Relation) (*Plan, error) {
	idx := make(map[string]int, len(rel.Columns))
	for i, c := range rel.Columns {
		idx[c.Name] = i
	}
	p := &Plan{Table: table, Relation: rel, name: rel.Namespace + "." + rel.Name, fields: map[string]int{}}
	for field, col := range table.Columns {
		if i, ok := idx[col]; ok {
			p.fields[field] = i
		}
	}
	for name, col := range table.Attributes {
		if i, ok := idx[col]; ok {
			p.attrs = append(p.attrs, attr{name, i})
		}
	}
	sort.Slice(p.attrs, func(i, j int) bool { return p.attrs[i].name < p.attrs[j].name })
	for _, col := range KeyColumns(table) {
		i, ok := idx[col]
		if !ok {
			return nil, fmt.Errorf("table %s: key column %q is not in the table (columns: %s)", p.name, col, columnNames(rel))
		}
		p.keys = append(p.keys, i)
	}
	return p, nil
}

// KeyColumns returns the columns that identify a row of table: its key, or
// the column mapped to id (content) or user_id (profile).
func KeyColumns(table *pipeline.Table) []string {
	if len(table.Key) > 0 {
		return table.Key
	}
	f := pipeline.FieldID
	if table.Event == pipeline.EventProfile {
		f = pipeline.FieldUserID
	}
	return []string{table.Columns[f]}
}

func columnNames(rel *pgoutput.Relation) string {
	names := make([]string, len(rel.Columns))
	for i, c := range rel.Columns {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

// Name returns the table's schema.table.
func (p *Plan) Name() string { return p.name }

// Change is one row change as the stream or the snapshot saw it.
type Change struct {
	Op events.Op
	// New is the row after an insert or update; nil for a delete.
	New pgoutput.Tuple
	// Old is the old row (OldKind OldFull), the old key (OldKey), or nil.
	Old     pgoutput.Tuple
	OldKind byte
	// Source says where the change came from; Table is set by the plan.
	Source events.Source
}

// Key returns the text form of the key columns of t (joined with "/"), and
// false when one of them is null or was not sent.
func (p *Plan) Key(t pgoutput.Tuple) (string, bool) {
	if len(p.keys) == 1 {
		i := p.keys[0]
		if i >= len(t) || t[i].Kind != pgoutput.KindText {
			return "", false
		}
		return validUTF8(string(t[i].Data)), true
	}
	parts := make([]string, len(p.keys))
	for n, i := range p.keys {
		if i >= len(t) || t[i].Kind != pgoutput.KindText {
			return "", false
		}
		parts[n] = validUTF8(string(t[i].Data))
	}
	return strings.Join(parts, KeySeparator), true
}

// state of a field's value in a change.
type state int

const (
	absent  state = iota // not mapped, or the column is not in the relation
	null                 // SQL NULL
	missing              // the source did not send it
	present
)

// row reads the values of one side (new or old) of a change.
type row struct {
	p      *Plan
	t      pgoutput.Tuple
	fill   pgoutput.Tuple // the full old row, to fill unchanged TOAST values
	keyed  bool           // t is a key tuple: only key columns were sent
	prefix string         // "before." for the old side
	miss   []string
}

func (r *row) col(i int, name string) (string, state) {
	if i >= len(r.t) {
		r.miss = append(r.miss, r.prefix+name)
		return "", missing
	}
	v := r.t[i]
	if r.keyed && !r.p.isKey(i) {
		r.miss = append(r.miss, r.prefix+name)
		return "", missing
	}
	if v.Kind == pgoutput.KindUnchanged && r.fill != nil && i < len(r.fill) {
		v = r.fill[i]
	}
	switch v.Kind {
	case pgoutput.KindNull:
		return "", null
	case pgoutput.KindText:
		return validUTF8(string(v.Data)), present
	}
	// An unchanged TOAST value without the old row, or a binary value.
	r.miss = append(r.miss, r.prefix+name)
	return "", missing
}

func (r *row) field(f string) (string, state) {
	i, ok := r.p.fields[f]
	if !ok {
		return "", absent
	}
	return r.col(i, f)
}

func (p *Plan) isKey(i int) bool {
	for _, k := range p.keys {
		if k == i {
			return true
		}
	}
	return false
}

func (r *row) str(f string) string { s, _ := r.field(f); return s }

func (r *row) list(f string) ([]string, error) {
	s, st := r.field(f)
	if st != present {
		return nil, nil
	}
	l, err := ParseList(s)
	if err != nil {
		return nil, fmt.Errorf("column %s (%s): %w", r.p.Table.Columns[f], f, err)
	}
	return l, nil
}

func (r *row) attributes() map[string]string {
	if len(r.p.attrs) == 0 {
		return nil
	}
	m := make(map[string]string, len(r.p.attrs))
	for _, a := range r.p.attrs {
		if s, st := r.col(a.col, "attributes."+a.name); st == present {
			m[a.name] = s
		}
	}
	return m
}

func (r *row) version(commitLSN uint64) (int64, error) {
	s, st := r.field(pipeline.FieldVersion)
	if st != present {
		return int64(commitLSN), nil
	}
	v, err := ParseInt(s)
	if err != nil {
		return 0, fmt.Errorf("column %s (version): %w", r.p.Table.Columns[pipeline.FieldVersion], err)
	}
	return v, nil
}

// sides returns the row the event describes (new, or old for a delete) and
// the old row when the source sent it.
func (p *Plan) sides(ch Change) (cur *row, old *row) {
	var fill pgoutput.Tuple
	if ch.OldKind == pgoutput.OldFull {
		fill = ch.Old
	}
	if ch.Op == events.OpDelete {
		return &row{p: p, t: ch.Old, keyed: ch.OldKind != pgoutput.OldFull}, nil
	}
	cur = &row{p: p, t: ch.New, fill: fill}
	if ch.OldKind == pgoutput.OldFull {
		old = &row{p: p, t: ch.Old, prefix: "before."}
	}
	return cur, old
}

// OldKey returns the key of the old row of an update when the update
// changed the key (so the old key's item is gone), else "" and false.
func (p *Plan) OldKey(ch Change) (string, bool) {
	if ch.Op != events.OpUpdate || ch.Old == nil {
		return "", false
	}
	oldKey, ok := p.Key(ch.Old)
	if !ok {
		return "", false
	}
	newKey, ok := p.Key(ch.New)
	if ok && newKey == oldKey {
		return "", false
	}
	return oldKey, true
}

// identify returns the key of the row an event describes, the event's
// source and its id, events.ChangeID(db, table, lsn, key).
func (p *Plan) identify(cur *row, ch Change) (string, events.Source, string, error) {
	id, ok := p.Key(cur.t)
	if !ok {
		return "", events.Source{}, "", fmt.Errorf("table %s: %w: a key column (%s) is null or was not sent", p.name, ErrValue, strings.Join(KeyColumns(p.Table), ", "))
	}
	src := ch.Source
	src.Table = p.name
	return id, src, events.ChangeID(src.DB, src.Table, src.LSN, id), nil
}

// Content maps a change of a content table to a ContentChange. The event id
// is events.ChangeID(db, table, lsn, content id).
func (p *Plan) Content(ch Change) (events.ContentChange, error) {
	cur, old := p.sides(ch)
	id, src, eventID, err := p.identify(cur, ch)
	if err != nil {
		return events.ContentChange{}, err
	}
	c := events.ContentChange{
		EventID:   eventID,
		Source:    src,
		Trace:     events.Trace{CommittedAt: src.CommitTime},
		Op:        ch.Op,
		ContentID: id,
		Kind:      cur.str(pipeline.FieldKind),
		Title:     cur.str(pipeline.FieldTitle),
		Summary:   cur.str(pipeline.FieldSummary),
		Section:   cur.str(pipeline.FieldSection),
		Locale:    cur.str(pipeline.FieldLocale),
		URLPath:   cur.str(pipeline.FieldURL),
	}
	if c.Kind == "" {
		c.Kind = p.Table.DefaultKind
	}
	if s, st := cur.field(pipeline.FieldBody); st == present {
		c.Body = &s
	}
	if c.Tags, err = cur.list(pipeline.FieldTags); err != nil {
		return c, fmt.Errorf("table %s: %w", p.name, err)
	}
	if c.SurrogateKeys, err = cur.list(pipeline.FieldSurrogateKeys); err != nil {
		return c, fmt.Errorf("table %s: %w", p.name, err)
	}
	if c.Version, err = cur.version(src.CommitLSN); err != nil {
		return c, fmt.Errorf("table %s: %w", p.name, err)
	}
	c.Attributes = cur.attributes()
	if old != nil {
		b := &events.ContentBefore{
			Kind: old.str(pipeline.FieldKind), Title: old.str(pipeline.FieldTitle),
			Section: old.str(pipeline.FieldSection), Locale: old.str(pipeline.FieldLocale),
			URLPath: old.str(pipeline.FieldURL), Attributes: old.attributes(),
		}
		if b.Kind == "" {
			b.Kind = p.Table.DefaultKind
		}
		if b.Tags, err = old.list(pipeline.FieldTags); err != nil {
			return c, fmt.Errorf("table %s: old row: %w", p.name, err)
		}
		if b.SurrogateKeys, err = old.list(pipeline.FieldSurrogateKeys); err != nil {
			return c, fmt.Errorf("table %s: old row: %w", p.name, err)
		}
		if b.Version, err = old.version(src.CommitLSN); err != nil {
			return c, fmt.Errorf("table %s: old row: %w", p.name, err)
		}
		c.Before = b
		cur.miss = append(cur.miss, old.miss...)
	}
	c.MissingFields = cur.miss
	return c, nil
}

// Profile maps a change of the profile table to a UserProfile snapshot. A
// delete, or a row whose deleted column is true, has Deleted set.
func (p *Plan) Profile(ch Change) (events.UserProfile, error) {
	cur, _ := p.sides(ch)
	id, src, eventID, err := p.identify(cur, ch)
	if err != nil {
		return events.UserProfile{}, err
	}
	u := events.UserProfile{
		EventID:   eventID,
		Source:    src,
		Trace:     events.Trace{CommittedAt: src.CommitTime},
		UserID:    id,
		Deleted:   ch.Op == events.OpDelete,
		Locale:    cur.str(pipeline.FieldLocale),
		Region:    cur.str(pipeline.FieldRegion),
		UpdatedAt: src.CommitTime,
	}
	if s, st := cur.field(pipeline.FieldInterests); st == present {
		if u.Interests, err = ParseInterests(s); err != nil {
			return u, fmt.Errorf("table %s: column %s (interests): %w", p.name, p.Table.Columns[pipeline.FieldInterests], err)
		}
	}
	if u.Follows, err = cur.list(pipeline.FieldFollows); err != nil {
		return u, fmt.Errorf("table %s: %w", p.name, err)
	}
	if u.Segments, err = cur.list(pipeline.FieldSegments); err != nil {
		return u, fmt.Errorf("table %s: %w", p.name, err)
	}
	if s, st := cur.field(pipeline.FieldDeleted); st == present {
		d, err := ParseBool(s)
		if err != nil {
			return u, fmt.Errorf("table %s: column %s (deleted): %w", p.name, p.Table.Columns[pipeline.FieldDeleted], err)
		}
		u.Deleted = u.Deleted || d
	}
	if s, st := cur.field(pipeline.FieldUpdatedAt); st == present {
		if u.UpdatedAt, err = ParseTime(s); err != nil {
			return u, fmt.Errorf("table %s: column %s (updated_at): %w", p.name, p.Table.Columns[pipeline.FieldUpdatedAt], err)
		}
	}
	u.MissingFields = cur.miss
	return u, nil
}

// Raw returns the values of a tuple by column name (null as nil), for a
// dead-letter record of a row that could not be mapped.
func (p *Plan) Raw(t pgoutput.Tuple) map[string]any {
	return RawValues(p.Relation, t)
}

// RawValues returns the values of a tuple of rel by column name: text as a
// string, NULL as nil, an unchanged TOAST value as "(unchanged toast)".
func RawValues(rel *pgoutput.Relation, t pgoutput.Tuple) map[string]any {
	m := make(map[string]any, len(t))
	for i, v := range t {
		name := fmt.Sprintf("column%d", i+1)
		if rel != nil && i < len(rel.Columns) {
			name = rel.Columns[i].Name
		}
		switch v.Kind {
		case pgoutput.KindText, pgoutput.KindBinary:
			m[name] = validUTF8(string(v.Data))
		case pgoutput.KindUnchanged:
			m[name] = "(unchanged toast)"
		default:
			m[name] = nil
		}
	}
	return m
}
