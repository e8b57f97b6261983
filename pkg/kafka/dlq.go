package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// DLQSuffix is appended to a topic's name to name its dead letter topic.
const DLQSuffix = ".dlq"

// DLQTopic returns the dead letter topic of topic: topic + ".dlq".
func DLQTopic(topic string) string { return topic + DLQSuffix }

// Headers that [DLQ.Send] adds to a dead letter record, after the original
// record's own headers. Values are UTF-8 text.
const (
	// HeaderError is the error text, truncated to DLQOptions.MaxErrorBytes.
	HeaderError = "freshet.dlq.error"
	// HeaderTopic is the topic the record was read from.
	HeaderTopic = "freshet.dlq.topic"
	// HeaderPartition is its partition, in decimal.
	HeaderPartition = "freshet.dlq.partition"
	// HeaderOffset is its offset, in decimal.
	HeaderOffset = "freshet.dlq.offset"
	// HeaderTime is when it was sent to the DLQ, RFC 3339 with
	// nanoseconds, UTC.
	HeaderTime = "freshet.dlq.time"
	// HeaderComponent is the service and stage that failed
	// (DLQOptions.Component), e.g. "invalidator/decode".
	HeaderComponent = "freshet.dlq.component"
)

// headerPrefix starts every DLQ header.
const headerPrefix = "freshet.dlq."

// DefaultMaxErrorBytes bounds HeaderError when DLQOptions.MaxErrorBytes is
// zero.
const DefaultMaxErrorBytes = 4096

// DLQOptions tune a [DLQ]. The zero value is valid.
type DLQOptions struct {
	// Component names the service and stage that failed, written in
	// HeaderComponent: "invalidator/decode", "personalizer/score". Empty
	// leaves the header out.
	Component string
	// Topic maps a source topic to its dead letter topic. Nil means
	// DLQTopic. The dead letter topic must exist (see TopicSpec.DLQ).
	Topic func(source string) string
	// MaxErrorBytes bounds the error text in HeaderError; longer text is
	// cut at a UTF-8 boundary and ends with "…". Zero means
	// DefaultMaxErrorBytes (4096).
	MaxErrorBytes int
}

// DLQ sends records that cannot be processed to a dead letter topic, so that
// the pipeline keeps going and nothing is silently dropped. It is safe for
// concurrent use.
type DLQ struct {
	client   *kgo.Client
	opts     DLQOptions
	maxBytes int
}

// NewDLQ returns a DLQ producing through client. The client's producer
// settings apply (NewClient's: idempotent, acks from all replicas).
func NewDLQ(client *kgo.Client, opts DLQOptions) *DLQ {
	maxBytes := opts.MaxErrorBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxErrorBytes
	}
	if opts.Topic == nil {
		opts.Topic = DLQTopic
	}
	return &DLQ{client: client, opts: opts, maxBytes: maxBytes}
}

// Send produces a copy of rec to the dead letter topic of rec.Topic and waits
// until the brokers acknowledged it, or ctx is done.
//
// The copy keeps rec's key, value, timestamp and headers, minus any
// freshet.dlq.* header a previous trip through a DLQ left, and adds the
// headers HeaderError (reason's text), HeaderTopic, HeaderPartition,
// HeaderOffset, HeaderTime and HeaderComponent. Its partition is chosen by
// the client's partitioner from the key, as for any record.
//
// With a transactional client, call Send inside the transaction that also
// commits the offsets, so that the record reaches the DLQ if and only if
// the offsets move past it.
//
// The caller commits the offset of rec only after Send returned nil.
func (d *DLQ) Send(ctx context.Context, rec *kgo.Record, reason error) error {
	if rec == nil {
		return errors.New("dlq: nil record")
	}
	if rec.Topic == "" {
		return errors.New("dlq: record has no topic")
	}
	dead := d.Record(rec, reason, time.Now())
	if err := d.client.ProduceSync(ctx, dead).FirstErr(); err != nil {
		return fmt.Errorf("dlq: produce to %q (from %s/%d@%d): %w", dead.Topic, rec.Topic, rec.Partition, rec.Offset, err)
	}
	return nil
}

// Record returns the dead letter record that Send would produce for rec at
// time now, without producing it: for callers that produce in batches.
func (d *DLQ) Record(rec *kgo.Record, reason error, now time.Time) *kgo.Record {
	text := "unknown error"
	if reason != nil {
		text = reason.Error()
	}
	headers := make([]kgo.RecordHeader, 0, len(rec.Headers)+6)
	for _, h := range rec.Headers {
		if !strings.HasPrefix(h.Key, headerPrefix) {
			headers = append(headers, h)
		}
	}
	headers = append(headers,
		kgo.RecordHeader{Key: HeaderError, Value: []byte(truncate(text, d.maxBytes))},
		kgo.RecordHeader{Key: HeaderTopic, Value: []byte(rec.Topic)},
		kgo.RecordHeader{Key: HeaderPartition, Value: []byte(strconv.FormatInt(int64(rec.Partition), 10))},
		kgo.RecordHeader{Key: HeaderOffset, Value: []byte(strconv.FormatInt(rec.Offset, 10))},
		kgo.RecordHeader{Key: HeaderTime, Value: []byte(now.UTC().Format(time.RFC3339Nano))},
	)
	if d.opts.Component != "" {
		headers = append(headers, kgo.RecordHeader{Key: HeaderComponent, Value: []byte(d.opts.Component)})
	}
	return &kgo.Record{
		Topic:     d.opts.Topic(rec.Topic),
		Key:       rec.Key,
		Value:     rec.Value,
		Headers:   headers,
		Timestamp: rec.Timestamp,
	}
}

// truncate cuts s to at most max bytes at a UTF-8 boundary, marking the cut
// with "…".
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const ellipsis = "…"
	cut := max - len(ellipsis)
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
