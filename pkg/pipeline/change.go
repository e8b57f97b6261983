package pipeline

import (
	"strconv"

	"github.com/freshet/freshet/pkg/events"
)

// ContentFields returns the template fields of a content change (see
// [Fields]): the change's values as the current ones, and those of Before
// as the old ones. For a delete, the values describe the deleted row, so
// they are the old ones (a delete purges what the row was). Fields the
// source did not send (MissingFields) are left out, so a current value
// falls back to the old one.
func ContentFields(c *events.ContentChange) Fields {
	cur := Fields{}
	set := func(f Fields, name string, v ...string) {
		if len(v) > 0 && !(len(v) == 1 && v[0] == "") {
			f[name] = v
		}
	}
	set(cur, FieldID, c.ContentID)
	set(cur, FieldKind, c.Kind)
	set(cur, FieldTitle, c.Title)
	set(cur, FieldSummary, c.Summary)
	if c.Body != nil {
		set(cur, FieldBody, *c.Body)
	}
	set(cur, FieldTags, c.Tags...)
	set(cur, FieldSection, c.Section)
	set(cur, FieldLocale, c.Locale)
	set(cur, FieldURL, c.URLPath)
	set(cur, FieldSurrogateKeys, c.SurrogateKeys...)
	if c.Version != 0 {
		set(cur, FieldVersion, strconv.FormatInt(c.Version, 10))
	}
	for k, v := range c.Attributes {
		set(cur, attributesPrefix+"."+k, v)
	}
	for _, m := range c.MissingFields {
		delete(cur, m)
	}
	var old Fields
	if b := c.Before; b != nil {
		old = Fields{}
		set(old, FieldKind, b.Kind)
		set(old, FieldTitle, b.Title)
		set(old, FieldTags, b.Tags...)
		set(old, FieldSection, b.Section)
		set(old, FieldLocale, b.Locale)
		set(old, FieldURL, b.URLPath)
		set(old, FieldSurrogateKeys, b.SurrogateKeys...)
		for k, v := range b.Attributes {
			set(old, attributesPrefix+"."+k, v)
		}
	}
	if c.Op == events.OpDelete {
		if old == nil {
			old = Fields{}
		}
		for k, v := range cur {
			if _, ok := old[k]; !ok {
				old[k] = v
			}
		}
		cur = nil
	}
	return ChangeFields(string(c.Op), old, cur)
}
