package capture

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the ingestor's Prometheus metrics for capture. Build them once
// per registry with NewMetrics.
type Metrics struct {
	Events       *prometheus.CounterVec // events produced, by table, op and origin
	Errors       *prometheus.CounterVec // failures, by kind
	DeadLetters  *prometheus.CounterVec // rows and messages sent to a DLQ, by topic
	CommitToAck  prometheus.Histogram   // seconds from commit to Kafka ack, per event
	SlotLag      prometheus.Gauge       // bytes of WAL the slot retains
	Confirmed    prometheus.Gauge       // the LSN last confirmed to Postgres
	Streaming    prometheus.Gauge       // 1 while a replication session streams
	SnapshotRows *prometheus.CounterVec // snapshot rows emitted, by table
	Reconnects   prometheus.Counter     // replication sessions started again after a failure
	// ReplaySkipped counts events streamed again after a restart that were
	// not produced, since Kafka held them already.
	ReplaySkipped prometheus.Counter
}

// NewMetrics registers the capture metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "freshet_cdc_events_total", Help: "Events produced to Kafka and acked, by table (or outbox), op and origin.",
		}, []string{"table", "op", "origin"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "freshet_cdc_errors_total", Help: "Capture errors, by kind: connect, stream, produce, map, outbox, snapshot, truncate_profiles, read_back.",
		}, []string{"kind"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "freshet_cdc_dead_letters_total", Help: "Rows and outbox messages that could not become events, sent to the topic's DLQ.",
		}, []string{"topic"}),
		CommitToAck: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "freshet_cdc_commit_to_ack_seconds", Help: "Time from the Postgres commit to the Kafka ack of each event.",
			Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10, 30},
		}),
		SlotLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "freshet_cdc_slot_lag_bytes", Help: "Bytes of WAL between the server's current position and the slot's confirmed position.",
		}),
		Confirmed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "freshet_cdc_confirmed_lsn", Help: "The LSN last confirmed to Postgres (every change before it is on Kafka).",
		}),
		Streaming: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "freshet_cdc_streaming", Help: "1 while the replication session streams, 0 while it connects or waits.",
		}),
		SnapshotRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "freshet_cdc_snapshot_rows_total", Help: "Snapshot rows emitted, by table.",
		}, []string{"table"}),
		Reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "freshet_cdc_reconnects_total", Help: "Replication sessions started again after a failure.",
		}),
		ReplaySkipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "freshet_cdc_replay_skipped_total", Help: "Events streamed again after a restart and not produced, since Kafka held them already.",
		}),
	}
	reg.MustRegister(m.Events, m.Errors, m.DeadLetters, m.CommitToAck, m.SlotLag, m.Confirmed, m.Streaming, m.SnapshotRows, m.Reconnects, m.ReplaySkipped)
	return m
}
