package capture

import (
	"context"
	"testing"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/services/cdc-ingestor/internal/mapping"
	"github.com/freshet/freshet/services/cdc-ingestor/internal/pgoutput"
)

// BenchmarkRow is the ingestor's own CPU per row, without Postgres or Kafka:
// decode a pgoutput insert of the example content table, map it to a
// ContentChange and Avro-encode it.
//
//	go test -run '^$' -bench Row -benchmem ./services/cdc-ingestor/internal/capture/
func BenchmarkRow(b *testing.B) {
	p, err := pipeline.Load(repoFile(b, "pipelines/freshet.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	table := p.Table("public.content")
	names := []string{"id", "kind", "title", "summary", "body", "tags", "section", "locale", "url", "author", "region", "audience", "breaking", "version", "published_at", "updated_at"}
	rel := &pgoutput.Relation{ID: 1, Namespace: "public", Name: "content"}
	for _, n := range names {
		rel.Columns = append(rel.Columns, pgoutput.Column{Name: n, Key: n == "id"})
	}
	plan, err := mapping.NewPlan(table, rel)
	if err != nil {
		b.Fatal(err)
	}
	values := []string{"1000042", "article", "Title 1000042", "A summary of item 1000042", "body text body text body text body text body text body text body text body text body text body text body text body text body text body text body text body text body text body text body text body text ",
		"{go,kafka,postgres}", "tech", "en", "/bench/1000042", "ada", "eu", "", "f", "1", "", "2026-11-25 16:00:00.123456+00"}
	msg := []byte{'I', 0, 0, 0, 1, 'N', 0, byte(len(values))}
	for _, v := range values {
		msg = append(msg, 't', 0, 0, byte(len(v)>>8), byte(len(v)))
		msg = append(msg, v...)
	}
	c, err := codec.New()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var buf []byte
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		m, err := pgoutput.Parse(msg)
		if err != nil {
			b.Fatal(err)
		}
		ev, err := plan.Content(mapping.Change{Op: events.OpCreate, New: m.(*pgoutput.Insert).New, Source: events.Source{Origin: events.OriginReplication, DB: "app", LSN: 1, CommitLSN: 2, TxID: 3}})
		if err != nil {
			b.Fatal(err)
		}
		if buf, err = c.AppendEncodeEvent(ctx, buf[:0], "content.changes", ev); err != nil {
			b.Fatal(err)
		}
	}
}
