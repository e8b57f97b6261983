package codec

import (
	"context"
	"fmt"

	"github.com/freshet/freshet/pkg/events"
)

// EncodeEvent encodes a typed event (events.ContentChange, *events.Delivery,
// ...) for topic, like Encode. The six event types are encoded directly from
// the struct (see the package doc), to the bytes Encode writes for
// ev.Native().
func (c *Codec) EncodeEvent(ctx context.Context, topic string, ev events.Event) ([]byte, error) {
	return c.AppendEncodeEvent(ctx, nil, topic, ev)
}

// AppendEncodeEvent is EncodeEvent appending to dst.
func (c *Codec) AppendEncodeEvent(ctx context.Context, dst []byte, topic string, ev events.Event) ([]byte, error) {
	e := c.byName[ev.Schema()]
	if e == nil || !e.direct {
		return c.AppendEncode(ctx, dst, topic, ev.Schema(), ev.Native())
	}
	dst, start, err := c.appendHeader(ctx, dst, topic, e)
	if err != nil {
		return dst, err
	}
	out, ok := appendDirect(dst, ev)
	if !ok {
		// Not one of the six types, or a value the schema cannot hold
		// (an enum symbol it does not have): goavro encodes it, or says
		// why not.
		return c.AppendEncode(ctx, dst[:start], topic, ev.Schema(), ev.Native())
	}
	c.hints[e].Store(int64(len(out) - start))
	return out, nil
}

// DecodeEvent decodes a value like Decode and converts it to its typed event,
// a pointer: *events.ContentChange, *events.UserProfile, *events.Delivery,
// *events.PurgeAudit, *events.RumBeacon or *events.LatencySample. The
// Decoded describes the value's framing and writer, and holds the native
// form too.
//
// A value written with the current version of its schema is decoded
// directly into the struct, and Decoded.Native is then built from it
// (ev.Native(), equal to what goavro decodes); DecodeTyped skips that. A
// value written with a past version, one the direct decoder rejects, or one
// whose native form the struct cannot give back (see the package doc) goes
// through Decode, so the errors are Decode's.
func (c *Codec) DecodeEvent(ctx context.Context, data []byte) (events.Event, Decoded, error) {
	return c.decodeEvent(ctx, data, true)
}

// DecodeTyped is DecodeEvent for callers that want only the typed event:
// when the value is decoded directly (written with the current version of
// its schema), Decoded.Native is left nil instead of being built, which is
// most of what DecodeEvent costs then. Values written with a past version
// are resolved through the native form, which Decoded.Native then holds.
func (c *Codec) DecodeTyped(ctx context.Context, data []byte) (events.Event, Decoded, error) {
	return c.decodeEvent(ctx, data, false)
}

func (c *Codec) decodeEvent(ctx context.Context, data []byte, native bool) (events.Event, Decoded, error) {
	w, d, body, err := c.frame(ctx, data)
	if err != nil {
		return nil, d, err
	}
	if w.direct {
		ev, lossy, err := decodeDirect(w.Name, body)
		if err == nil && !(native && lossy) {
			d.Schema = w.Name
			if native {
				d.Native = ev.Native()
			}
			return ev, d, nil
		}
		// Malformed: the goavro path below reports it as it always has.
		// Lossy: ev.Native() would not be what goavro decodes, which
		// Decoded.Native has always been.
	}
	if d, err = c.decodeBody(w, d, body); err != nil {
		return nil, d, err
	}
	ev, err := events.FromNative(d.Schema, d.Native)
	if err != nil {
		return nil, d, &Error{Op: "decode", Schema: d.Schema, Fingerprint: d.Fingerprint, SchemaID: d.SchemaID, Err: fmt.Errorf("%w: %v", ErrUnknownSchema, err)}
	}
	return ev, d, nil
}
