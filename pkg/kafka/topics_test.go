package kafka

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// topicState reads a topic's partition count and configs from the broker.
func topicState(t *testing.T, adm *kadm.Client, name string) (int, map[string]string) {
	t.Helper()
	ctx := testCtx(t)
	details, err := adm.ListTopics(ctx, name)
	if err != nil {
		t.Fatalf("list %q: %v", name, err)
	}
	d, ok := details[name]
	if !ok || d.Err != nil {
		t.Fatalf("topic %q missing: %v", name, d.Err)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, name)
	if err != nil {
		t.Fatalf("describe %q: %v", name, err)
	}
	configs := map[string]string{}
	for _, c := range rcs[0].Configs {
		configs[c.Key] = c.MaybeValue()
	}
	return len(d.Partitions), configs
}

func TestEnsureTopicsCreatesAndIsIdempotent(t *testing.T) {
	adm := newTestAdmin(t)
	events := TopicSpec{Name: topicName(t, ".changes"), Partitions: 3, Retention: 48 * time.Hour,
		Configs: map[string]string{"max.message.bytes": "2000000"}}
	table := TopicSpec{Name: topicName(t, ".profiles"), Partitions: 2, CleanupPolicy: CleanupCompact}
	forever := TopicSpec{Name: topicName(t, ".audit"), Partitions: 1, CleanupPolicy: "Delete , compact", Retention: -1}
	specs := []TopicSpec{events, table, forever, events.DLQ()}

	for round := 1; round <= 2; round++ {
		drift, err := EnsureTopics(testCtx(t), adm, specs...)
		if err != nil {
			t.Fatalf("round %d: EnsureTopics: %v", round, err)
		}
		if len(drift) != 0 {
			t.Fatalf("round %d: drift %v, want none", round, drift)
		}
	}

	tests := []struct {
		name       string
		partitions int
		configs    map[string]string
	}{
		{events.Name, 3, map[string]string{"cleanup.policy": "delete", "retention.ms": "172800000", "max.message.bytes": "2000000"}},
		{table.Name, 2, map[string]string{"cleanup.policy": "compact"}},
		{forever.Name, 1, map[string]string{"cleanup.policy": "compact,delete", "retention.ms": "-1"}},
		{events.Name + ".dlq", 3, map[string]string{"cleanup.policy": "delete"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, configs := topicState(t, adm, tt.name)
			if n != tt.partitions {
				t.Errorf("partitions = %d, want %d", n, tt.partitions)
			}
			for k, want := range tt.configs {
				if configs[k] != want {
					t.Errorf("%s = %q, want %q", k, configs[k], want)
				}
			}
		})
	}
}

func TestEnsureTopicsBrokerDefaultPartitions(t *testing.T) {
	adm := newTestAdmin(t)
	spec := TopicSpec{Name: topicName(t, "")}
	for round := 1; round <= 2; round++ {
		if _, err := EnsureTopics(testCtx(t), adm, spec); err != nil {
			t.Fatalf("round %d: EnsureTopics: %v", round, err)
		}
	}
	if n, _ := topicState(t, adm, spec.Name); n < 1 {
		t.Fatalf("topic has %d partitions", n)
	}
}

func TestEnsureTopicsIncompatible(t *testing.T) {
	tests := []struct {
		name       string
		existing   map[string]string // configs of the existing 2-partition topic
		spec       TopicSpec         // Name filled in
		wantFields []string
		wantWant   string
		wantHave   string
	}{
		{
			name:       "partition count",
			spec:       TopicSpec{Partitions: 4},
			wantFields: []string{FieldPartitions}, wantWant: "4", wantHave: "2",
		},
		{
			name:       "event topic found compacted",
			existing:   map[string]string{"cleanup.policy": "compact"},
			spec:       TopicSpec{Partitions: 2},
			wantFields: []string{FieldCleanupPolicy}, wantWant: "delete", wantHave: "compact",
		},
		{
			name:       "table found with delete policy",
			spec:       TopicSpec{Partitions: 2, CleanupPolicy: CleanupCompact},
			wantFields: []string{FieldCleanupPolicy}, wantWant: "compact", wantHave: "delete",
		},
		{
			name:       "both",
			spec:       TopicSpec{Partitions: 8, CleanupPolicy: CleanupCompact},
			wantFields: []string{FieldPartitions, FieldCleanupPolicy}, wantWant: "8", wantHave: "2",
		},
	}
	adm := newTestAdmin(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := topicName(t, "")
			seedTopic(t, name, 2, tt.existing)
			spec := tt.spec
			spec.Name = name
			_, err := EnsureTopics(testCtx(t), adm, spec)
			var ie *IncompatibleTopicError
			if !errors.As(err, &ie) {
				t.Fatalf("EnsureTopics = %v, want an *IncompatibleTopicError", err)
			}
			if ie.Topic != name || ie.Field != tt.wantFields[0] || ie.Want != tt.wantWant || ie.Have != tt.wantHave {
				t.Fatalf("error = %+v, want topic %q field %s want %s have %s", ie, name, tt.wantFields[0], tt.wantWant, tt.wantHave)
			}
			for _, f := range tt.wantFields {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("error %q does not mention %s", err, f)
				}
			}
			if n, _ := topicState(t, adm, name); n != 2 {
				t.Errorf("EnsureTopics changed the partition count to %d", n)
			}
		})
	}
}

