package pipeline

import (
	"fmt"
	"github.com/freshet/freshet/pkg/events"
	"reflect"
	"strings"
	"testing"
)

func TestTemplateExpand(t *testing.T) {
	fields := Fields{
		"id":                 {"42"},
		"tags":               {"a", "b", "", "a"},
		"section":            {"tech"},
		"url":                {"/new"},
		"old.url":            {"/old"},
		"new.url":            {"/new"},
		"old.tags":           {"a", "z"},
		"attributes.author":  {"ada"},
		"attributes.empty":   {""},
		"surrogate_keys":     {"home", "feed"},
		"op":                 {"update"},
		"old.section":        {"news"},
		"new.attributes.odd": {"x{y}"},
	}
	tests := []struct {
		tmpl string
		want []string
	}{
		{"content:{id}", []string{"content:42"}},
		{"tag:{tags[*]}", []string{"tag:a", "tag:b"}}, // empty skipped, duplicate dropped
		{"{old.url}", []string{"/old"}},
		{"{new.url}", []string{"/new"}},
		{"{url}", []string{"/new"}},
		{"tag:{old.tags[*]}", []string{"tag:a", "tag:z"}},
		{"author:{attributes.author}", []string{"author:ada"}},
		{"author:{attributes.missing}", nil},
		{"x:{attributes.empty}", nil},
		{"tag:{new.tags[*]}", nil},
		{"{surrogate_keys[*]}", []string{"home", "feed"}},
		{"{section}/{tags[*]}/{id}", []string{"tech/a/42", "tech/b/42"}},
		{"{old.section}:{title}", nil}, // one missing field empties the template
		{"homepage", []string{"homepage"}},
		{"{{literal}}:{id}", []string{"{literal}:42"}},
		{"op={op}", []string{"op=update"}},
		{"{ id }", []string{"42"}},
		{"v:{new.attributes.odd}", []string{"v:x{y}"}},
		{"{kind}", nil},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl, func(t *testing.T) {
			tmpl, err := ParseTemplate(tt.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			got := tmpl.Expand(fields)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Expand = %q, want %q", got, tt.want)
			}
			if tmpl.String() != tt.tmpl {
				t.Errorf("String() = %q", tmpl.String())
			}
		})
	}
}

func TestTemplateExpandManyValues(t *testing.T) {
	tags := make([]string, 0, 200)
	for i := range 100 {
		tags = append(tags, fmt.Sprintf("t%d", i), fmt.Sprintf("t%d", i))
	}
	got := MustParseTemplate("tag:{tags[*]}").Expand(Fields{"tags": tags})
	if len(got) != 100 || got[0] != "tag:t0" || got[99] != "tag:t99" {
		t.Errorf("got %d values: %v", len(got), got)
	}
	all := ExpandAll(templates("tag:{tags[*]}", "tag:{tags[*]}", "x"), Fields{"tags": tags})
	if len(all) != 101 || all[100] != "x" {
		t.Errorf("ExpandAll: %d values, last %q", len(all), all[len(all)-1])
	}
}

func TestTemplateAppendExpand(t *testing.T) {
	dst := []string{"tag:a"}
	got := MustParseTemplate("tag:{tags[*]}").AppendExpand(dst, Fields{"tags": {"a", "b", "b"}})
	// dst's own values are not deduplicated against: only this call's.
	if !reflect.DeepEqual(got, []string{"tag:a", "tag:a", "tag:b"}) {
		t.Errorf("got %q", got)
	}
	var zero Template
	if out := zero.Expand(Fields{"id": {"1"}}); out != nil || !zero.IsZero() {
		t.Errorf("zero template: %q", out)
	}
}

