package codec

import (
	"context"
	"fmt"
	"strings"

	"github.com/freshet/freshet/pkg/events"
)

// DecodeChange decodes a content.changes value, read from topic (named in
// errors), into its ContentChange, as every consumer of that topic does. It
// never panics: the value is outside bytes (FuzzDecodeChange).
//
// Every error starts with "decode content change: " and wraps a sentinel:
// a nil value is "empty value" (ErrTruncated); a value that does not decode
// wraps DecodeTyped's *Error; another event is "a UserProfile on <topic>"
// (ErrIncompatible: a ContentChange cannot be read from it). So
// IsDataError tells a record for the DLQ from a registry that did not
// answer.
func (c *Codec) DecodeChange(ctx context.Context, topic string, value []byte) (*events.ContentChange, error) {
	if value == nil {
		return nil, &changeError{msg: "empty value", err: ErrTruncated}
	}
	ev, _, err := c.DecodeTyped(ctx, value)
	if err != nil {
		return nil, fmt.Errorf("decode content change: %w", err)
	}
	ch, ok := ev.(*events.ContentChange)
	if !ok {
		return nil, &changeError{msg: "a " + strings.TrimPrefix(ev.Schema(), events.Namespace+".") + " on " + topic, err: ErrIncompatible}
	}
	return ch, nil
}

// changeError is an error of DecodeChange that did not come from the
// decoder: its message, and the sentinel it wraps.
type changeError struct {
	msg string
	err error
}

func (e *changeError) Error() string { return "decode content change: " + e.msg }
func (e *changeError) Unwrap() error { return e.err }
