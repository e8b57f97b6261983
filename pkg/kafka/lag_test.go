package kafka

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestLagCollector(t *testing.T) {
	ctx := testCtx(t)
	topic := topicName(t, "")
	group := topic + "-group"
	seedTopic(t, topic, 1, nil)
	cl := newTestClient(t)
	for range 5 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	adm := kadm.NewClient(cl)
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: topic, Partition: 0, At: 2, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, group, offsets); err != nil {
		t.Fatalf("commit offsets: %v", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(NewLagCollector(adm, 0, group))
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	values := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += " " + l.GetName() + "=" + l.GetValue()
			}
			values[key] = m.GetGauge().GetValue()
		}
	}
	lagKey := "freshet_kafka_consumer_lag group=" + group + " partition=0 topic=" + topic
	if v, ok := values[lagKey]; !ok || v != 3 {
		t.Fatalf("lag = %v (present %v), want 3; all: %v", v, ok, values)
	}
	if v := values["freshet_kafka_consumer_lag_up group="+group]; v != 1 {
		t.Fatalf("lag_up = %v, want 1", v)
	}
}

// RegisterLag registers a collector of the groups, over a client of its
// own that close releases; registering the same groups again is an error
// that names them.
func TestRegisterLag(t *testing.T) {
	reg := prometheus.NewRegistry()
	closeLag, err := RegisterLag(reg, testConfig(), "g1")
	if err != nil {
		t.Fatal(err)
	}
	defer closeLag()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	up := false
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if f.GetName() == "freshet_kafka_consumer_lag_up" && len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == "g1" {
				up = true
			}
		}
	}
	if !up {
		t.Fatalf("no freshet_kafka_consumer_lag_up{group=g1} after RegisterLag: %v", families)
	}
	if _, err := RegisterLag(reg, testConfig(), "g1"); err == nil || !strings.Contains(err.Error(), "g1") {
		t.Fatalf("registering g1 twice: %v, want an error naming g1", err)
	}
}
