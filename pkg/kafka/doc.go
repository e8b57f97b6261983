// Package kafka holds what every Freshet service does with Kafka besides its
// own consuming and producing: building a franz-go client from configuration
// ([NewClient], [Opts]), creating and verifying the topics a service needs
// ([EnsureTopics]), sending records that cannot be processed to a dead letter
// topic ([DLQ]), and reporting consumer group lag to Prometheus
// ([LagCollector]).
//
// The package returns errors and never logs, except through the logger handed
// to the franz-go client.
//
// Concurrency: [DLQ] and [LagCollector] are safe for concurrent use, as is the
// *kgo.Client that [NewClient] returns. [EnsureTopics] may run at the same time
// in several replicas of a service: a topic that another replica created
// first is verified like any existing topic.
package kafka
