package codec

import (
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/freshet/freshet/schemas"
)

// Framing is the wire format of an encoded value.
type Framing uint8

const (
	// SingleObject is Avro single-object encoding: 0xC3 0x01, the 8-byte
	// little-endian CRC-64-AVRO fingerprint of the writer's schema, then
	// the Avro binary body.
	SingleObject Framing = iota + 1
	// Confluent is the Confluent Schema Registry wire format: 0x00, the
	// 4-byte big-endian registry id of the writer's schema, then the body.
	Confluent
)

// String implements fmt.Stringer.
func (f Framing) String() string {
	switch f {
	case SingleObject:
		return "single-object"
	case Confluent:
		return "confluent"
	}
	return fmt.Sprintf("Framing(%d)", uint8(f))
}

const (
	soeMagic0, soeMagic1 = 0xC3, 0x01
	soeHeaderLen         = 10
	confluentHeaderLen   = 5
)

// Option configures New.
type Option func(*options)

type options struct {
	fsys        fs.FS
	writers     []string
	registryURL string
	srOpts      []sr.ClientOpt
	client      *sr.Client
	notFoundTTL time.Duration
	noDirect    bool
}

// WithSchemas loads the schemas from fsys, laid out like schemas/avro (event
// schemas at the root, shared types in types/, past versions in history/),
// instead of the schemas compiled into the binary. Default: schemas.Avro.
func WithSchemas(fsys fs.FS) Option { return func(o *options) { o.fsys = fsys } }

// WithWriterSchemas adds past versions of event schemas, each a
// self-contained schema text, so that values written with them decode. The
// ones in history/ are always loaded.
func WithWriterSchemas(texts ...string) Option {
	return func(o *options) { o.writers = append(o.writers, texts...) }
}

// WithRegistry sets the URL of a Confluent-compatible schema registry
// (several may be given, comma-separated; they are tried in order) and
// options for franz-go's sr client (auth, TLS, HTTP client). With a registry
// the Codec encodes in the Confluent framing. An empty url leaves the
// registry off, so a service can pass its configuration through unchanged.
// Default: no registry, single-object encoding.
func WithRegistry(url string, opts ...sr.ClientOpt) Option {
	return func(o *options) { o.registryURL, o.srOpts = url, opts }
}

// WithRegistryClient uses an existing sr client; it takes precedence over
// WithRegistry.
func WithRegistryClient(cl *sr.Client) Option { return func(o *options) { o.client = cl } }

// WithNotFoundTTL sets how long a registry id that the registry said it does
// not know is remembered as unknown, so a flood of records with a bad id
// does not become a flood of registry requests. Zero means 30s.
func WithNotFoundTTL(d time.Duration) Option { return func(o *options) { o.notFoundTTL = d } }

// Codec encodes and decodes Freshet's events. It is safe for concurrent use
// by any number of goroutines.
type Codec struct {
	byName map[string]*entry // current schemas by full and short name
	byFP   map[uint64]*entry // every known version by fingerprint
	names  []string
	reg    *registry
	hints  map[*entry]*atomic.Int64 // last encoded size per schema
}

// New loads and compiles the schemas. It does not contact the registry:
// schemas are registered on the first Encode of each (topic, schema) pair,
// or up front with Register.
func New(opts ...Option) (*Codec, error) {
	o := options{fsys: schemas.Avro}
	for _, opt := range opts {
		opt(&o)
	}
	if o.notFoundTTL <= 0 {
		o.notFoundTTL = 30 * time.Second
	}
	current, history, err := loadFS(o.fsys)
	if err != nil {
		return nil, fmt.Errorf("codec: load schemas: %w", err)
	}
	c := &Codec{
		byName: map[string]*entry{},
		byFP:   map[uint64]*entry{},
		hints:  map[*entry]*atomic.Int64{},
	}
	for _, e := range current {
		if _, dup := c.byName[e.Name]; dup {
			return nil, fmt.Errorf("codec: schema %s defined twice", e.Name)
		}
		e.reader = e
		e.direct = !o.noDirect && directFingerprints[e.Name] == e.Fingerprint
		c.byName[e.Name] = e
		c.byFP[e.Fingerprint] = e
		c.names = append(c.names, e.Name)
		c.hints[e] = new(atomic.Int64)
	}
	for _, e := range current {
		short := shortName(e.Name)
		if _, taken := c.byName[short]; !taken {
			c.byName[short] = e
		}
	}
	for _, text := range o.writers {
		e, err := newEntry(text)
		if err != nil {
			return nil, fmt.Errorf("codec: writer schema: %w", err)
		}
		history = append(history, e)
	}
	for _, e := range history {
		if _, known := c.byFP[e.Fingerprint]; known {
			continue // same as the current version, or a duplicate
		}
		e.reader = c.byName[e.Name]
		if e.reader == nil || e.reader.Name != e.Name {
			return nil, fmt.Errorf("codec: past schema %s has no current version", e.Name)
		}
		c.byFP[e.Fingerprint] = e
	}
	switch {
	case o.client != nil:
		c.reg = newRegistry(c, o.client, o.notFoundTTL)
	case strings.TrimSpace(o.registryURL) != "":
		var urls []string
		for _, u := range strings.Split(o.registryURL, ",") {
			if u = strings.TrimSpace(u); u != "" {
				urls = append(urls, u)
			}
		}
		cl, err := sr.NewClient(append([]sr.ClientOpt{sr.URLs(urls...)}, o.srOpts...)...)
		if err != nil {
			return nil, fmt.Errorf("codec: schema registry client: %w", err)
		}
		c.reg = newRegistry(c, cl, o.notFoundTTL)
	}
	return c, nil
}

