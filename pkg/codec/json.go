package codec

import (
	"bytes"
	"fmt"
)

// DecodeJSON parses a value of the current version of schema (full or short
// name) from plain JSON, as apps send events over HTTP: unions written as
// their bare value (null, "text", {...}), timestamps as microseconds since
// the epoch, bytes as strings. Fields left out get their defaults; a field
// the schema does not have, a missing field without default, a value of the
// wrong type or anything after the JSON value is an error wrapping
// ErrMalformed. The result is in goavro's native form, ready for Encode and
// events.FromNative.
func (c *Codec) DecodeJSON(schema string, data []byte) (map[string]any, error) {
	e, ok := c.byName[schema]
	if !ok {
		return nil, &Error{Op: "decode json", Schema: schema, Err: ErrUnknownSchema}
	}
	fail := func(err error) (map[string]any, error) {
		return nil, &Error{Op: "decode json", Schema: e.Name, Err: err}
	}
	native, rest, err := e.jsonCodec.NativeFromTextual(data)
	if err != nil {
		return fail(fmt.Errorf("%w: %v", ErrMalformed, err))
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return fail(fmt.Errorf("%w: data after the JSON value", ErrMalformed))
	}
	m, ok := native.(map[string]any)
	if !ok {
		return fail(fmt.Errorf("%w: JSON value is not an object", ErrMalformed))
	}
	return m, nil
}

// EncodeJSON writes a native value of the current version of schema as
// plain JSON, the form DecodeJSON reads: for logs, dead-letter inspection
// and HTTP answers.
func (c *Codec) EncodeJSON(schema string, native any) ([]byte, error) {
	e, ok := c.byName[schema]
	if !ok {
		return nil, &Error{Op: "encode json", Schema: schema, Err: ErrUnknownSchema}
	}
	out, err := e.jsonCodec.TextualFromNative(nil, native)
	if err != nil {
		return nil, &Error{Op: "encode json", Schema: e.Name, Err: fmt.Errorf("%w: %v", ErrEncode, err)}
	}
	return out, nil
}
