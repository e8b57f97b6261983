package input

import (
	"context"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/services/personalizer/internal/profiles"
	"github.com/freshet/freshet/services/personalizer/internal/ptest"
	"github.com/freshet/freshet/services/personalizer/internal/scoring"
	"github.com/twmb/franz-go/pkg/kgo"
)

// FuzzDecodeRecords feeds outside bytes to the decoders of both input
// topics, and what they accept to the table and the scorer: nothing may
// panic, and a decoded profile must be found in the table after its upsert.
func FuzzDecodeRecords(f *testing.F) {
	c, err := codec.New()
	if err != nil {
		f.Fatal(err)
	}
	p, err := pipeline.Parse("fuzz.yaml", []byte(ptest.PipelineYAML(4, 2)))
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	up := events.UserProfile{UserID: "u1", Region: "fr", Interests: []events.Interest{{Tag: "go", Weight: 2}}, Follows: []string{"tag:go"}, Segments: []string{"all"}}
	upBytes, _ := c.EncodeEvent(ctx, "user.profiles", up)
	del := up
	del.Deleted = true
	delBytes, _ := c.EncodeEvent(ctx, "user.profiles", del)
	ch := events.ContentChange{Op: events.OpCreate, ContentID: "1", Tags: []string{"go"}, Attributes: map[string]string{"region": "fr", "breaking": "true"},
		Before: &events.ContentBefore{URLPath: "/old"}, MissingFields: []string{"title"}}
	chBytes, _ := c.EncodeEvent(ctx, "content.changes", ch)
	for _, seed := range [][]byte{upBytes, delBytes, chBytes, nil, {}, {0xc3, 0x01}, {0, 0, 0, 0, 1}, []byte("not avro")} {
		f.Add([]byte("u1"), seed, int32(1))
	}
	f.Add([]byte(nil), []byte(nil), int32(0))
	f.Fuzz(func(t *testing.T, key, value []byte, part int32) {
		r := &kgo.Record{Topic: "user.profiles", Key: key, Value: value, Partition: part}
		tb := profiles.New(0)
		if d := DecodeProfile(ctx, c, r); d.Err == nil {
			if d.Deleted {
				tb.Delete(d.UserID)
			} else {
				d.Profile.Partition = part
				tb.Upsert(d.Profile)
				if _, ok := tb.Get(d.UserID); !ok {
					t.Fatalf("profile %q not in the table after its upsert", d.UserID)
				}
			}
		} else if d.UserID != "" {
			t.Fatalf("an error with a user id: %+v", d)
		}
		r.Topic = "content.changes"
		change, err := c.DecodeChange(ctx, r.Topic, r.Value)
		if err != nil {
			return
		}
		s := scoring.New(&p.Personalization, 4)
		q := s.Prepare(tb, pipeline.ContentFields(change), time.Minute)
		hits, _ := s.Score(tb, &q, nil)
		for _, h := range hits {
			s.Reasons(tb, &q, h, nil)
		}
		p.Personalization.Channel(pipeline.ContentFields(change))
	})
}
