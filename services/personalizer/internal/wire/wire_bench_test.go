package wire

import (
	"context"
	"testing"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
)

// BenchmarkTemplateAppend encodes one user delivery with a template, against
// BenchmarkCodecEncode, the same delivery through pkg/codec.
func BenchmarkTemplateAppend(b *testing.B) {
	c, err := codec.New()
	if err != nil {
		b.Fatal(err)
	}
	tpl, err := NewTemplate(context.Background(), c, "content.deliveries", base())
	if err != nil {
		b.Fatal(err)
	}
	reasons := []events.Reason{{Rule: "follow", Match: "tag:hot", Score: 2}, {Rule: "region", Match: "fr", Score: 0.5}}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = tpl.Append(buf[:0], "0123456789abcdef0123456789abcdef", "user-12345", 2.5, reasons)
	}
}

func BenchmarkCodecEncode(b *testing.B) {
	c, err := codec.New()
	if err != nil {
		b.Fatal(err)
	}
	d := base()
	d.EventID, d.UserID, d.Score = "0123456789abcdef0123456789abcdef", "user-12345", 2.5
	d.Reasons = []events.Reason{{Rule: "follow", Match: "tag:hot", Score: 2}, {Rule: "region", Match: "fr", Score: 0.5}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.EncodeEvent(ctx, "content.deliveries", d); err != nil {
			b.Fatal(err)
		}
	}
}
