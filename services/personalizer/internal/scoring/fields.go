package scoring

import (
	"strconv"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/pipeline"
)

// Fields returns the template fields of a change (see pipeline.Fields): the
// change's values as the current ones, and those of Before as the old ones.
// For a delete, the values describe the deleted row, so they are the old
// ones. Fields the source did not send (MissingFields) are left out.
func Fields(c *events.ContentChange) pipeline.Fields {
	cur := pipeline.Fields{}
	set := func(name string, v ...string) {
		if len(v) > 0 && !(len(v) == 1 && v[0] == "") {
			cur[name] = v
		}
	}
	set(pipeline.FieldID, c.ContentID)
	set(pipeline.FieldKind, c.Kind)
	set(pipeline.FieldTitle, c.Title)
	set(pipeline.FieldSummary, c.Summary)
	if c.Body != nil {
		set(pipeline.FieldBody, *c.Body)
	}
	set(pipeline.FieldTags, c.Tags...)
	set(pipeline.FieldSection, c.Section)
	set(pipeline.FieldLocale, c.Locale)
	set(pipeline.FieldURL, c.URLPath)
	set(pipeline.FieldSurrogateKeys, c.SurrogateKeys...)
	if c.Version != 0 {
		set(pipeline.FieldVersion, strconv.FormatInt(c.Version, 10))
	}
	for k, v := range c.Attributes {
		set("attributes."+k, v)
	}
	for _, m := range c.MissingFields {
		delete(cur, m)
	}
	var old pipeline.Fields
	if b := c.Before; b != nil {
		old = pipeline.Fields{}
		put := func(name string, v ...string) {
			if len(v) > 0 && !(len(v) == 1 && v[0] == "") {
				old[name] = v
			}
		}
		put(pipeline.FieldKind, b.Kind)
		put(pipeline.FieldTitle, b.Title)
		put(pipeline.FieldTags, b.Tags...)
		put(pipeline.FieldSection, b.Section)
		put(pipeline.FieldLocale, b.Locale)
		put(pipeline.FieldURL, b.URLPath)
		put(pipeline.FieldSurrogateKeys, b.SurrogateKeys...)
		for k, v := range b.Attributes {
			put("attributes."+k, v)
		}
	}
	if c.Op == events.OpDelete {
		if old == nil {
			old = pipeline.Fields{}
		}
		for k, v := range cur {
			if _, ok := old[k]; !ok {
				old[k] = v
			}
		}
		cur = nil
	}
	return pipeline.ChangeFields(string(c.Op), old, cur)
}
