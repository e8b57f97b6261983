package kafka

import (
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/pipeline"
)

func TestTopicSpecFor(t *testing.T) {
	p := pipeline.Default()
	tests := []struct {
		role, name string
		check      func(t *testing.T, s TopicSpec)
	}{
		{pipeline.TopicUserProfiles, "t1.user.profiles", func(t *testing.T, s TopicSpec) {
			if s.CleanupPolicy != CleanupCompact || s.Retention != -1 {
				t.Errorf("user.profiles: cleanup %q retention %s; want compact, forever (-1)", s.CleanupPolicy, s.Retention)
			}
		}},
		{pipeline.TopicContentChanges, "content.changes", func(t *testing.T, s TopicSpec) {
			if s.CleanupPolicy != CleanupDelete || s.Retention != 7*24*time.Hour || s.Partitions != 12 {
				t.Errorf("content.changes: %+v; want delete, 7d, 12 partitions", s)
			}
		}},
		{pipeline.TopicContentChanges + ".dlq", "x.dlq", func(t *testing.T, s TopicSpec) {
			if s.CleanupPolicy != CleanupDelete || s.Retention <= 0 {
				t.Errorf("dlq: %+v; want delete with a retention", s)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.role, func(t *testing.T) {
			s := TopicSpecFor(p, tt.role, tt.name)
			if s.Name != tt.name {
				t.Errorf("name %q; want %q", s.Name, tt.name)
			}
			if s.ReplicationFactor != 0 {
				t.Errorf("replication %d; want 0 (the broker's default)", s.ReplicationFactor)
			}
			if err := s.validate(); err != nil {
				t.Fatalf("spec does not validate: %v", err)
			}
			tt.check(t, s)
		})
	}
	// A negative factor (Kafka's "broker default") still makes a valid spec.
	s := TopicSpecFromPipeline(pipeline.Topic{ReplicationFactor: -1}, "t")
	if err := s.validate(); err != nil || s.ReplicationFactor != 0 {
		t.Fatalf("replication -1: %+v, %v; want 0 and valid", s, err)
	}
	// Further configs pass through, and become the topic's creation configs
	// beside cleanup.policy and retention.ms.
	cc := p.Topics[pipeline.TopicContentChanges]
	cc.Configs = map[string]string{"min.insync.replicas": "2"}
	cfg := TopicSpecFromPipeline(cc, "c").createConfigs()
	if v := cfg["min.insync.replicas"]; v == nil || *v != "2" {
		t.Errorf("min.insync.replicas not passed through: %v", cfg)
	}
	if v := cfg["retention.ms"]; v == nil || *v != "604800000" {
		t.Errorf("content.changes retention.ms %v; want 604800000", v)
	}
	if v := cfg["cleanup.policy"]; v == nil || *v != CleanupDelete {
		t.Errorf("content.changes cleanup.policy %v; want delete", v)
	}
	up := TopicSpecFor(p, pipeline.TopicUserProfiles, "u").createConfigs()
	if v := up["retention.ms"]; v == nil || *v != "-1" {
		t.Errorf("user.profiles retention.ms %v; want -1", v)
	}
	if v := up["cleanup.policy"]; v == nil || *v != CleanupCompact {
		t.Errorf("user.profiles cleanup.policy %v; want compact", v)
	}
}