// Framing returns the framing Encode writes: Confluent with a registry,
// SingleObject without.
func (c *Codec) Framing() Framing {
	if c.reg != nil {
		return Confluent
	}
	return SingleObject
}

// Names returns the full names of the current schemas, sorted.
func (c *Codec) Names() []string { return append([]string(nil), c.names...) }

// Schema returns the current version of a schema, by full or short name.
func (c *Codec) Schema(name string) (Schema, error) {
	e, ok := c.byName[name]
	if !ok {
		return Schema{}, &Error{Op: "schema", Schema: name, Err: ErrUnknownSchema}
	}
	return e.Schema, nil
}

// Subject is the registry subject values of a topic are registered under
// (TopicNameStrategy, "<topic>-value"); for an empty topic it is the
// schema's full name (RecordNameStrategy).
func Subject(topic, schema string) string {
	if topic == "" {
		return schema
	}
	return topic + "-value"
}

// Register registers the current version of schema under the subject of
// topic and returns its registry id, so that a service can fail at start
// instead of on its first record. Without a registry it returns 0 and nil.
func (c *Codec) Register(ctx context.Context, topic, schema string) (int, error) {
	e, ok := c.byName[schema]
	if !ok {
		return 0, &Error{Op: "register", Schema: schema, Err: ErrUnknownSchema}
	}
	if c.reg == nil {
		return 0, nil
	}
	id, err := c.reg.id(ctx, Subject(topic, e.Name), e)
	if err != nil {
		return 0, &Error{Op: "register", Schema: e.Name, Fingerprint: e.Fingerprint, Err: err}
	}
	return id, nil
}

// Encode encodes native, a value of the current version of schema (full or
// short name) in goavro's native form (records as map[string]any, unions as
// nil or map[string]any{branch: value}, timestamps as time.Time), for
// topic. Fields left out of a record get their defaults. With a registry the
// schema is registered under the topic's subject on first use (ctx bounds
// that request); without one, ctx and topic are unused.
func (c *Codec) Encode(ctx context.Context, topic, schema string, native any) ([]byte, error) {
	return c.AppendEncode(ctx, nil, topic, schema, native)
}

// AppendEncode is Encode appending to dst.
func (c *Codec) AppendEncode(ctx context.Context, dst []byte, topic, schema string, native any) ([]byte, error) {
	e, ok := c.byName[schema]
	if !ok {
		return dst, &Error{Op: "encode", Schema: schema, Err: ErrUnknownSchema}
	}
	dst, start, err := c.appendHeader(ctx, dst, topic, e)
	if err != nil {
		return dst, err
	}
	out, err := e.codec.BinaryFromNative(dst, native)
	if err != nil {
		return dst[:start], &Error{Op: "encode", Schema: e.Name, Fingerprint: e.Fingerprint, Err: fmt.Errorf("%w: %v", ErrEncode, err)}
	}
	c.hints[e].Store(int64(len(out) - start))
	return out, nil
}

// appendHeader starts a value of e for topic: it appends to dst (made with
// room for the last value of e when nil) the Confluent header with a
// registry, registering e under the topic's subject on first use, or the
// single-object header without, and returns where the value starts.
func (c *Codec) appendHeader(ctx context.Context, dst []byte, topic string, e *entry) (_ []byte, start int, _ error) {
	if dst == nil {
		dst = make([]byte, 0, c.hints[e].Load()+soeHeaderLen)
	}
	start = len(dst)
	if c.reg != nil {
		id, err := c.reg.id(ctx, Subject(topic, e.Name), e)
		if err != nil {
			return dst, start, &Error{Op: "encode", Schema: e.Name, Fingerprint: e.Fingerprint, Err: err}
		}
		dst = append(dst, 0)
		return binary.BigEndian.AppendUint32(dst, uint32(id)), start, nil
	}
	dst = append(dst, soeMagic0, soeMagic1)
	return binary.LittleEndian.AppendUint64(dst, e.Fingerprint), start, nil
}

