package input

import (
	"context"
	"errors"
	"fmt"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/services/personalizer/internal/profiles"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Profile is a decoded user.profiles record: a profile to upsert, or
// a user to delete (tombstone or deleted=true).
type Profile struct {
	// UserID is the user the record is about.
	UserID string
	// Profile is the profile to upsert, when not Deleted.
	Profile profiles.Profile
	// Deleted is set for a tombstone or deleted=true.
	Deleted bool
	// Err says why the record is malformed (then it belongs in the DLQ).
	Err error
}

// DecodeProfile decodes a user.profiles record with c. It never panics: the
// record is outside bytes (FuzzDecodeRecords).
func DecodeProfile(ctx context.Context, c *codec.Codec, r *kgo.Record) Profile {
	if r.Value == nil {
		if len(r.Key) == 0 {
			return Profile{Err: errors.New("tombstone without a key")}
		}
		return Profile{UserID: string(r.Key), Deleted: true}
	}
	ev, _, err := c.DecodeTyped(ctx, r.Value)
	if err != nil {
		return Profile{Err: fmt.Errorf("decode user profile: %w", err)}
	}
	up, ok := ev.(*events.UserProfile)
	if !ok {
		return Profile{Err: fmt.Errorf("decode user profile: a %s on %s", ev.Schema(), r.Topic)}
	}
	id := up.UserID
	if id == "" {
		id = string(r.Key)
	}
	if id == "" {
		return Profile{Err: errors.New("user profile without a user id")}
	}
	if up.Deleted {
		return Profile{UserID: id, Deleted: true}
	}
	p := profiles.Profile{UserID: id, Partition: r.Partition, Locale: up.Locale, Region: up.Region,
		Follows: up.Follows, Segments: up.Segments, Interests: make([]profiles.Interest, len(up.Interests))}
	for i, in := range up.Interests {
		p.Interests[i] = profiles.Interest{Tag: in.Tag, Weight: in.Weight}
	}
	return Profile{UserID: id, Profile: p}
}
