package rows_test

import (
	"context"
	"testing"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/services/metrics-sink/internal/rows"
	"github.com/freshet/freshet/services/metrics-sink/internal/sinktest"
)

// BenchmarkDecodeAdd decodes a latency sample record and appends its row:
// the sink's work per record before the insert.
func BenchmarkDecodeAdd(b *testing.B) {
	c, err := codec.New()
	if err != nil {
		b.Fatal(err)
	}
	v, err := c.EncodeEvent(context.Background(), "t", sinktest.Script(1)[0])
	if err != nil {
		b.Fatal(err)
	}
	s := rows.NewSet()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := sinktest.StartCPU()
	for i := range b.N {
		ev, _, err := c.DecodeTyped(context.Background(), v)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Add(rows.Latency, ev, 0, int64(i)); err != nil {
			b.Fatal(err)
		}
		if s.Len() == 50_000 {
			s.Reset()
		}
	}
	cpu.Report(b)
}
