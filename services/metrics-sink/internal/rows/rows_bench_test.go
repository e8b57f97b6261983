package rows_test

import (
	"context"
	"testing"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/services/metrics-sink/internal/rows"
	"github.com/freshet/freshet/services/metrics-sink/internal/sinktest"
)

// BenchmarkDecodeAdd decodes a latency sample record and appends its row,
// in batches of 50,000 rows: the sink's work per record before the insert.
// codec is DecodeTyped then Add (every input but latency samples and
// beacons, and those their direct paths leave to the codec); direct is
// AddLatencyValue.
func BenchmarkDecodeAdd(b *testing.B) {
	c, err := codec.New()
	if err != nil {
		b.Fatal(err)
	}
	v, err := c.EncodeEvent(context.Background(), "t", sinktest.Script(1)[0])
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		add  func(s *rows.Set, offset int64)
	}{
		{"codec", func(s *rows.Set, offset int64) {
			ev, _, err := c.DecodeTyped(context.Background(), v)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Add(rows.Latency, ev, 0, offset); err != nil {
				b.Fatal(err)
			}
		}},
		{"direct", func(s *rows.Set, offset int64) {
			if !s.AddLatencyValue(v, 0, offset) {
				b.Fatal("not taken")
			}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := rows.NewSet()
			b.ReportAllocs()
			cpu := sinktest.StartCPU()
			for i := range b.N {
				bc.add(s, int64(i))
				if s.Len() == 50_000 {
					s.Reset()
				}
			}
			cpu.Report(b)
		})
	}
}
