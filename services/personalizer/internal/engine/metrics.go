package engine

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the engine's Prometheus metrics, all prefixed
// freshet_personalizer_.
type metrics struct {
	candidates     prometheus.Histogram
	deliveries     prometheus.Histogram
	deliveriesSent prometheus.Counter
	channelSent    prometheus.Counter
	changes        *prometheus.CounterVec // by outcome
	profiles       *prometheus.CounterVec // by outcome
	dlq            *prometheus.CounterVec // by topic
	txns           *prometheus.CounterVec // by outcome
	txnSeconds     prometheus.Histogram
	restoreRecords prometheus.Counter
	restoreSeconds prometheus.Histogram
	restoreLeft    prometheus.Gauge
	tableSize      prometheus.GaugeFunc
	partitions     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, tableSize func() float64) (*metrics, error) {
	counts := prometheus.ExponentialBuckets(1, 4, 11) // 1 .. ~1M
	m := &metrics{
		candidates: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "freshet_personalizer_candidates_per_change", Buckets: counts,
			Help: "Users a change made candidates (their interests, follows or segments matched), on this instance."}),
		deliveries: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "freshet_personalizer_deliveries_per_change", Buckets: counts,
			Help: "User deliveries a change produced on this instance (at or above the threshold, within the cap)."}),
		deliveriesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "freshet_personalizer_deliveries_total",
			Help: "User deliveries produced in committed transactions."}),
		channelSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "freshet_personalizer_channel_deliveries_total",
			Help: "Broadcast channel deliveries produced in committed transactions."}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "freshet_personalizer_changes_total",
			Help: "Content changes read, by outcome: scored, skipped (op not personalized), stale (past the deadline), dlq."}, []string{"outcome"}),
		profiles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "freshet_personalizer_profiles_total",
			Help: "Profile records applied from the stream, by outcome: upsert, delete, dlq."}, []string{"outcome"}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "freshet_personalizer_dlq_total",
			Help: "Records sent to a dead letter topic, by source topic."}, []string{"topic"}),
		txns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "freshet_personalizer_transactions_total",
			Help: "Transactions ended, by outcome: committed, aborted."}, []string{"outcome"}),
		txnSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "freshet_personalizer_transaction_seconds", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
			Help: "Time from the first record polled to the end of its transaction."}),
		restoreRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "freshet_personalizer_restore_records_total",
			Help: "Profile records read while restoring partitions."}),
		restoreSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "freshet_personalizer_restore_seconds", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
			Help: "Time to restore the profiles of newly assigned partitions."}),
		restoreLeft: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "freshet_personalizer_restore_remaining_records",
			Help: "Profile records left to read in the restore under way (0 when none is)."}),
		tableSize: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "freshet_personalizer_profiles",
			Help: "Profiles in this instance's table."}, tableSize),
		partitions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "freshet_personalizer_owned_partitions",
			Help: "user.profiles partitions this instance owns."}),
	}
	for _, c := range []prometheus.Collector{m.candidates, m.deliveries, m.deliveriesSent, m.channelSent, m.changes,
		m.profiles, m.dlq, m.txns, m.txnSeconds, m.restoreRecords, m.restoreSeconds, m.restoreLeft, m.tableSize, m.partitions} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
