package sink

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/services/metrics-sink/internal/rows"
	"github.com/freshet/freshet/services/metrics-sink/internal/sinktest"
)

// latencyTypes are the ClickHouse types of latency_samples' columns
// (schemas/clickhouse/0001_tables.sql).
var latencyTypes = map[string]column.Type{
	"event_id": "String", "subject_event_id": "String", "service": "String", "instance": "String",
	"stage": "String", "target": "String", "duration_us": "Int64", "at": "DateTime", "at_ms": "UInt16",
	"committed_at": "DateTime", "label_keys": "Array(String)", "label_values": "Array(String)",
	"kafka_partition": "UInt32", "kafka_offset": "UInt64",
}

// beaconTypes are the ClickHouse types of rum_beacons' columns.
var beaconTypes = map[string]column.Type{
	"event_id": "String", "received_at": "DateTime", "received_ms": "UInt16", "user_hash": "String",
	"route": "String", "device_class": "String", "connection_class": "String", "region": "String",
	"vital_names": "Array(String)", "vital_values": "Array(Float64)", "vital_ratings": "Array(String)",
	"vital_navigation_types": "Array(String)", "lag_event_ids": "Array(String)", "lag_ms": "Array(Float64)",
	"kafka_partition": "UInt32", "kafka_offset": "UInt64",
}

// fakeBatch holds clickhouse-go's columns of a table, as PrepareBatch
// makes them, without a server.
type fakeBatch []column.Interface

func (f fakeBatch) Column(i int) driver.BatchColumn { return fakeColumn{f[i]} }
func (f fakeBatch) Columns() []column.Interface     { return f }

type fakeColumn struct{ c column.Interface }

func (f fakeColumn) Append(v any) error    { _, err := f.c.Append(v); return err }
func (f fakeColumn) AppendRow(v any) error { return f.c.AppendRow(v) }

func newFakeBatch(b *testing.B, t *rows.Table, types map[string]column.Type) fakeBatch {
	var f fakeBatch
	for _, c := range t.Columns() {
		col, err := types[c.Name()].Column(c.Name(), &column.ServerContext{Timezone: time.UTC})
		if err != nil {
			b.Fatal(err)
		}
		f = append(f, col)
	}
	return f
}

// BenchmarkBatch is the sink's client-side work on one batch of 50,000
// latency samples, or of 50,000 beacons like the whole-stack flood's (five
// vitals, two lags): decode every record into the row set, append the
// table to clickhouse-go's columns (new ones per batch, as PrepareBatch
// makes them). Encoding the columns for the wire, the Kafka fetch and the
// server's work are left out. One op is one record.
func BenchmarkBatch(b *testing.B) {
	b.Run("latency", func(b *testing.B) {
		benchBatch(b, rows.Latency, latencyTypes, func(i int) events.Event { s := sinktest.LatencySample(i); return &s })
	})
	b.Run("beacons", func(b *testing.B) {
		benchBatch(b, rows.Beacons, beaconTypes, func(i int) events.Event { return sinktest.Beacon(i) })
	})
}

func benchBatch(b *testing.B, k rows.Kind, types map[string]column.Type, event func(int) events.Event) {
	const n = 50_000
	ctx := context.Background()
	c, err := codec.New()
	if err != nil {
		b.Fatal(err)
	}
	values := make([][]byte, n)
	for i := range values {
		if values[i], err = c.EncodeEvent(ctx, "t", event(i)); err != nil {
			b.Fatal(err)
		}
	}
	set := rows.NewSet()
	d := newDecoder(c)
	var sc scratch
	installColStrProvider()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := sinktest.StartCPU()
	for i := 0; i < b.N; {
		for j := 0; j < n && i < b.N; j, i = j+1, i+1 {
			if err := d.add(ctx, set, k, values[j], 0, int64(i)); err != nil {
				b.Fatal(err)
			}
		}
		t := set.Table(k)
		done := sizes.set(t)
		f := newFakeBatch(b, t, types)
		done()
		if err := appendTable(f, t, &sc); err != nil {
			b.Fatal(err)
		}
		set.Reset()
	}
	cpu.Report(b)
}
