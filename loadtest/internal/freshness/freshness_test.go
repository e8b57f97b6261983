package freshness

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/freshet/freshet/loadtest/internal/report"
	"github.com/freshet/freshet/loadtest/internal/stats"
)

// TestParseDelivery: the fast path reads what encoding/json reads, on the
// gateway's delivery JSON, including a title that mimics the fields.
func TestParseDelivery(t *testing.T) {
	for _, data := range []string{
		`{"event_id":"e1","op":"create","content":{"id":"7","title":"x"},"score":2,"committed_at":1764770000123,"deadline":1764770900123}`,
		`{"event_id":"e2","op":"update","channel":"breaking","content":{"id":"8","title":"\"committed_at\":1,"},"committed_at":1764770000456}`,
		`{"event_id":"e\"3","op":"create","content":{"id":"9"},"committed_at":1764770000789,"deadline":0}`,
	} {
		var want deliveryJSON
		if err := json.Unmarshal([]byte(data), &want); err != nil {
			t.Fatal(err)
		}
		got, ok := parseDelivery([]byte(data))
		if !ok || got != want {
			t.Errorf("parseDelivery(%s) = %+v, %v; want %+v", data, got, ok, want)
		}
	}
	if _, ok := parseDelivery([]byte(`not json`)); ok {
		t.Error("garbage parsed")
	}
}

func TestKindOf(t *testing.T) {
	n := map[string]int{}
	for i := range 100 {
		n[kindOf(i)]++
	}
	if n[kindFollow] != 50 || n[kindInterest] != 30 || n[kindChannel] != 20 {
		t.Fatalf("kinds %v", n)
	}
}

func TestTxnStatsMinus(t *testing.T) {
	before := txnStats{count: 120, seconds: 3.5, changes: 900}
	after := txnStats{count: 160, seconds: 5.5, changes: 1300}
	if got, want := after.minus(before), (txnStats{count: 40, seconds: 2, changes: 400}); got != want {
		t.Errorf("after.minus(before) = %+v, want %+v", got, want)
	}
}

// TestTxnFigure: the phase's mean transaction is the seconds over the
// transactions, in ms, noted with the changes per transaction; without
// transactions or scrapes there is no figure, and the reason is given.
func TestTxnFigure(t *testing.T) {
	from := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name       string
		txns       txnStats
		err        error
		value      float64 // ms
		note       string
		missingHas string
	}{
		{name: "40 transactions of 50 ms", txns: txnStats{count: 40, seconds: 2, changes: 400}, value: 50,
			note: "40 transactions in 10 s, 10.0 changes each on average"},
		{name: "a change and a half each", txns: txnStats{count: 1000, seconds: 4.5, changes: 1500}, value: 4.5,
			note: "1000 transactions in 10 s, 1.5 changes each on average"},
		{name: "none", txns: txnStats{}, missingHas: "0 counted in the phase"},
		{name: "counters reset by a restart", txns: txnStats{count: -300, seconds: -9, changes: -2000}, missingHas: "-300 counted in the phase"},
		{name: "scrape failed", txns: txnStats{count: 5, seconds: 1, changes: 5}, err: errors.New("personalizer metrics: connection refused"),
			missingHas: "1000/s: personalizer transactions: personalizer metrics: connection refused"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := window{from: from, to: from.Add(10 * time.Second), txns: c.txns, txnsErr: c.err}
			fig, missing := w.txnFigure("1000/s")
			if c.missingHas != "" {
				if fig != nil || !strings.Contains(missing, c.missingHas) {
					t.Errorf("figure %+v, missing %q; want no figure and a reason with %q", fig, missing, c.missingHas)
				}
				return
			}
			if fig == nil {
				t.Fatalf("no figure: %s", missing)
			}
			if fig.Name != "1000/s: personalizer transaction, mean" || fig.Unit != "ms" || math.Abs(fig.Value-c.value) > 1e-9 || fig.Note != c.note {
				t.Errorf("figure %q = %v %s (%q), want %v ms (%q)", fig.Name, fig.Value, fig.Unit, fig.Note, c.value, c.note)
			}
		})
	}
}

// personalizerRegistry registers metrics of the personalizer's names and
// kinds (services/personalizer/internal/engine/metrics.go), with the
// neighbours whose names begin the same.
func personalizerRegistry(t *testing.T) (*prometheus.Registry, prometheus.Histogram, *prometheus.CounterVec, *prometheus.CounterVec) {
	t.Helper()
	reg := prometheus.NewRegistry()
	seconds := prometheus.NewHistogram(prometheus.HistogramOpts{Name: txnSecondsMetric, Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)})
	changes := prometheus.NewCounterVec(prometheus.CounterOpts{Name: changesMetric}, []string{"outcome"})
	txns := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "freshet_personalizer_transactions_total"}, []string{"outcome"})
	for _, c := range []prometheus.Collector{seconds, changes, txns} {
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	return reg, seconds, changes, txns
}

