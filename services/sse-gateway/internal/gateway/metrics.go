package gateway

import "github.com/prometheus/client_golang/prometheus"

// Collector is a Prometheus collector, as Metrics returns them.
type Collector = prometheus.Collector

// metrics are the gateway's Prometheus metrics, made per Gateway so that
// several can run in one process (tests); the service registers them once.
type metrics struct {
	consumed     prometheus.Counter
	decodeErrors prometheus.Counter
	streams      prometheus.Gauge
	refused      *prometheus.CounterVec
	ended        *prometheus.CounterVec
	sent         prometheus.Counter
	conflated    prometheus.Counter
	resyncs      prometheus.Counter
	stale        prometheus.Counter
	resumes      *prometheus.CounterVec
	lag          prometheus.Histogram
}

func newMetrics() *metrics {
	ns := "freshet_sse_gateway_"
	return &metrics{
		consumed:     prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "records_consumed_total", Help: "Delivery records read from Kafka."}),
		decodeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "decode_errors_total", Help: "Records that did not decode (sent to the dead letter topic)."}),
		streams:      prometheus.NewGauge(prometheus.GaugeOpts{Name: ns + "streams", Help: "Open streams."}),
		refused:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "streams_refused_total", Help: "Stream requests refused, by error code."}, []string{"code"}),
		ended:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "streams_ended_total", Help: "Streams ended by the gateway, by reason."}, []string{"reason"}),
		sent:         prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "events_sent_total", Help: "Delivery events written to streams."}),
		conflated:    prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "events_conflated_total", Help: "Queued events replaced by a newer version of the same content item (slow clients)."}),
		resyncs:      prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "stream_resyncs_total", Help: "Streams whose queue overflowed and that re-read the history."}),
		stale:        prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "events_stale_total", Help: "Events not sent because their deadline had passed."}),
		resumes:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "resumes_total", Help: "Resumed streams, by source: memory, kafka, missed."}, []string{"source"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: ns + "record_to_write_seconds", Help: "From the consumer getting a record to its write to a stream.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 5},
		}),
	}
}

func (m *metrics) all() []Collector {
	return []Collector{m.consumed, m.decodeErrors, m.streams, m.refused, m.ended, m.sent, m.conflated, m.resyncs, m.stale, m.resumes, m.lag}
}
