package gateway

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/pkg/codec"

	"github.com/freshet/freshet/services/sse-gateway/internal/cursor"
)

// BenchmarkHubFanOut: one broadcast delivery offered to the queues of n
// subscribed streams (the consumer's side of delivery), per event.
func BenchmarkHubFanOut(b *testing.B) {
	for _, n := range []int{1, 1000, 10000} {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) {
			h := newHub([]int64{0}, []int64{0}, 1024)
			conns := make([]*conn, n)
			for i := range conns {
				conns[i] = newConn([]string{"c:breaking"}, []int32{0}, 1<<30)
				h.subscribe(conns[i], nil)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				h.publish(&event{partition: 0, offset: int64(i), key: "c:breaking", contentID: "x"})
				if i%256 == 255 {
					b.StopTimer()
					for _, c := range conns {
						c.take(nil)
					}
					b.StartTimer()
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "offers/s")
		})
	}
}

// BenchmarkStreamEvent: what the writer of one stream does per delivery:
// the duplicate check, the cursor and the SSE frame.
func BenchmarkStreamEvent(b *testing.B) {
	g := &Gateway{metrics: newMetrics()}
	s := &stream{g: g, cur: cursor.Cursor{{Partition: 3, Offset: 0}, {Partition: 7, Offset: 0}}}
	data := []byte(`{"event_id":"0123456789abcdef0123456789abcdef","op":"update","content":{"id":"c1","title":"A title","url":"/a/c1"},"committed_at":1700000000000}`)
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.event(&event{partition: 3, offset: int64(i), data: data}, now)
		s.buf = s.buf[:0]
	}
}

func BenchmarkCursorParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cursor.Parse("3-1042123.7-88123.11-99887766"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkToEvent: what the consumer does per record: Avro decode, checks,
// and the JSON rendered once for every stream.
func BenchmarkToEvent(b *testing.B) {
	c, err := codec.New()
	if err != nil {
		b.Fatal(err)
	}
	g := &Gateway{codec: c, metrics: newMetrics()}
	v, err := c.EncodeEvent(context.Background(), "content.deliveries", mkDelivery("u:alice", "c1", 1))
	if err != nil {
		b.Fatal(err)
	}
	r := &kgo.Record{Topic: "content.deliveries", Value: v}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.toEvent(context.Background(), r); err != nil {
			b.Fatal(err)
		}
	}
}