// TestPersonalizerTxnsScrape: two scrapes of a /metrics served by the
// Prometheus client, around a phase's transactions, give the phase's
// transactions, seconds and changes of every outcome, and its figure.
func TestPersonalizerTxnsScrape(t *testing.T) {
	reg, seconds, changes, txns := personalizerRegistry(t)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	admin := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()

	// scrapeAfter commits transactions of the given seconds and counts
	// changes by outcome, then scrapes.
	scrapeAfter := func(txnSeconds []float64, changesBy map[string]float64) txnStats {
		t.Helper()
		for _, s := range txnSeconds {
			seconds.Observe(s)
			txns.WithLabelValues("committed").Inc()
		}
		for outcome, n := range changesBy {
			changes.WithLabelValues(outcome).Add(n)
		}
		txns.WithLabelValues("aborted").Inc() // of the same prefix, not counted
		st, err := personalizerTxns(ctx, admin)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	// Before the phase: 3 transactions, 7 changes.
	before := scrapeAfter([]float64{0.01, 0.02, 0.03}, map[string]float64{"scored": 5, "skipped": 2})
	if before.count != 3 || before.changes != 7 || math.Abs(before.seconds-0.06) > 1e-9 {
		t.Errorf("before the phase %+v, want 3 transactions, 0.06 s, 7 changes", before)
	}
	// The phase: 4 transactions of 50 ms carrying 10 changes.
	after := scrapeAfter([]float64{0.05, 0.05, 0.05, 0.05}, map[string]float64{"scored": 7, "stale": 2, "dlq": 1})
	d := after.minus(before)
	if d.count != 4 || d.changes != 10 || math.Abs(d.seconds-0.2) > 1e-9 {
		t.Errorf("the phase %+v, want 4 transactions, 0.2 s, 10 changes", d)
	}
	from := time.Now()
	fig, missing := window{from: from, to: from.Add(2 * time.Second), txns: d}.txnFigure("500/s")
	if fig == nil {
		t.Fatalf("no figure: %s", missing)
	}
	if math.Abs(fig.Value-50) > 1e-6 || fig.Note != "4 transactions in 2 s, 2.5 changes each on average" {
		t.Errorf("figure %v ms (%q), want 50 ms (4 transactions in 2 s, 2.5 changes each on average)", fig.Value, fig.Note)
	}

	srv.Close()
	if _, err := personalizerTxns(ctx, admin); err == nil {
		t.Error("a scrape of a closed /metrics gave no error")
	}
}

// TestPersonalizerMetricsExist: the metrics the scenario scrapes are ones
// the personalizer registers (a renamed one would scrape as zero).
func TestPersonalizerMetricsExist(t *testing.T) {
	const dir = "../../../services/personalizer"
	var src strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		src.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{txnSecondsMetric, changesMetric} {
		if !strings.Contains(src.String(), `Name: "`+name+`"`) {
			t.Errorf("%s: no metric of that name registered under %s", name, dir)
		}
	}
}

// TestReportTxnFigures: each phase of the report has its own
// transaction figure, with the phase's load; a phase whose scrape failed
// has none, and says so.
func TestReportTxnFigures(t *testing.T) {
	from := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)
	windows := []window{
		{phase: Phase{Rate: 1000, Duration: 10 * time.Second}, from: from, to: from.Add(10 * time.Second),
			txns: txnStats{count: 200, seconds: 4, changes: 10000}, load: stats.LoadStats{Mean: 1.5}},
		{phase: Phase{Rate: 5000, Duration: 10 * time.Second}, from: from.Add(13 * time.Second), to: from.Add(23 * time.Second),
			txns: txnStats{count: 100, seconds: 8, changes: 50000}, load: stats.LoadStats{Mean: 3.5}},
		{phase: Phase{Rate: 9000, Duration: 10 * time.Second}, from: from.Add(26 * time.Second), to: from.Add(36 * time.Second),
			txnsErr: errors.New("personalizer metrics: GET: 503 Service Unavailable")},
	}
	res := &report.Result{}
	obs := &observer{produced: map[string]time.Time{}, traces: map[string]*trace{}}
	(&Freshness{}).report(res, nil, obs, &writer{}, windows, nil, 0)
	figs := map[string]*report.Figure{}
	for _, f := range res.Figures {
		figs[f.Name] = f
	}
	for _, c := range []struct {
		name  string
		value float64
		load  float64
		note  string
	}{
		{"1000/s: personalizer transaction, mean", 20, 1.5, "200 transactions in 10 s, 50.0 changes each on average"},
		{"5000/s: personalizer transaction, mean", 80, 3.5, "100 transactions in 10 s, 500.0 changes each on average"},
	} {
		f := figs[c.name]
		if f == nil {
			t.Errorf("no figure %q", c.name)
			continue
		}
		if math.Abs(f.Value-c.value) > 1e-9 || f.Load.Mean != c.load || f.Note != c.note {
			t.Errorf("%s = %v ms, load %v (%q); want %v ms, load %v (%q)", c.name, f.Value, f.Load.Mean, f.Note, c.value, c.load, c.note)
		}
	}
	if f := figs["9000/s: personalizer transaction, mean"]; f != nil {
		t.Errorf("a figure for a phase whose scrape failed: %+v", f)
	}
	if !slices.ContainsFunc(res.Missing, func(m string) bool {
		return strings.HasPrefix(m, "9000/s: personalizer transactions: ") && strings.Contains(m, "503")
	}) {
		t.Errorf("the failed scrape is not among what is missing: %q", res.Missing)
	}
}
