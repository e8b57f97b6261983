package codec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"

	"github.com/linkedin/goavro/v2"
)

// Schema describes one version of an event schema.
type Schema struct {
	// Name is the full name of the record, e.g. dev.freshet.events.Delivery.
	Name string
	// JSON is the self-contained schema text, shared types inlined: what is
	// registered with a schema registry.
	JSON string
	// Canonical is the schema's Parsing Canonical Form.
	Canonical string
	// Fingerprint is the CRC-64-AVRO (Rabin) fingerprint of Canonical, the
	// one carried by single-object encoding.
	Fingerprint uint64
}

// entry is a loaded schema version with its goavro codec and parsed graph.
type entry struct {
	Schema
	codec *goavro.Codec
	// jsonCodec reads and writes plain JSON (unions unwrapped); set for
	// current schemas only.
	jsonCodec *goavro.Codec
	root      *node
	// reader is the current schema this version is read as; itself for a
	// current schema, nil when no current schema has this name.
	reader *entry
	// direct is true for a current schema whose version the direct path
	// (direct.go) was written for.
	direct bool
}

// newEntry compiles a self-contained schema text.
func newEntry(text string) (*entry, error) {
	doc, err := decodeJSON([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("parse schema JSON: %w", err)
	}
	root, err := parseSchema(doc)
	if err != nil {
		return nil, err
	}
	if root.kind != kRecord {
		return nil, fmt.Errorf("top-level schema is a %s, not a record", root.kind)
	}
	c, err := goavro.NewCodec(text)
	if err != nil {
		return nil, fmt.Errorf("compile schema %s: %w", root.name, err)
	}
	return &entry{
		Schema: Schema{Name: root.name, JSON: text, Canonical: c.CanonicalSchema(), Fingerprint: c.Rabin},
		codec:  c,
		root:   root,
	}, nil
}

// loadFS loads the schema tree of schemas/avro: event schemas at the root,
// shared named types in types/ (inlined into the events that use them), and
// self-contained past versions in history/.
func loadFS(fsys fs.FS) (current, history []*entry, err error) {
	lib := map[string]map[string]any{}
	typeFiles, err := fs.Glob(fsys, "types/*.avsc")
	if err != nil {
		return nil, nil, err
	}
	for _, p := range typeFiles {
		doc, err := readJSON(fsys, p)
		if err != nil {
			return nil, nil, err
		}
		m, ok := doc.(map[string]any)
		if !ok {
			return nil, nil, fmt.Errorf("schema %s: a shared type must be a named type object", p)
		}
		full, err := definedName(m, "")
		if err != nil {
			return nil, nil, fmt.Errorf("schema %s: %w", p, err)
		}
		if _, dup := lib[full]; dup {
			return nil, nil, fmt.Errorf("schema %s: type %s defined twice in types/", p, full)
		}
		lib[full] = m
	}

	events, err := fs.Glob(fsys, "*.avsc")
	if err != nil {
		return nil, nil, err
	}
	if len(events) == 0 {
		return nil, nil, fmt.Errorf("no event schemas (*.avsc) found")
	}
	for _, p := range events {
		text, err := resolveFile(fsys, p, lib)
		if err != nil {
			return nil, nil, err
		}
		e, err := newEntry(text)
		if err != nil {
			return nil, nil, fmt.Errorf("schema %s: %w", p, err)
		}
		if e.jsonCodec, err = goavro.NewCodecForStandardJSONFull(text); err != nil {
			return nil, nil, fmt.Errorf("schema %s: compile for JSON: %w", p, err)
		}
		current = append(current, e)
	}

	old, err := fs.Glob(fsys, "history/*.avsc")
	if err != nil {
		return nil, nil, err
	}
	for _, p := range old {
		// Past versions are kept as registered: self-contained.
		text, err := resolveFile(fsys, p, nil)
		if err != nil {
			return nil, nil, err
		}
		e, err := newEntry(text)
		if err != nil {
			return nil, nil, fmt.Errorf("schema %s: %w", p, err)
		}
		history = append(history, e)
	}
	sort.Slice(current, func(i, j int) bool { return current[i].Name < current[j].Name })
	return current, history, nil
}

func readJSON(fsys fs.FS, p string) (any, error) {
	b, err := fs.ReadFile(fsys, p)
	if err != nil {
		return nil, err
	}
	doc, err := decodeJSON(b)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", p, err)
	}
	return doc, nil
}

// resolveFile reads a schema file and inlines the shared types it uses.
func resolveFile(fsys fs.FS, p string, lib map[string]map[string]any) (string, error) {
	doc, err := readJSON(fsys, p)
	if err != nil {
		return "", err
	}
	in := &inliner{lib: lib, defined: map[string]bool{}}
	doc, err = in.walk(doc, "")
	if err != nil {
		return "", fmt.Errorf("schema %s: %w", path.Base(p), err)
	}
	return marshalSchema(doc)
}

// keyRank orders the attributes of schema objects as people write them:
// what it is first, then its doc, then its contents.
var keyRank = map[string]int{
	"name": 1, "type": 2, "namespace": 3, "logicalType": 4, "aliases": 5,
	"size": 6, "symbols": 7, "items": 8, "values": 9, "default": 10, "doc": 11,
	"fields": 12,
}

// marshalSchema writes schema JSON compactly, keys in keyRank order (others
// after them, sorted), without HTML escaping.
func marshalSchema(doc any) (string, error) {
	var b bytes.Buffer
	if err := writeJSON(&b, doc); err != nil {
		return "", err
	}
	return b.String(), nil
}

func writeJSON(b *bytes.Buffer, v any) error {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			ri, rj := keyRank[keys[i]], keyRank[keys[j]]
			if ri == 0 {
				ri = 100
			}
			if rj == 0 {
				rj = 100
			}
			if ri != rj {
				return ri < rj
			}
			return keys[i] < keys[j]
		})
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(b, k); err != nil {
				return err
			}
			b.WriteByte(':')
			if err := writeJSON(b, t[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	default:
		enc := json.NewEncoder(b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return err
		}
		b.Truncate(b.Len() - 1) // Encode's newline
	}
	return nil
}
