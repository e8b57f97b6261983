package gateway

import (
	"time"

	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/pipeline"
)

// kafkaConfig maps the environment's Kafka settings to pkg/kafka's.
func kafkaConfig(c config.Kafka, clientID string) kafka.Config {
	if c.ClientID != "" {
		clientID = c.ClientID
	}
	return kafka.Config{
		Brokers:  c.Brokers,
		ClientID: clientID,
		TLS: kafka.TLSConfig{
			Enabled: c.TLS.Enabled, CAFile: c.TLS.CAFile, CertFile: c.TLS.CertFile,
			KeyFile: c.TLS.KeyFile, InsecureSkipVerify: c.TLS.InsecureSkipVerify,
		},
		SASL:              kafka.SASLConfig{Mechanism: c.SASL.Mechanism, User: c.SASL.User, Password: c.SASL.Password.Reveal()},
		SchemaRegistryURL: c.SchemaRegistryURL,
	}
}

// topicSpec is the spec of topic name with the settings the pipeline file
// gives the design's topic of that role.
func topicSpec(p *pipeline.Pipeline, role, name string) kafka.TopicSpec {
	t, _ := p.Topic(role)
	return kafka.TopicSpec{
		Name:              name,
		Partitions:        t.Partitions,
		ReplicationFactor: t.ReplicationFactor,
		CleanupPolicy:     t.Cleanup,
		Retention:         retention(t.Retention),
		Configs:           t.Configs,
	}
}

func retention(r pipeline.Retention) time.Duration {
	if r == pipeline.Forever {
		return -1
	}
	return r.Duration()
}