// Decoded is a decoded value.
type Decoded struct {
	// Schema is the full name of the value's schema; Native is in the
	// current version of it.
	Schema string
	// Native is the record in goavro's native form. It is the caller's to
	// keep and modify.
	Native map[string]any
	// Framing is the wire format the value came in.
	Framing Framing
	// Fingerprint is the CRC-64-AVRO fingerprint of the writer's schema.
	Fingerprint uint64
	// SchemaID is the registry id of the writer's schema, 0 for
	// single-object values.
	SchemaID int
	// Resolved is true when the writer used another version of the schema
	// and the value was resolved into the current one.
	Resolved bool
}

// Decode decodes a value in either framing (told apart by its first byte):
// single-object values by the fingerprint of a compiled-in schema, current or
// past; Confluent values by registry id, fetching ids it has not seen from the
// registry (bounded by ctx) and caching them. A value written with a past
// version is resolved into the current version by Avro's rules: fields the
// reader added get their defaults, fields it dropped are skipped, numbers are
// promoted. Errors are *Error; IsDataError tells those caused by the bytes.
// Decode never panics on any input and allocates in proportion to its
// length.
func (c *Codec) Decode(ctx context.Context, data []byte) (Decoded, error) {
	w, d, body, err := c.frame(ctx, data)
	if err != nil {
		return d, err
	}
	return c.decodeBody(w, d, body)
}

// frame reads the framing of a value: its writer's schema, the Decoded
// describing the framing, and the body.
func (c *Codec) frame(ctx context.Context, data []byte) (w *entry, d Decoded, body []byte, err error) {
	if len(data) == 0 {
		return nil, d, nil, &Error{Op: "decode", Err: fmt.Errorf("%w: empty value", ErrTruncated)}
	}
	switch data[0] {
	case soeMagic0:
		if len(data) < soeHeaderLen {
			return nil, d, nil, &Error{Op: "decode", Err: fmt.Errorf("%w: %d bytes, a single-object header takes %d", ErrTruncated, len(data), soeHeaderLen)}
		}
		if data[1] != soeMagic1 {
			return nil, d, nil, &Error{Op: "decode", Err: fmt.Errorf("%w: %#x %#x", ErrBadMagic, data[0], data[1])}
		}
		d.Framing = SingleObject
		d.Fingerprint = binary.LittleEndian.Uint64(data[2:soeHeaderLen])
		w = c.byFP[d.Fingerprint]
		if w == nil {
			return nil, d, nil, &Error{Op: "decode", Fingerprint: d.Fingerprint, Err: fmt.Errorf("%w: fingerprint not compiled in", ErrUnknownSchema)}
		}
		body = data[soeHeaderLen:]
	case 0:
		if len(data) < confluentHeaderLen {
			return nil, d, nil, &Error{Op: "decode", Err: fmt.Errorf("%w: %d bytes, a Confluent header takes %d", ErrTruncated, len(data), confluentHeaderLen)}
		}
		d.Framing = Confluent
		d.SchemaID = int(binary.BigEndian.Uint32(data[1:confluentHeaderLen]))
		if c.reg == nil {
			return nil, d, nil, &Error{Op: "decode", SchemaID: d.SchemaID, Err: ErrNoRegistry}
		}
		if w, err = c.reg.writer(ctx, d.SchemaID); err != nil {
			return nil, d, nil, &Error{Op: "decode", SchemaID: d.SchemaID, Err: err}
		}
		d.Fingerprint = w.Fingerprint
		body = data[confluentHeaderLen:]
	default:
		return nil, d, nil, &Error{Op: "decode", Err: fmt.Errorf("%w: first byte %#x", ErrBadMagic, data[0])}
	}
	return w, d, body, nil
}

// decodeBody decodes the body of a value written with w, by goavro, and
// resolves it into the current version of the schema.
func (c *Codec) decodeBody(w *entry, d Decoded, body []byte) (Decoded, error) {
	fail := func(err error) (Decoded, error) {
		return d, &Error{Op: "decode", Schema: w.Name, Fingerprint: d.Fingerprint, SchemaID: d.SchemaID, Err: err}
	}
	if w.reader == nil {
		return fail(fmt.Errorf("%w: no current schema named %s", ErrUnknownSchema, w.Name))
	}
	if err := scanValue(w.root, body); err != nil {
		return fail(err)
	}
	native, _, err := w.codec.NativeFromBinary(body)
	if err != nil {
		return fail(fmt.Errorf("%w: %v", ErrMalformed, err))
	}
	if w != w.reader {
		if native, err = resolve(w.root, w.reader.root, native); err != nil {
			return fail(fmt.Errorf("%w: %v", ErrIncompatible, err))
		}
		d.Resolved = true
	}
	m, ok := native.(map[string]any)
	if !ok {
		return fail(fmt.Errorf("%w: decoded %T, not a record", ErrMalformed, native))
	}
	d.Schema, d.Native = w.reader.Name, m
	return d, nil
}
