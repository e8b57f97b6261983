package rows_test

import (
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/services/metrics-sink/internal/rows"
)

// TestDLQTextsKeepNoAddress: the free texts of a dead letter (error,
// source topic, component) keep no IP address, whether it is whole,
// pieced together by invalid UTF-8, or made by the cut to the length bound.
func TestDLQTextsKeepNoAddress(t *testing.T) {
	long := strings.Repeat("x", rows.MaxError-8) + " 10.1.2.345" // cut at MaxError: "… 10.1.2.3"
	for _, c := range []struct {
		name, errText, source, component string
		wantErr, wantSource, wantComp    string
	}{
		{"whole", "dial tcp 10.1.2.3:9092: refused", "content.changes", "personalizer/decode",
			"dial tcp <ip>:9092: refused", "content.changes", "personalizer/decode"},
		{"joined by invalid UTF-8", "peer 10\xea.0.0.1 gone", "10.0.0.\xff2", "[2001:db8::\xfe1]",
			"peer <ip> gone", "<ip>", "<ip>"},
		{"cut", long, "t", "c", strings.Repeat("x", rows.MaxError-8) + " ", "t", "c"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := rows.NewSet()
			s.AddDLQ("x.dlq", map[string]string{"freshet.dlq.topic": c.source, "freshet.dlq.component": c.component,
				"freshet.dlq.error": c.errText}, time.Unix(0, 0), 0, 1)
			got := map[string]string{}
			for _, col := range s.Table(rows.DLQ).Columns() {
				if v, ok := col.Values().([]string); ok {
					got[col.Name()] = v[0]
				}
			}
			if got["error"] != c.wantErr || got["source_topic"] != c.wantSource || got["component"] != c.wantComp {
				t.Errorf("error %q, source %q, component %q; want %q, %q, %q", got["error"], got["source_topic"], got["component"], c.wantErr, c.wantSource, c.wantComp)
			}
		})
	}
}
