package wire

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// progressPrefix starts every encoded Progress, so that metadata written by
// another client (franz-go writes its member id) is told apart from ours.
const progressPrefix = "freshet.p1:"

// MaxProgressPartitions bounds the partitions a Progress may name, so that
// parsing allocates in proportion to what a topic can have.
const MaxProgressPartitions = 1 << 16

// ErrNotProgress is returned by ParseProgress for metadata that is not an
// encoded Progress (it lacks the prefix): a group offset committed by
// something else. The caller starts that partition from scratch.
var ErrNotProgress = errors.New("not personalizer progress")

// Progress maps a content.changes partition to the offset of the next change
// to process there for one user partition. A partition left out has
// processed nothing (start at the beginning).
type Progress map[int32]int64

// String encodes p as offset commit metadata:
// "freshet.p1:<partition>=<offset>,..." in partition order.
func (p Progress) String() string {
	var b strings.Builder
	b.WriteString(progressPrefix)
	for i, part := range slices.Sorted(maps.Keys(p)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(int64(part), 10))
		b.WriteByte('=')
		b.WriteString(strconv.FormatInt(p[part], 10))
	}
	return b.String()
}

// ParseProgress parses what Progress.String wrote. Metadata without the
// prefix yields ErrNotProgress; anything else malformed (a negative or
// repeated partition, a negative offset, too many partitions) is an error
// that says what is wrong.
func ParseProgress(s string) (Progress, error) {
	rest, ok := strings.CutPrefix(s, progressPrefix)
	if !ok {
		return nil, ErrNotProgress
	}
	p := Progress{}
	if rest == "" {
		return p, nil
	}
	for i, item := range strings.Split(rest, ",") {
		if i >= MaxProgressPartitions {
			return nil, fmt.Errorf("progress: more than %d partitions", MaxProgressPartitions)
		}
		ps, os, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("progress: item %d %q: want partition=offset", i, item)
		}
		part, err := strconv.ParseInt(ps, 10, 32)
		if err != nil || part < 0 {
			return nil, fmt.Errorf("progress: item %d: bad partition %q", i, ps)
		}
		off, err := strconv.ParseInt(os, 10, 64)
		if err != nil || off < 0 {
			return nil, fmt.Errorf("progress: item %d: bad offset %q", i, os)
		}
		if _, dup := p[int32(part)]; dup {
			return nil, fmt.Errorf("progress: partition %d twice", part)
		}
		p[int32(part)] = off
	}
	return p, nil
}
