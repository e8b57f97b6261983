package kafka

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
)

// DefaultLagTimeout bounds one lag measurement when LagCollector's timeout
// is zero.
const DefaultLagTimeout = 5 * time.Second

// LagCollector is a Prometheus collector that measures the lag of consumer
// groups with kadm (committed offsets against end offsets) on every scrape.
// It reports freshet_kafka_consumer_lag{group,topic,partition}, in records,
// and freshet_kafka_consumer_lag_up{group}, 1 when the group's lag could be
// measured, 0 when not. Partitions whose lag is unknown (no end offset) are
// left out. It is safe for concurrent use.
type LagCollector struct {
	adm     *kadm.Client
	groups  []string
	timeout time.Duration
	lag     *prometheus.Desc
	up      *prometheus.Desc
}

var _ prometheus.Collector = (*LagCollector)(nil)

// NewLagCollector returns a collector of the lag of groups. timeout bounds
// each scrape's requests; zero means DefaultLagTimeout (5s).
func NewLagCollector(adm *kadm.Client, timeout time.Duration, groups ...string) *LagCollector {
	if timeout <= 0 {
		timeout = DefaultLagTimeout
	}
	return &LagCollector{
		adm:     adm,
		groups:  groups,
		timeout: timeout,
		lag: prometheus.NewDesc("freshet_kafka_consumer_lag",
			"Records between the group's committed offset and the partition's end offset.",
			[]string{"group", "topic", "partition"}, nil),
		up: prometheus.NewDesc("freshet_kafka_consumer_lag_up",
			"1 when the group's lag could be measured on this scrape, else 0.",
			[]string{"group"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *LagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lag
	ch <- c.up
}

// Collect implements prometheus.Collector.
func (c *LagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	lags, err := c.adm.Lag(ctx, c.groups...)
	for _, g := range c.groups {
		l, ok := lags[g]
		if err != nil || !ok || l.Error() != nil {
			ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0, g)
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1, g)
		for _, m := range l.Lag.Sorted() {
			if m.Err != nil || m.Lag < 0 {
				continue
			}
			ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(m.Lag),
				g, m.Topic, strconv.Itoa(int(m.Partition)))
		}
	}
}

// RegisterLag registers with reg a LagCollector of groups, over a client of
// its own built from cfg (so that a scrape never waits behind the
// service's fetches). The returned close releases that client; call it
// when the service stops.
func RegisterLag(reg prometheus.Registerer, cfg Config, groups ...string) (close func(), err error) {
	cl, err := NewClient(cfg, nil)
	if err != nil {
		return nil, err
	}
	if err := reg.Register(NewLagCollector(kadm.NewClient(cl), 0, groups...)); err != nil {
		cl.Close()
		return nil, fmt.Errorf("register the lag of %v: %w", groups, err)
	}
	return cl.Close, nil
}
