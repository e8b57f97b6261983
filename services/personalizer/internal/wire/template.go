package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
)

// Template encodes the user deliveries of one change. The Delivery schema's
// fields are, in order: event_id, change_event_id, source, trace, op,
// user_id, channel, content, score, reasons, deadline. A template holds the
// framing header and the encoded runs between the per-delivery fields.
type Template struct {
	header []byte // framing: single-object or Confluent header
	mid    []byte // change_event_id, source, trace, op
	post   []byte // channel (empty), content
	tail   []byte // deadline
}

// NewTemplate encodes the parts that the user deliveries of base's change
// share, with c, for topic. base's EventID, UserID, Score and Reasons are
// ignored; its Channel must be empty. It checks its own output against c's on
// a sample delivery and returns an error when they differ (a schema change
// this encoder does not know): the caller then encodes with c.
func NewTemplate(ctx context.Context, c *codec.Codec, topic string, base events.Delivery) (*Template, error) {
	if base.Channel != "" {
		return nil, errors.New("delivery template: channel deliveries are encoded by the codec")
	}
	enc := func(eventID, userID string) ([]byte, error) {
		d := base
		d.EventID, d.UserID, d.Score, d.Reasons = eventID, userID, 0, nil
		return c.EncodeEvent(ctx, topic, d)
	}
	empty, err := enc("", "")
	if err != nil {
		return nil, fmt.Errorf("delivery template: %w", err)
	}
	withEvent, err := enc("e", "")
	if err != nil {
		return nil, fmt.Errorf("delivery template: %w", err)
	}
	withUser, err := enc("", "u")
	if err != nil {
		return nil, fmt.Errorf("delivery template: %w", err)
	}
	h := firstDiff(empty, withEvent) // the event_id length byte
	u := firstDiff(empty, withUser)  // the user_id length byte
	tail := appendDeadline(nil, base)
	// After user_id (one byte when empty): post, score (8 bytes), reasons
	// (one byte, an empty array), tail.
	end := len(empty) - len(tail) - 9
	if h < 0 || u <= h || end < u+1 || !bytes.Equal(empty[len(empty)-len(tail):], tail) {
		return nil, errors.New("delivery template: unexpected layout of the encoded delivery")
	}
	t := &Template{
		header: bytes.Clone(empty[:h]),
		mid:    bytes.Clone(empty[h+1 : u]),
		post:   bytes.Clone(empty[u+1 : end]),
		tail:   tail,
	}
	// Check against the codec on a sample with every per-delivery field set.
	sample := base
	sample.EventID, sample.UserID, sample.Score = "0123456789abcdef0123456789abcdef", "user-ü", 1.25
	sample.Reasons = []events.Reason{{Rule: "interest", Match: "go", Score: 0.75}, {Rule: "follow", Match: "tag:go", Score: 0.5}}
	want, err := c.EncodeEvent(ctx, topic, sample)
	if err != nil {
		return nil, fmt.Errorf("delivery template: %w", err)
	}
	if got := t.Append(nil, sample.EventID, sample.UserID, sample.Score, sample.Reasons); !bytes.Equal(got, want) {
		return nil, errors.New("delivery template: output differs from the codec's")
	}
	return t, nil
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

func appendDeadline(dst []byte, d events.Delivery) []byte {
	if d.Deadline.IsZero() {
		return append(dst, 0) // union branch 0: null
	}
	dst = append(dst, 2) // union branch 1: long
	return appendLong(dst, d.Deadline.UnixMicro())
}

// Size is the length of a delivery's shared parts: what Append writes
// beside the event id, user id, score and reasons.
func (t *Template) Size() int { return len(t.header) + len(t.mid) + len(t.post) + len(t.tail) }

// Append appends the encoded delivery of the template's change to userID,
// with its event id, score and reasons, to dst.
func (t *Template) Append(dst []byte, eventID, userID string, score float64, reasons []events.Reason) []byte {
	dst = append(dst, t.header...)
	dst = appendString(dst, eventID)
	dst = append(dst, t.mid...)
	dst = appendString(dst, userID)
	dst = append(dst, t.post...)
	dst = appendDouble(dst, score)
	if len(reasons) > 0 {
		dst = appendLong(dst, int64(len(reasons)))
		for _, r := range reasons {
			dst = appendString(dst, r.Rule)
			dst = appendString(dst, r.Match)
			dst = appendDouble(dst, r.Score)
		}
	}
	dst = append(dst, 0) // end of the reasons array
	return append(dst, t.tail...)
}

func appendLong(dst []byte, v int64) []byte {
	return binary.AppendUvarint(dst, uint64((v<<1)^(v>>63)))
}

func appendString(dst []byte, s string) []byte {
	dst = appendLong(dst, int64(len(s)))
	return append(dst, s...)
}

func appendDouble(dst []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
}
