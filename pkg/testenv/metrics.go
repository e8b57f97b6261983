package testenv

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Metric returns the sum, over its series, of a counter's or a gauge's
// value, or of a histogram's sample sum, in reg: what a service's test reads
// of the registry it gave the component.
func Metric(tb testing.TB, reg prometheus.Gatherer, name string) float64 {
	tb.Helper()
	return MetricWith(tb, reg, name)
}

// MetricWith is Metric over the series whose labels hold every pair of
// labelValues (name, value, name, value...).
func MetricWith(tb testing.TB, reg prometheus.Gatherer, name string, labelValues ...string) float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labelValues) {
				sum += value(m)
			}
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, labelValues []string) bool {
	for i := 0; i+1 < len(labelValues); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			found = found || (l.GetName() == labelValues[i] && l.GetValue() == labelValues[i+1])
		}
		if !found {
			return false
		}
	}
	return true
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return m.Histogram.GetSampleSum()
	}
	return 0
}
