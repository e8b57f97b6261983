// Package producer lets an application that talks to Kafka itself publish
// content changes into a Freshet pipeline, in the same form the
// cdc-ingestor writes them: Avro ContentChange events (pkg/codec, single
// object encoding or a schema registry's framing) on content.changes, keyed
// by content id, so that per-item order holds.
//
//	cl, _ := kafka.NewClient(kafka.Config{Brokers: brokers}, nil) // idempotent, acks=all
//	c, _ := codec.New()
//	p, _ := producer.New(cl, c, producer.Options{App: "cms"})
//	id, err := p.Produce(ctx, "article-42-v7", events.ContentChange{
//		Op: events.OpUpdate, ContentID: "42", Title: "Hello", Tags: []string{"go"},
//	})
//
// The idempotency key makes the event id (events.ID("producer", app, key)):
// an event produced again after a failure, with the same key, has the same
// id, and consumers drop the duplicate. Produce returns once Kafka acked the
// event; an error means it may or may not be on the topic, so produce it
// again with the same key.
//
// Concurrency: a Producer is safe for concurrent use; share one per process.
package producer
