package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Bounds are where a partition's log starts and its last stable offset: the
// end for read_committed readers, which is the end offset when no
// transaction is open.
type Bounds struct {
	Start, Stable int64
}

// LogBounds returns the Bounds of every partition of topic. A partition
// that one of the two listings lacks is left out; a partition error, or no
// partition listed at all (a topic not created yet, or not yet in adm's
// metadata), fails the whole call.
func LogBounds(ctx context.Context, adm *kadm.Client, topic string) (map[int32]Bounds, error) {
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	stable, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	out := map[int32]Bounds{}
	var errs []error
	stable.Each(func(e kadm.ListedOffset) {
		s, ok := starts.Lookup(topic, e.Partition)
		if !ok {
			return
		}
		if s.Err != nil || e.Err != nil {
			errs = append(errs, fmt.Errorf("list offsets of %s partition %d: %w", topic, e.Partition, errors.Join(s.Err, e.Err)))
			return
		}
		out[e.Partition] = Bounds{Start: s.Offset, Stable: e.Offset}
	})
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("topic %s: no partition listed", topic)
	}
	return out, nil
}
