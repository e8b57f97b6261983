package codec

import (
	"context"
	"fmt"

	"github.com/freshet/freshet/pkg/events"
)

// EncodeEvent encodes a typed event (events.ContentChange, *events.Delivery,
// ...) for topic, like Encode.
func (c *Codec) EncodeEvent(ctx context.Context, topic string, ev events.Event) ([]byte, error) {
	return c.AppendEncode(ctx, nil, topic, ev.Schema(), ev.Native())
}

// AppendEncodeEvent is EncodeEvent appending to dst.
func (c *Codec) AppendEncodeEvent(ctx context.Context, dst []byte, topic string, ev events.Event) ([]byte, error) {
	return c.AppendEncode(ctx, dst, topic, ev.Schema(), ev.Native())
}

// DecodeEvent decodes a value like Decode and converts it to its typed event,
// a pointer: *events.ContentChange, *events.UserProfile, *events.Delivery,
// *events.PurgeAudit, *events.RumBeacon or *events.LatencySample. The
// Decoded describes the value's framing and writer.
func (c *Codec) DecodeEvent(ctx context.Context, data []byte) (events.Event, Decoded, error) {
	d, err := c.Decode(ctx, data)
	if err != nil {
		return nil, d, err
	}
	ev, err := events.FromNative(d.Schema, d.Native)
	if err != nil {
		return nil, d, &Error{Op: "decode", Schema: d.Schema, Fingerprint: d.Fingerprint, SchemaID: d.SchemaID, Err: fmt.Errorf("%w: %v", ErrUnknownSchema, err)}
	}
	return ev, d, nil
}
