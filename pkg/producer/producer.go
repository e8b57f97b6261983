package producer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
)

// DefaultTopic is where content changes go unless Options.Topic says
// otherwise.
const DefaultTopic = "content.changes"

// ErrInvalid is wrapped by the errors of events that cannot be produced.
var ErrInvalid = errors.New("producer: invalid event")

// Options configure a Producer.
type Options struct {
	// App names the application: the events' source.db. Required.
	App string
	// Topic receives the events. Default DefaultTopic.
	Topic string
}

// Producer produces content changes.
type Producer struct {
	client *kgo.Client
	codec  *codec.Codec
	opts   Options
}

// New returns a Producer writing through client, which should be
// idempotent with acks from all replicas (pkg/kafka.NewClient's defaults).
func New(client *kgo.Client, c *codec.Codec, opts Options) (*Producer, error) {
	if client == nil || c == nil {
		return nil, errors.New("producer: client and codec are required")
	}
	if opts.App == "" {
		return nil, errors.New("producer: Options.App is required (it becomes source.db)")
	}
	if opts.Topic == "" {
		opts.Topic = DefaultTopic
	}
	return &Producer{client: client, codec: c, opts: opts}, nil
}

// Record validates ev, fills its event id (from idempotencyKey), source and
// trace, and returns the Kafka record to produce, for callers that produce
// in their own batches or transactions.
func (p *Producer) Record(ctx context.Context, idempotencyKey string, ev events.ContentChange) (*kgo.Record, events.ContentChange, error) {
	switch {
	case idempotencyKey == "":
		return nil, ev, fmt.Errorf("%w: an idempotency key is required", ErrInvalid)
	case ev.ContentID == "":
		return nil, ev, fmt.Errorf("%w: ContentID is required (it keys the record)", ErrInvalid)
	case ev.Op != events.OpCreate && ev.Op != events.OpUpdate && ev.Op != events.OpDelete:
		return nil, ev, fmt.Errorf("%w: Op must be create, update or delete, got %q", ErrInvalid, ev.Op)
	}
	now := time.Now()
	ev.EventID = events.ID("producer", p.opts.App, idempotencyKey)
	commit := ev.Source.CommitTime
	if commit.IsZero() {
		commit = now
	}
	ev.Source = events.Source{Origin: events.OriginProducer, DB: p.opts.App, CommitTime: commit}
	ev.Trace = events.Trace{CommittedAt: commit, ProducedAt: now}
	val, err := p.codec.EncodeEvent(ctx, p.opts.Topic, ev)
	if err != nil {
		return nil, ev, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return &kgo.Record{Topic: p.opts.Topic, Key: []byte(ev.ContentID), Value: val}, ev, nil
}

// Produce produces ev and waits until Kafka acked it. It returns the event
// id. ev.Source.CommitTime, when set, is when the change happened in the
// app (freshness is measured from it); otherwise now.
func (p *Producer) Produce(ctx context.Context, idempotencyKey string, ev events.ContentChange) (string, error) {
	rec, ev, err := p.Record(ctx, idempotencyKey, ev)
	if err != nil {
		return "", err
	}
	if err := p.client.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return ev.EventID, fmt.Errorf("producer: produce %s: %w", ev.EventID, err)
	}
	return ev.EventID, nil
}

// ProduceAsync produces ev without waiting; done is called with the event
// id and nil once Kafka acked it, or with the error.
func (p *Producer) ProduceAsync(ctx context.Context, idempotencyKey string, ev events.ContentChange, done func(id string, err error)) {
	rec, ev, err := p.Record(ctx, idempotencyKey, ev)
	if err != nil {
		done("", err)
		return
	}
	p.client.Produce(ctx, rec, func(_ *kgo.Record, err error) { done(ev.EventID, err) })
}
