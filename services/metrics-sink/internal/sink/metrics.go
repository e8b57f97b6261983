package sink

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	read      *prometheus.CounterVec
	rows      *prometheus.CounterVec
	skipped   *prometheus.CounterVec
	batches   prometheus.Counter
	insertSec prometheus.Histogram
	errors    prometheus.Counter
	dlq       *prometheus.CounterVec
	minimized prometheus.Counter
	up        prometheus.Gauge
	pending   prometheus.Gauge
	dropParts prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		read: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "freshet_sink_records_total",
			Help: "Records read from Kafka, by topic."}, []string{"topic"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "freshet_sink_rows_total",
			Help: "Rows inserted into ClickHouse, by table."}, []string{"table"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "freshet_sink_duplicates_skipped_total",
			Help: "Rows left out of an insert because ClickHouse already held their Kafka offset (after a crash or a failed insert), by table."}, []string{"table"}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{Name: "freshet_sink_batches_total",
			Help: "Batches flushed and committed."}),
		insertSec: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "freshet_sink_flush_seconds",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
			Help:    "Time to insert a batch into every table (retries included)."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "freshet_sink_insert_errors_total",
			Help: "Inserts ClickHouse refused or that failed, each retried."}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "freshet_sink_dlq_total",
			Help: "Records sent to a dead letter topic, by source topic."}, []string{"topic"}),
		minimized: prometheus.NewCounter(prometheus.CounterOpts{Name: "freshet_sink_minimized_total",
			Help: "Values left out to keep personal data out of ClickHouse (a user hash that is no hash, labels off the allow-list, IP addresses)."}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{Name: "freshet_sink_clickhouse_up",
			Help: "1 when the last insert succeeded, 0 while inserts fail."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "freshet_sink_pending_rows",
			Help: "Rows held for the next insert."}),
		dropParts: prometheus.NewCounter(prometheus.CounterOpts{Name: "freshet_sink_partitions_dropped_total",
			Help: "Day partitions dropped for retention (servers without TTL)."}),
	}
	for _, c := range []prometheus.Collector{m.read, m.rows, m.skipped, m.batches, m.insertSec, m.errors, m.dlq, m.minimized, m.up, m.pending, m.dropParts} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