func TestEnsureTopicsDrift(t *testing.T) {
	adm := newTestAdmin(t)
	name := topicName(t, "")
	seedTopic(t, name, 1, map[string]string{"retention.ms": "3600000", "max.message.bytes": "1000"})
	spec := TopicSpec{Name: name, Partitions: 1, ReplicationFactor: 3, Retention: 2 * time.Hour,
		Configs: map[string]string{"max.message.bytes": "2000"}}
	drift, err := EnsureTopics(testCtx(t), adm, spec)
	if err != nil {
		t.Fatalf("EnsureTopics = %v, want drift only", err)
	}
	want := []Drift{
		{Topic: name, Field: FieldRetention, Want: "7200000", Have: "3600000"},
		{Topic: name, Field: FieldReplicationFactor, Want: "3", Have: "1"},
		{Topic: name, Field: "max.message.bytes", Want: "2000", Have: "1000"},
	}
	if !slices.Equal(drift, want) {
		t.Fatalf("drift = %v, want %v", drift, want)
	}
	if !strings.Contains(drift[0].String(), "retention.ms") {
		t.Errorf("Drift.String() = %q", drift[0].String())
	}
}

// TestEnsureTopicsRace creates the topic between EnsureTopics' listing and its
// creation, as another replica starting at the same moment would.
func TestEnsureTopicsRace(t *testing.T) {
	tests := []struct {
		name       string
		partitions int32 // of the topic the other replica creates
		wantErr    bool
	}{
		{name: "same spec", partitions: 3},
		{name: "other replica used another partition count", partitions: 5, wantErr: true},
	}
	adm := newTestAdmin(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := topicName(t, "")
			afterList = func() { seedTopic(t, name, tt.partitions, nil) }
			t.Cleanup(func() { afterList = nil })
			_, err := EnsureTopics(testCtx(t), adm, TopicSpec{Name: name, Partitions: 3})
			var ie *IncompatibleTopicError
			switch {
			case tt.wantErr && !errors.As(err, &ie):
				t.Fatalf("EnsureTopics = %v, want an *IncompatibleTopicError", err)
			case !tt.wantErr && err != nil:
				t.Fatalf("EnsureTopics = %v, want the raced topic accepted", err)
			}
		})
	}
}

func TestEnsureTopicsInvalidSpecs(t *testing.T) {
	tests := []struct {
		name    string
		specs   []TopicSpec
		wantErr string
	}{
		{name: "empty name", specs: []TopicSpec{{}}, wantErr: "empty"},
		{name: "bad character", specs: []TopicSpec{{Name: "a/b"}}, wantErr: `"a/b"`},
		{name: "dot", specs: []TopicSpec{{Name: ".."}}, wantErr: `".."`},
		{name: "too long", specs: []TopicSpec{{Name: strings.Repeat("a", 250)}}, wantErr: "249"},
		{name: "negative partitions", specs: []TopicSpec{{Name: "t", Partitions: -1}}, wantErr: "partitions -1"},
		{name: "negative replication", specs: []TopicSpec{{Name: "t", ReplicationFactor: -2}}, wantErr: "replication factor -2"},
		{name: "bad policy", specs: []TopicSpec{{Name: "t", CleanupPolicy: "forever"}}, wantErr: `cleanup policy "forever"`},
		{name: "policy in configs", specs: []TopicSpec{{Name: "t", Configs: map[string]string{"cleanup.policy": "compact"}}}, wantErr: `"cleanup.policy"`},
		{name: "retention in configs", specs: []TopicSpec{{Name: "t", Configs: map[string]string{"retention.ms": "1"}}}, wantErr: `"retention.ms"`},
		{name: "tiny retention", specs: []TopicSpec{{Name: "t", Retention: time.Microsecond}}, wantErr: "below one millisecond"},
		{name: "duplicate", specs: []TopicSpec{{Name: "t"}, {Name: "t"}}, wantErr: "twice"},
	}
	adm := newTestAdmin(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := EnsureTopics(testCtx(t), adm, tt.specs...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("EnsureTopics = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNormalizePolicy(t *testing.T) {
	tests := []struct{ in, want string }{
		{"delete", "delete"},
		{"Compact", "compact"},
		{"delete,compact", "compact,delete"},
		{" compact , delete ,compact", "compact,delete"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := normalizePolicy(tt.in); got != tt.want {
				t.Fatalf("normalizePolicy(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
