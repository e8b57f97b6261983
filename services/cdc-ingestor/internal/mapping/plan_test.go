package mapping

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/services/cdc-ingestor/internal/pgoutput"
)

var contentTable = &pipeline.Table{
	Name: "public.content", Event: pipeline.EventContent, Topic: "content.changes", Key: []string{"id"},
	Columns:    map[string]string{"id": "id", "title": "title", "body": "body", "tags": "tags", "url": "url", "version": "version", "kind": "kind"},
	Attributes: map[string]string{"author": "author", "audience": "audience"}, DefaultKind: "article",
}

var contentRel = &pgoutput.Relation{ID: 1, Namespace: "public", Name: "content", ReplicaIdentity: 'd', Columns: []pgoutput.Column{
	{Key: true, Name: "id", TypeOID: 20}, {Name: "title", TypeOID: 25}, {Name: "body", TypeOID: 25},
	{Name: "tags", TypeOID: 1009}, {Name: "url", TypeOID: 25}, {Name: "version", TypeOID: 20}, {Name: "author", TypeOID: 25}, {Name: "kind", TypeOID: 25}}}

func text(s string) pgoutput.Value { return pgoutput.Value{Kind: pgoutput.KindText, Data: []byte(s)} }

var (
	sqlNull   = pgoutput.Value{Kind: pgoutput.KindNull}
	unchanged = pgoutput.Value{Kind: pgoutput.KindUnchanged}
	src       = events.Source{Origin: events.OriginReplication, DB: "app", LSN: 100, CommitLSN: 200, TxID: 7, CommitTime: time.Unix(1, 0).UTC()}
)

func TestContent(t *testing.T) {
	p, err := NewPlan(contentTable, contentRel)
	if err != nil {
		t.Fatal(err)
	}
	newRow := pgoutput.Tuple{text("42"), text("New"), unchanged, text("{go,pg}"), text("/a"), text("3"), text("ada"), sqlNull}
	oldRow := pgoutput.Tuple{text("42"), text("Old"), text("long body"), text("{go}"), text("/old"), text("2"), text("ada"), sqlNull}

	t.Run("update with full old row fills unchanged TOAST", func(t *testing.T) {
		c, err := p.Content(Change{Op: events.OpUpdate, New: newRow, Old: oldRow, OldKind: pgoutput.OldFull, Source: src})
		if err != nil {
			t.Fatal(err)
		}
		if c.Body == nil || *c.Body != "long body" || len(c.MissingFields) != 0 {
			t.Fatalf("body %v, missing %v; want the old body and nothing missing", c.Body, c.MissingFields)
		}
		if c.Before == nil || c.Before.URLPath != "/old" || c.Before.Version != 2 || !reflect.DeepEqual(c.Before.Tags, []string{"go"}) {
			t.Fatalf("before = %+v", c.Before)
		}
		if c.ContentID != "42" || c.Version != 3 || c.Kind != "article" || c.Attributes["author"] != "ada" || c.Source.Table != "public.content" {
			t.Fatalf("event = %+v", c)
		}
		if c.EventID != events.ChangeID("app", "public.content", 100, "42") {
			t.Fatalf("event id %s is not ChangeID(db, table, lsn, key)", c.EventID)
		}
	})
	t.Run("update without old row names unchanged TOAST as missing", func(t *testing.T) {
		c, err := p.Content(Change{Op: events.OpUpdate, New: newRow, Source: src})
		if err != nil {
			t.Fatal(err)
		}
		if c.Body != nil || !slices.Equal(c.MissingFields, []string{"body"}) || c.Before != nil {
			t.Fatalf("body %v, missing %v, before %v; want no body, missing [body]", c.Body, c.MissingFields, c.Before)
		}
	})
	t.Run("delete with key only", func(t *testing.T) {
		key := pgoutput.Tuple{text("42"), sqlNull, sqlNull, sqlNull, sqlNull, sqlNull, sqlNull, sqlNull}
		c, err := p.Content(Change{Op: events.OpDelete, Old: key, OldKind: pgoutput.OldKey, Source: src})
		if err != nil {
			t.Fatal(err)
		}
		if c.ContentID != "42" || c.Title != "" || !slices.Contains(c.MissingFields, "title") || !slices.Contains(c.MissingFields, "attributes.author") {
			t.Fatalf("event = %+v; want id 42 and non-key fields missing", c)
		}
		if c.Version != 200 {
			t.Fatalf("version = %d, want the commit LSN when the version was not sent", c.Version)
		}
	})
	t.Run("key change", func(t *testing.T) {
		k, ok := p.OldKey(Change{Op: events.OpUpdate, New: newRow, Old: pgoutput.Tuple{text("41"), sqlNull, sqlNull, sqlNull, sqlNull, sqlNull, sqlNull, sqlNull}, OldKind: pgoutput.OldKey})
		if !ok || k != "41" {
			t.Fatalf("OldKey = %q, %v; want 41", k, ok)
		}
		if _, ok := p.OldKey(Change{Op: events.OpUpdate, New: newRow, Old: oldRow, OldKind: pgoutput.OldFull}); ok {
			t.Fatal("OldKey reported a change for the same key")
		}
	})
	t.Run("bad values", func(t *testing.T) {
		bad := slices.Clone(newRow)
		bad[5] = text("three")
		if _, err := p.Content(Change{Op: events.OpCreate, New: bad, Source: src}); !errors.Is(err, ErrValue) {
			t.Fatalf("version three: error = %v, want ErrValue", err)
		}
		bad = slices.Clone(newRow)
		bad[0] = sqlNull
		if _, err := p.Content(Change{Op: events.OpCreate, New: bad, Source: src}); !errors.Is(err, ErrValue) {
			t.Fatalf("sqlNull key: error = %v, want ErrValue", err)
		}
	})
	t.Run("missing key column", func(t *testing.T) {
		rel := *contentRel
		rel.Columns = rel.Columns[1:]
		if _, err := NewPlan(contentTable, &rel); err == nil {
			t.Fatal("NewPlan accepted a relation without the key column")
		}
	})
}

