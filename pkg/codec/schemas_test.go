package codec

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"testing"

	"github.com/freshet/freshet/schemas"
)

// TestEverySchemaDocumented holds the schema files to the rules of
// schemas/avro/README.md: a doc on every record, enum and field; every
// nullable field a union with null first and a null default.
func TestEverySchemaDocumented(t *testing.T) {
	files, err := fs.Glob(schemas.Avro, "*.avsc")
	if err != nil {
		t.Fatal(err)
	}
	types, err := fs.Glob(schemas.Avro, "types/*.avsc")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(files, types...) {
		t.Run(p, func(t *testing.T) {
			b, err := fs.ReadFile(schemas.Avro, p)
			if err != nil {
				t.Fatal(err)
			}
			var doc any
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			for _, problem := range checkDocs(doc, p) {
				t.Error(problem)
			}
		})
	}
}

func checkDocs(s any, where string) []string {
	var problems []string
	switch t := s.(type) {
	case []any:
		for _, b := range t {
			problems = append(problems, checkDocs(b, where)...)
		}
	case map[string]any:
		typ, _ := t["type"].(string)
		switch typ {
		case "record", "enum":
			where = fmt.Sprintf("%s %v", typ, t["name"])
			if d, _ := t["doc"].(string); d == "" {
				problems = append(problems, where+": no doc")
			}
			if typ == "enum" {
				return problems
			}
			for _, f := range t["fields"].([]any) {
				fm := f.(map[string]any)
				fw := fmt.Sprintf("%s field %v", where, fm["name"])
				if d, _ := fm["doc"].(string); d == "" {
					problems = append(problems, fw+": no doc")
				}
				if u, ok := fm["type"].([]any); ok {
					def, has := fm["default"]
					if len(u) == 0 || u[0] != "null" || !has || def != nil {
						problems = append(problems, fw+": a nullable field must be [\"null\", ...] with default null")
					}
				}
				problems = append(problems, checkDocs(fm["type"], fw)...)
			}
		case "array":
			problems = append(problems, checkDocs(t["items"], where)...)
		case "map":
			problems = append(problems, checkDocs(t["values"], where)...)
		}
	}
	return problems
}

func TestCheckDocsFindsProblems(t *testing.T) {
	var doc any
	if err := json.Unmarshal([]byte(`{"type":"record","name":"R","doc":"r","fields":[
		{"name":"a","type":"string"},
		{"name":"b","doc":"b","type":["string","null"],"default":"x"},
		{"name":"c","doc":"c","type":{"type":"enum","name":"E","symbols":["X"]}}]}`), &doc); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"record R field a: no doc",
		`record R field b: a nullable field must be ["null", ...] with default null`,
		"enum E: no doc",
	}
	if got := checkDocs(doc, ""); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("checkDocs = %q, want %q", got, want)
	}
}
