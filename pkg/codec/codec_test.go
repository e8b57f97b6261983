package codec

import (
	"context"
	"encoding/binary"
	"errors"
	"reflect"
	"sync"
	"testing"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/freshet/freshet/pkg/codec/codectest"
	"github.com/freshet/freshet/pkg/events"
)

// topicOf is the topic each schema goes to in the design.
var topicOf = map[string]string{
	events.ContentChangeSchema: "content.changes",
	events.UserProfileSchema:   "user.profiles",
	events.DeliverySchema:      "content.deliveries",
	events.PurgeAuditSchema:    "edge.purges",
	events.RumBeaconSchema:     "rum.beacons",
	events.LatencySampleSchema: "pipeline.latency",
}

func newCodec(t testing.TB, opts ...Option) *Codec {
	t.Helper()
	c, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLoadsTheSixEvents(t *testing.T) {
	c := newCodec(t)
	want := []string{
		events.ContentChangeSchema, events.DeliverySchema, events.LatencySampleSchema,
		events.PurgeAuditSchema, events.RumBeaconSchema, events.UserProfileSchema,
	}
	if got := c.Names(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	for _, name := range want {
		s, err := c.Schema(name)
		if err != nil {
			t.Fatal(err)
		}
		short, err := c.Schema(shortName(name))
		if err != nil || short.Fingerprint != s.Fingerprint {
			t.Errorf("Schema(%q) = %v, %v; want the schema of %s", shortName(name), short.Name, err, name)
		}
		// The registered text must stand alone: goavro compiles it with
		// no other schema known.
		if _, err := goavro.NewCodec(s.JSON); err != nil {
			t.Errorf("%s: resolved schema does not compile alone: %v", name, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	reg := codectest.NewRegistry()
	defer reg.Close()
	ctx := context.Background()
	codecs := map[Framing]*Codec{
		SingleObject: newCodec(t),
		Confluent:    newCodec(t, WithRegistry(reg.URL())),
	}
	for _, framing := range []Framing{SingleObject, Confluent} {
		c := codecs[framing]
		if c.Framing() != framing {
			t.Fatalf("Framing() = %v, want %v", c.Framing(), framing)
		}
		all := samples()
		for _, name := range sortedKeys(all) {
			ev := all[name]
			t.Run(framing.String()+"/"+name, func(t *testing.T) {
				topic := topicOf[ev.Schema()]
				data, err := c.EncodeEvent(ctx, topic, ev)
				if err != nil {
					t.Fatal(err)
				}
				schema, err := c.Schema(ev.Schema())
				if err != nil {
					t.Fatal(err)
				}
				checkHeader(t, framing, data, schema, reg, topic)

				got, d, err := c.DecodeEvent(ctx, data)
				if err != nil {
					t.Fatal(err)
				}
				if d.Schema != ev.Schema() || d.Framing != framing || d.Fingerprint != schema.Fingerprint || d.Resolved {
					t.Errorf("Decoded = %+v", d)
				}
				if want := asPointer(ev); !reflect.DeepEqual(got, want) {
					t.Errorf("typed round trip:\n got %#v\nwant %#v", got, want)
				}

				// The native form round-trips too.
				again, err := c.Encode(ctx, topic, d.Schema, d.Native)
				if err != nil {
					t.Fatal(err)
				}
				d2, err := c.Decode(ctx, again)
				if err != nil {
					t.Fatal(err)
				}
				if dump(d2.Native) != dump(d.Native) {
					t.Errorf("native round trip:\n got %s\nwant %s", dump(d2.Native), dump(d.Native))
				}
			})
		}
	}
}

// checkHeader checks the framing with code other than the codec's: goavro's
// own single-object decoder, and sr's Confluent header parser plus the
// registry's record of what was registered.
func checkHeader(t *testing.T, framing Framing, data []byte, schema Schema, reg *codectest.Registry, topic string) {
	t.Helper()
	switch framing {
	case SingleObject:
		if data[0] != 0xC3 || data[1] != 0x01 || binary.LittleEndian.Uint64(data[2:10]) != schema.Fingerprint {
			t.Fatalf("single-object header % x, want c3 01 and fingerprint %016x", data[:10], schema.Fingerprint)
		}
		gc, err := goavro.NewCodec(schema.JSON)
		if err != nil {
			t.Fatal(err)
		}
		if gc.Rabin != schema.Fingerprint {
			t.Fatalf("goavro fingerprint %016x, codec's %016x", gc.Rabin, schema.Fingerprint)
		}
		if _, rest, err := gc.NativeFromSingle(data); err != nil || len(rest) != 0 {
			t.Fatalf("goavro cannot read the single-object value: %v (%d bytes left)", err, len(rest))
		}
	case Confluent:
		var h sr.ConfluentHeader
		id, _, err := h.DecodeID(data)
		if err != nil {
			t.Fatal(err)
		}
		cl, err := sr.NewClient(sr.URLs(reg.URL()))
		if err != nil {
			t.Fatal(err)
		}
		ss, err := cl.LookupSchema(context.Background(), topic+"-value", sr.Schema{Schema: schema.JSON})
		if err != nil {
			t.Fatalf("schema not registered under %s-value: %v", topic, err)
		}
		if ss.ID != id {
			t.Fatalf("header id %d, registry id %d", id, ss.ID)
		}
	}
}

func asPointer(ev events.Event) events.Event {
	switch v := ev.(type) {
	case events.ContentChange:
		return &v
	case events.UserProfile:
		return &v
	case events.Delivery:
		return &v
	case events.PurgeAudit:
		return &v
	case events.RumBeacon:
		return &v
	case events.LatencySample:
		return &v
	}
	return ev
}

func TestRegistryCachesIDsBothWays(t *testing.T) {
	reg := codectest.NewRegistry()
	defer reg.Close()
	ctx := context.Background()
	producer := newCodec(t, WithRegistry(reg.URL()))
	ev := samples()["Delivery/full"]

	var values [][]byte
	for range 5 {
		data, err := producer.EncodeEvent(ctx, "content.deliveries", ev)
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, data)
	}
	if n := reg.Requests("POST /subjects/{subject}/versions"); n != 1 {
		t.Errorf("5 encodes registered %d times, want 1", n)
	}
	// The producer knows its own ids: no fetch to decode them.
	if _, err := producer.Decode(ctx, values[0]); err != nil {
		t.Fatal(err)
	}
	if n := reg.Requests("GET /schemas/ids/{id}"); n != 0 {
		t.Errorf("decoding an id the codec registered fetched it %d times", n)
	}

	// Another process fetches each id once, even when decoding in parallel.
	consumer := newCodec(t, WithRegistry(reg.URL()))
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			if _, _, err := consumer.DecodeEvent(ctx, values[1]); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := reg.Requests("GET /schemas/ids/{id}"); n != 1 {
		t.Errorf("50 decodes fetched the id %d times, want 1", n)
	}

	// Register up front, same id as Encode got.
	id, err := consumer.Register(ctx, "content.deliveries", events.DeliverySchema)
	if err != nil {
		t.Fatal(err)
	}
	if got := int(binary.BigEndian.Uint32(values[0][1:5])); id != got {
		t.Errorf("Register = %d, Encode used %d", id, got)
	}
	// Without a topic the subject is the record name.
	if _, err := consumer.Register(ctx, "", events.DeliverySchema); err != nil {
		t.Fatal(err)
	}
	cl, _ := sr.NewClient(sr.URLs(reg.URL()))
	subjects, err := cl.Subjects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"content.deliveries-value": true, events.DeliverySchema: true}
	if len(subjects) != len(want) || !want[subjects[0]] || !want[subjects[1]] {
		t.Errorf("subjects %v, want %v", subjects, want)
	}
}

func TestConcurrentUse(t *testing.T) {
	reg := codectest.NewRegistry()
	defer reg.Close()
	ctx := context.Background()
	for _, c := range []*Codec{newCodec(t), newCodec(t, WithRegistry(reg.URL()))} {
		all := samples()
		var wg sync.WaitGroup
		errs := make(chan error, 8*len(all))
		for range 8 {
			for _, name := range sortedKeys(all) {
				ev := all[name]
				wg.Go(func() {
					data, err := c.EncodeEvent(ctx, topicOf[ev.Schema()], ev)
					if err != nil {
						errs <- err
						return
					}
					got, _, err := c.DecodeEvent(ctx, data)
					if err != nil {
						errs <- err
						return
					}
					if !reflect.DeepEqual(got, asPointer(ev)) {
						errs <- errors.New(name + ": decoded value differs")
					}
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
	if n := reg.Requests("POST /subjects/{subject}/versions"); n != len(topicOf) {
		t.Errorf("registered %d times, want once per schema (%d)", n, len(topicOf))
	}
}
