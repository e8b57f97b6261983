package engine

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the invalidator's Prometheus metrics; target-labelled ones
// carry the target's name.
type metrics struct {
	changes      *prometheus.CounterVec   // outcome: purged, dead_lettered, nothing, malformed
	requests     *prometheus.CounterVec   // target, outcome: acked, retried, failed
	items        *prometheus.CounterVec   // target, kind: keys, urls, prefixes
	failures     *prometheus.CounterVec   // target, reason
	breakerState *prometheus.GaugeVec     // target
	queueDepth   *prometheus.GaugeVec     // target
	latency      *prometheus.HistogramVec // target: commit to the target's ack
	lastAck      prometheus.Histogram     // commit to the last target's ack
	inFlight     prometheus.Gauge
	dropped      prometheus.Counter
	commits      prometheus.Counter
}

var latencyBuckets = []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "freshet", "invalidator"
	m := &metrics{
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "changes_total",
			Help: "Content changes consumed, by outcome: purged (every target acked), dead_lettered (some target's purge went to the DLQ), nothing (no purge), malformed (to the DLQ undecoded)."}, []string{"outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "requests_total",
			Help: "Purge requests sent, by target and outcome: acked, retried (failed, tried again), failed (given up)."}, []string{"target", "outcome"}),
		items: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "purged_items_total",
			Help: "Keys, urls and prefixes acked by each target, by kind."}, []string{"target", "kind"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "failures_total",
			Help: "Failed purge requests by target and reason: retryable (no answer, 429, 5xx), permanent (refused token, bad request), deadline (dead_letter_after passed), attempts (retry.attempts used up)."}, []string{"target", "reason"}),
		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "breaker_state",
			Help: "Circuit breaker of each target: 0 closed, 1 half-open (a probe is out), 2 open."}, []string{"target"}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "queue_depth",
			Help: "Changes queued for each target and not yet in a batch."}, []string{"target"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "purge_latency_seconds",
			Help: "Time from a change's source commit to each target's ack of its purge.", Buckets: latencyBuckets}, []string{"target"}),
		lastAck: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "commit_to_last_ack_seconds",
			Help: "Time from a change's source commit to the last target's ack (or DLQ).", Buckets: latencyBuckets}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "in_flight_changes",
			Help: "Changes consumed and not yet done (acked or dead-lettered by every target)."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "dropped_purges_total",
			Help: "Keys, urls and prefixes left out because they cannot travel (whitespace or control characters from a field's value)."}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "offset_commits_total",
			Help: "Offset commits of done changes."}),
	}
	for _, c := range []prometheus.Collector{m.changes, m.requests, m.items, m.failures, m.breakerState, m.queueDepth, m.latency, m.lastAck, m.inFlight, m.dropped, m.commits} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
