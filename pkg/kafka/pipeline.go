package kafka

import (
	"time"

	"github.com/freshet/freshet/pkg/pipeline"
)

// TopicSpecFor returns the spec of topic name created with the settings the
// pipeline file gives the topic role (a design topic such as
// "content.changes", or "<topic>.dlq" for the dead-letter settings). name
// and role differ when a deployment renames a topic (tests prefix theirs);
// an undeclared role gets the pipeline's defaults for unknown topics.
//
// It is the one place where the pipeline's topic settings become a
// TopicSpec: zero replication means the broker's default, "forever"
// retention becomes -1, an empty cleanup policy means delete.
func TopicSpecFor(p *pipeline.Pipeline, role, name string) TopicSpec {
	t, _ := p.Topic(role)
	return TopicSpecFromPipeline(t, name)
}

// TopicSpecFromPipeline converts one pipeline topic to the spec of topic
// name; see TopicSpecFor.
func TopicSpecFromPipeline(t pipeline.Topic, name string) TopicSpec {
	var retention time.Duration
	switch {
	case t.Retention == pipeline.Forever:
		retention = -1
	case t.Retention > 0:
		retention = t.Retention.Duration()
	}
	rf := t.ReplicationFactor
	if rf < 0 {
		rf = 0 // the broker's default, which Kafka's CreateTopics writes -1
	}
	cleanup := t.Cleanup
	if cleanup == "" {
		cleanup = CleanupDelete
	}
	return TopicSpec{
		Name:              name,
		Partitions:        t.Partitions,
		ReplicationFactor: rf,
		CleanupPolicy:     cleanup,
		Retention:         retention,
		Configs:           t.Configs,
	}
}
