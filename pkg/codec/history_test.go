package codec

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/freshet/freshet/schemas"
)

var updateHistory = flag.Bool("update-history", false, "write every current schema missing from schemas/avro/history there")

// TestHistoryHoldsEveryCurrentSchema keeps schemas/avro/history complete:
// every current schema version must be there, so that once the schema
// changes, values written with today's version still decode. After changing
// a schema, run
//
//	go test ./pkg/codec -run TestHistory -update-history
//
// and commit the new file next to the old ones.
func TestHistoryHoldsEveryCurrentSchema(t *testing.T) {
	current, history, err := loadFS(schemas.Avro)
	if err != nil {
		t.Fatal(err)
	}
	kept := map[uint64]bool{}
	for _, e := range history {
		kept[e.Fingerprint] = true
	}
	for _, e := range current {
		t.Run(shortName(e.Name), func(t *testing.T) {
			if kept[e.Fingerprint] {
				return
			}
			if !*updateHistory {
				t.Fatalf("%s (fingerprint %016x) is not in schemas/avro/history: run go test ./pkg/codec -run TestHistory -update-history", e.Name, e.Fingerprint)
			}
			var b bytes.Buffer
			if err := json.Indent(&b, []byte(e.JSON), "", "  "); err != nil {
				t.Fatal(err)
			}
			b.WriteByte('\n')
			p := filepath.Join("..", "..", "schemas", "avro", "history", fmt.Sprintf("%s.%016x.avsc", shortName(e.Name), e.Fingerprint))
			if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s", p)
		})
	}
}