func TestParseTemplateErrors(t *testing.T) {
	tests := []struct {
		tmpl, want string
	}{
		{"{nope}", `unknown field "nope"`},
		{"{tags}", `field "tags" is a list: write {tags[*]}`},
		{"{old.tags}", `write {old.tags[*]}`},
		{"{id[*]}", `field "id" is a single value`},
		{"{attributes.a[*]}", `attributes are single values`},
		{"{attributes.a-b}", `attribute name "a-b" is not an identifier`},
		{"{attributes.}", `attribute name "" is not an identifier`},
		{"{old.op}", `takes no old. or new. prefix`},
		{"{mid.url}", `unknown field "mid.url"`},
		{"{}", `empty placeholder`},
		{"{  }", `empty placeholder`},
		{"a{id", `unclosed { at offset 1`},
		{"a}b", `unmatched } at offset 1`},
		{"{a{b}}", `{ inside a placeholder`},
		{"{tags[*]}{old.tags[*]}", `more than one list placeholder`},
		{"a\r\nb:{id}", `control character at offset 1`},
		{"\tx", `control character at offset 0`},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl, func(t *testing.T) {
			_, err := ParseTemplate(tt.tmpl)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestTemplateRefs(t *testing.T) {
	refs := MustParseTemplate("{old.tags[*]}-{attributes.author}-{id}").Refs()
	want := []Ref{{Version: "old", Name: "tags", Each: true}, {Name: "attributes.author"}, {Name: "id"}}
	if !reflect.DeepEqual(refs, want) {
		t.Fatalf("Refs = %+v", refs)
	}
	if refs[0].String() != "old.tags[*]" || refs[0].Key() != "old.tags" || refs[1].Attribute() != "author" || refs[2].Attribute() != "" {
		t.Errorf("ref accessors: %s %s %q %q", refs[0], refs[0].Key(), refs[1].Attribute(), refs[2].Attribute())
	}
}

func TestChangeFields(t *testing.T) {
	old := Fields{"url": {"/old"}, "body": {"unchanged, toasted"}, "tags": {"a"}}
	new := Fields{"url": {"/new"}, "tags": {"b"}}
	f := ChangeFields(OpUpdate, old, new)
	want := Fields{
		"url": {"/new"}, "new.url": {"/new"}, "old.url": {"/old"},
		"tags": {"b"}, "new.tags": {"b"}, "old.tags": {"a"},
		"body": {"unchanged, toasted"}, "old.body": {"unchanged, toasted"},
		"op": {"update"},
	}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("got %v", f)
	}
	del := ChangeFields(OpDelete, Fields{"url": {"/gone"}}, nil)
	if got := MustParseTemplate("{url}").Expand(del); !reflect.DeepEqual(got, []string{"/gone"}) {
		t.Errorf("delete: {url} = %q", got)
	}
	if got := MustParseTemplate("{new.url}").Expand(del); got != nil {
		t.Errorf("delete: {new.url} = %q", got)
	}
}

func TestPurgeSet(t *testing.T) {
	p, err := Load(repoPipeline)
	if err != nil {
		t.Fatal(err)
	}
	f := ChangeFields(OpUpdate,
		Fields{"id": {"7"}, "url": {"/tech/old"}, "tags": {"go", "kafka"}, "section": {"tech"}, "attributes.author": {"ada"}},
		Fields{"id": {"7"}, "url": {"/tech/new"}, "tags": {"go", "postgres"}, "section": {"tech"}, "attributes.author": {"ada"}, "surrogate_keys": {"home"}},
	)
	ps := p.Invalidation.PurgeSet(f)
	keys, urls, dropped := ps.Keys, ps.URLs, ps.Dropped
	wantKeys := []string{"content:7", "tag:go", "tag:postgres", "tag:kafka", "section:tech", "author:ada", "home"}
	if !reflect.DeepEqual(keys, wantKeys) {
		t.Errorf("keys = %q\nwant   %q", keys, wantKeys)
	}
	if !reflect.DeepEqual(urls, []string{"/tech/old", "/tech/new"}) || dropped != 0 {
		t.Errorf("urls = %q, dropped %d", urls, dropped)
	}
	// Values that would break a header are dropped and counted.
	bad := ChangeFields(OpUpdate, nil, Fields{"id": {"9"}, "url": {"/a\r\nX-Injected: 1"}, "tags": {"two words", "ok"}})
	ps = p.Invalidation.PurgeSet(bad)
	keys, urls, dropped = ps.Keys, ps.URLs, ps.Dropped
	if !reflect.DeepEqual(keys, []string{"content:9", "tag:ok"}) || len(urls) != 0 || dropped != 2 {
		t.Errorf("unsafe values: keys %q, urls %q, dropped %d", keys, urls, dropped)
	}
	created := ChangeFields(OpCreate, nil, Fields{"id": {"8"}, "url": {"/a"}})
	if ps := p.Invalidation.PurgeSet(created); !reflect.DeepEqual(ps.URLs, []string{"/a"}) {
		t.Errorf("create purges only the new url: %q", ps.URLs)
	}
	// A delete purges what the row was: its url and keys.
	deleted := ChangeFields(OpDelete, Fields{"id": {"8"}, "url": {"/gone"}, "tags": {"go"}}, nil)
	if ps := p.Invalidation.PurgeSet(deleted); !reflect.DeepEqual(ps.URLs, []string{"/gone"}) || !reflect.DeepEqual(ps.Keys, []string{"content:8", "tag:go"}) {
		t.Errorf("delete: %+v", ps)
	}
}

func TestPurgeSetPrefixes(t *testing.T) {
	inv := Invalidation{Prefixes: templates("/section/{section}/", "/s/{old.section}/")}
	ps := inv.PurgeSet(ChangeFields(OpUpdate, Fields{"section": {"a"}}, Fields{"section": {"b"}}))
	if !reflect.DeepEqual(ps.Prefixes, []string{"/section/b/", "/s/a/"}) {
		t.Errorf("prefixes = %q", ps.Prefixes)
	}
	tg := Target{Purge: []string{PurgeKeys, PurgePrefixes}}
	ps.Keys = []string{"k"}
	if got := tg.Select(ps); len(got.URLs) != 0 || len(got.Keys) != 1 || len(got.Prefixes) != 2 {
		t.Errorf("Select = %+v", got)
	}
}

func TestPersonalizationRules(t *testing.T) {
	p, err := Load(repoPipeline)
	if err != nil {
		t.Fatal(err)
	}
	per := &p.Personalization
	f := ChangeFields(OpCreate, nil, Fields{
		"id": {"1"}, "tags": {"go", "cdc"}, "section": {"tech"}, "locale": {"en"},
		"attributes.author": {"ada"}, "attributes.region": {"eu"}, "attributes.breaking": {"false"},
	})
	if got := per.Follow.Match(f); !reflect.DeepEqual(got, []string{"author:ada", "section:tech", "tag:go", "tag:cdc"}) {
		t.Errorf("follow keys: %q", got)
	}
	if got := per.Interest.Match(f); !reflect.DeepEqual(got, []string{"go", "cdc"}) {
		t.Errorf("interest keys: %q", got)
	}
	if got := per.Region.Match(f); !reflect.DeepEqual(got, []string{"eu"}) {
		t.Errorf("region keys: %q", got)
	}
	if got := per.Segment.Match(f); got != nil {
		t.Errorf("segment keys without an audience: %q", got)
	}
	if c := per.Channel(f); c != nil {
		t.Errorf("not breaking, yet broadcast to %s", c.Name)
	}
	f["attributes.breaking"] = []string{"true"}
	if c := per.Channel(f); c == nil || c.Name != "breaking" {
		t.Errorf("breaking content: channel %v", c)
	}
	if !per.Personalizes(OpUpdate) || per.Personalizes(OpDelete) {
		t.Errorf("ops: %v", per.Ops)
	}
}

func TestChannelMatches(t *testing.T) {
	c := Channel{Name: "x", When: map[string][]string{"section": {"news", "live"}, "tags": {"urgent"}}}
	tests := []struct {
		name string
		f    Fields
		want bool
	}{
		{"both match", Fields{"section": {"live"}, "tags": {"a", "urgent"}}, true},
		{"section only", Fields{"section": {"news"}, "tags": {"a"}}, false},
		{"tags only", Fields{"section": {"tech"}, "tags": {"urgent"}}, false},
		{"missing field", Fields{"tags": {"urgent"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.Matches(tt.f); got != tt.want {
				t.Errorf("Matches = %v", got)
			}
		})
	}
	if (&Channel{Name: "empty"}).Matches(Fields{"section": {"news"}}) {
		t.Error("a channel without conditions matched")
	}
}

func TestContentFieldsPurgeOldAndNew(t *testing.T) {
	p, err := Load(repoPipeline)
	if err != nil {
		t.Fatal(err)
	}
	upd := &events.ContentChange{Op: events.OpUpdate, ContentID: "7", URLPath: "/new-slug", Tags: []string{"go"}, Section: "tech",
		Attributes: map[string]string{"author": "ada"},
		Before:     &events.ContentBefore{URLPath: "/old-slug", Tags: []string{"rust"}, Section: "tech"}}
	ps := p.Invalidation.PurgeSet(ContentFields(upd))
	if !reflect.DeepEqual(ps.URLs, []string{"/old-slug", "/new-slug"}) {
		t.Errorf("a changed slug purges both urls: %q", ps.URLs)
	}
	if !reflect.DeepEqual(ps.Keys, []string{"content:7", "tag:go", "tag:rust", "section:tech", "author:ada"}) {
		t.Errorf("keys %q", ps.Keys)
	}
	del := &events.ContentChange{Op: events.OpDelete, ContentID: "7", URLPath: "/gone", Tags: []string{"go"}}
	ps = p.Invalidation.PurgeSet(ContentFields(del))
	if !reflect.DeepEqual(ps.URLs, []string{"/gone"}) || !reflect.DeepEqual(ps.Keys, []string{"content:7", "tag:go"}) {
		t.Errorf("a delete purges what the row was: %+v", ps)
	}
}