func TestProfile(t *testing.T) {
	table := &pipeline.Table{Name: "public.user_profiles", Event: pipeline.EventProfile, Key: []string{"user_id"}, Columns: map[string]string{
		"user_id": "user_id", "interests": "interests", "follows": "follows", "deleted": "deleted", "updated_at": "updated_at", "locale": "locale"}}
	rel := &pgoutput.Relation{Namespace: "public", Name: "user_profiles", Columns: []pgoutput.Column{
		{Key: true, Name: "user_id"}, {Name: "interests"}, {Name: "follows"}, {Name: "deleted"}, {Name: "updated_at"}, {Name: "locale"}}}
	p, err := NewPlan(table, rel)
	if err != nil {
		t.Fatal(err)
	}
	u, err := p.Profile(Change{Op: events.OpCreate, New: pgoutput.Tuple{text("u1"), text(`{"go": 0.5, "pg": 1}`), text("{author:ada}"), text("f"), text("2026-11-25 10:00:00+00"), text("en")}, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	want := []events.Interest{{Tag: "go", Weight: 0.5}, {Tag: "pg", Weight: 1}}
	if u.UserID != "u1" || u.Deleted || !reflect.DeepEqual(u.Interests, want) || !slices.Equal(u.Follows, []string{"author:ada"}) ||
		!u.UpdatedAt.Equal(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)) || u.Locale != "en" {
		t.Fatalf("profile = %+v", u)
	}
	u, err = p.Profile(Change{Op: events.OpUpdate, New: pgoutput.Tuple{text("u1"), text(`{}`), text("{}"), text("t"), text("2026-11-25 10:00:00+00"), sqlNull}, Source: src})
	if err != nil || !u.Deleted {
		t.Fatalf("deleted column true: profile %+v, %v; want Deleted", u, err)
	}
	u, err = p.Profile(Change{Op: events.OpDelete, Old: pgoutput.Tuple{text("u1"), sqlNull, sqlNull, sqlNull, sqlNull, sqlNull}, OldKind: pgoutput.OldKey, Source: src})
	if err != nil || !u.Deleted || u.UserID != "u1" {
		t.Fatalf("delete: profile %+v, %v; want Deleted u1", u, err)
	}
}
