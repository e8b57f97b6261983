package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Cleanup policies accepted in [TopicSpec.CleanupPolicy].
const (
	// CleanupDelete drops segments older than the retention: event topics.
	CleanupDelete = "delete"
	// CleanupCompact keeps the latest record per key: tables such as
	// user.profiles.
	CleanupCompact = "compact"
	// CleanupCompactDelete compacts and also drops what is older than the
	// retention.
	CleanupCompactDelete = "compact,delete"
)

// Topic configuration keys that TopicSpec sets through its own fields.
const (
	configCleanupPolicy = "cleanup.policy"
	configRetentionMS   = "retention.ms"
)

// Field names used in [IncompatibleTopicError] and [Drift].
const (
	FieldPartitions        = "partitions"
	FieldReplicationFactor = "replication.factor"
	FieldCleanupPolicy     = configCleanupPolicy
	FieldRetention         = configRetentionMS
)

// TopicSpec is a topic a service needs, as [EnsureTopics] creates and
// verifies it. It is plain data.
type TopicSpec struct {
	// Name is the topic name: 1 to 249 characters of a-z, A-Z, 0-9, '.',
	// '_' and '-', and neither "." nor "..".
	Name string
	// Partitions is the partition count. An existing topic with another
	// count is incompatible: keys would not land where the service
	// expects (co-partitioned topics, per-key order). Zero means the
	// broker's default (num.partitions) and is not verified.
	Partitions int32
	// ReplicationFactor is the number of replicas. Zero means the
	// broker's default (default.replication.factor). A difference on an
	// existing topic is reported as a Drift, not an error.
	ReplicationFactor int16
	// CleanupPolicy is CleanupDelete, CleanupCompact or
	// CleanupCompactDelete. Empty means CleanupDelete. An existing topic
	// with another policy is incompatible: a compacted table must not lose
	// keys to retention, and an event topic must not lose events to
	// compaction.
	CleanupPolicy string
	// Retention is retention.ms. Zero means the broker's default and is
	// not verified; negative means forever (-1). A difference on an
	// existing topic is reported as a Drift.
	Retention time.Duration
	// Configs are other topic configs set at creation
	// ("min.insync.replicas", "max.message.bytes"). Differences on an
	// existing topic are reported as Drift. cleanup.policy and
	// retention.ms belong in the fields above.
	Configs map[string]string
}

// DLQ returns the spec of the dead letter topic of s: named DLQTopic(s.Name),
// the same partitions and replication factor, delete policy (a compacted DLQ
// would keep only the last failure per key), and the broker's default
// retention.
func (s TopicSpec) DLQ() TopicSpec {
	return TopicSpec{
		Name:              DLQTopic(s.Name),
		Partitions:        s.Partitions,
		ReplicationFactor: s.ReplicationFactor,
		CleanupPolicy:     CleanupDelete,
	}
}

// cleanupPolicy returns the policy, normalized: lowercase, sorted, defaulted.
func (s TopicSpec) cleanupPolicy() string {
	if s.CleanupPolicy == "" {
		return CleanupDelete
	}
	return normalizePolicy(s.CleanupPolicy)
}

func normalizePolicy(p string) string {
	var parts []string
	for _, part := range strings.Split(p, ",") {
		if part = strings.ToLower(strings.TrimSpace(part)); part != "" && !slices.Contains(parts, part) {
			parts = append(parts, part)
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// retentionMS returns retention.ms as a string, or "" when not set.
func (s TopicSpec) retentionMS() string {
	switch {
	case s.Retention == 0:
		return ""
	case s.Retention < 0:
		return "-1"
	}
	return strconv.FormatInt(s.Retention.Milliseconds(), 10)
}

// validate checks the spec.
func (s TopicSpec) validate() error {
	if err := validTopicName(s.Name); err != nil {
		return err
	}
	if s.Partitions < 0 {
		return fmt.Errorf("topic %q: partitions %d: must not be negative", s.Name, s.Partitions)
	}
	if s.ReplicationFactor < 0 {
		return fmt.Errorf("topic %q: replication factor %d: must not be negative", s.Name, s.ReplicationFactor)
	}
	if s.Retention > 0 && s.Retention < time.Millisecond {
		return fmt.Errorf("topic %q: retention %s: below one millisecond", s.Name, s.Retention)
	}
	switch s.cleanupPolicy() {
	case CleanupDelete, CleanupCompact, CleanupCompactDelete:
	default:
		return fmt.Errorf("topic %q: cleanup policy %q: want %s, %s or %s", s.Name, s.CleanupPolicy, CleanupDelete, CleanupCompact, CleanupCompactDelete)
	}
	for k := range s.Configs {
		if k == configCleanupPolicy || k == configRetentionMS {
			return fmt.Errorf("topic %q: config %q: set it with the TopicSpec field instead", s.Name, k)
		}
	}
	return nil
}

func validTopicName(name string) error {
	if name == "" {
		return errors.New("topic name is empty")
	}
	if len(name) > 249 {
		return fmt.Errorf("topic name %q: longer than 249 characters", name)
	}
	if name == "." || name == ".." {
		return fmt.Errorf("topic name %q: not allowed", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("topic name %q: character %q not allowed (want a-z, A-Z, 0-9, '.', '_', '-')", name, r)
		}
	}
	return nil
}

// createConfigs returns the configs to create the topic with.
func (s TopicSpec) createConfigs() map[string]*string {
	configs := make(map[string]*string, len(s.Configs)+2)
	for k, v := range s.Configs {
		configs[k] = kadm.StringPtr(v)
	}
	configs[configCleanupPolicy] = kadm.StringPtr(s.cleanupPolicy())
	if r := s.retentionMS(); r != "" {
		configs[configRetentionMS] = kadm.StringPtr(r)
	}
	return configs
}

// IncompatibleTopicError is an existing topic that a service cannot use as it
// is: its partition count or cleanup policy differs from the spec. The
// service must not start; an operator changes the topic or the spec.
type IncompatibleTopicError struct {
	// Topic is the topic's name.
	Topic string
	// Field is FieldPartitions or FieldCleanupPolicy.
	Field string
	// Want is the spec's value, Have the topic's.
	Want, Have string
}

// Error implements error.
func (e *IncompatibleTopicError) Error() string {
	return fmt.Sprintf("topic %q exists with %s %s, want %s", e.Topic, e.Field, e.Have, e.Want)
}

// Drift is a difference between an existing topic and its spec that does not
// keep the service from working (retention, replication factor, other
// configs). The caller decides: usually a warning in the log.
type Drift struct {
	// Topic is the topic's name.
	Topic string
	// Field is FieldRetention, FieldReplicationFactor or a config key.
	Field string
	// Want is the spec's value, Have the topic's ("" when unset).
	Want, Have string
}

// String says what differs.
func (d Drift) String() string {
	return fmt.Sprintf("topic %q has %s %q, spec wants %q", d.Topic, d.Field, d.Have, d.Want)
}

// afterList is a test hook run between listing and creating topics.
var afterList func()

// verifyAttempts bounds the retries of the verification of a topic that
// another client created while this one tried to: its metadata may take a
// moment to reach every broker.
const verifyAttempts = 20

// EnsureTopics creates the topics of specs that do not exist and verifies
// those that do. It returns:
//
//   - the drift of existing topics (retention, replication factor, other
//     configs), for the caller to log;
//   - an error wrapping one [*IncompatibleTopicError] per incompatibility
//     (partition count, cleanup policy), found with errors.As; the service
//     must refuse to start;
//   - any other error (invalid spec, broker unreachable, creation refused),
//     naming the topic.
//
// Topics it creates itself are not verified. A topic that another replica
// creates between the listing and the creation (TopicAlreadyExists) is
// verified like an existing one. Existing topics are never altered.
//
// The metadata is read from the brokers, not from the client's cache.
func EnsureTopics(ctx context.Context, adm *kadm.Client, specs ...TopicSpec) ([]Drift, error) {
	seen := make(map[string]bool, len(specs))
	names := make([]string, 0, len(specs))
	for _, s := range specs {
		if err := s.validate(); err != nil {
			return nil, fmt.Errorf("ensure topics: %w", err)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("ensure topics: topic %q listed twice", s.Name)
		}
		seen[s.Name] = true
		names = append(names, s.Name)
	}
	if len(specs) == 0 {
		return nil, nil
	}

	details, err := listTopics(ctx, adm, names...)
	if err != nil {
		return nil, fmt.Errorf("ensure topics: list topics: %w", err)
	}
	if afterList != nil {
		afterList()
	}

	var existing, raced []TopicSpec
	for _, s := range specs {
		d, ok := details[s.Name]
		switch {
		case ok && d.Err == nil:
			existing = append(existing, s)
			continue
		case ok && !errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			return nil, fmt.Errorf("ensure topics: describe topic %q: %w", s.Name, d.Err)
		}
		if err := createTopic(ctx, adm, s); err != nil {
			if !errors.Is(err, kerr.TopicAlreadyExists) {
				return nil, fmt.Errorf("ensure topics: %w", err)
			}
			raced = append(raced, s)
		}
	}

	drift, err := verifyTopics(ctx, adm, details, existing, false)
	if err != nil {
		return drift, err
	}
	if len(raced) > 0 {
		more, err := verifyTopics(ctx, adm, nil, raced, true)
		drift = append(drift, more...)
		if err != nil {
			return drift, err
		}
	}
	return drift, nil
}

// listTopics reads topic metadata from a broker, bypassing the client's
// metadata cache (which keeps "unknown topic" answers for a few seconds).
func listTopics(ctx context.Context, adm *kadm.Client, names ...string) (kadm.TopicDetails, error) {
	// kadm issues a direct metadata request, not a cached one, when asked
	// for authorized operations.
	return adm.ListTopics(kadm.WithAuthorizedOps(ctx), names...)
}

func createTopic(ctx context.Context, adm *kadm.Client, s TopicSpec) error {
	partitions, rf := s.Partitions, s.ReplicationFactor
	if partitions == 0 {
		partitions = -1
	}
	if rf == 0 {
		rf = -1
	}
	resp, err := adm.CreateTopic(ctx, partitions, rf, s.createConfigs(), s.Name)
	if err != nil {
		if resp.ErrMessage != "" {
			err = fmt.Errorf("%w: %s", err, resp.ErrMessage)
		}
		return fmt.Errorf("create topic %q: %w", s.Name, err)
	}
	return nil
}

// verifyTopics compares existing topics with their specs. details may hold
// their metadata already; when retry is set, topics that are not visible yet
// are looked up again, with a short backoff.
func verifyTopics(ctx context.Context, adm *kadm.Client, details kadm.TopicDetails, specs []TopicSpec, retry bool) ([]Drift, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	attempts := 1
	if retry {
		attempts = verifyAttempts
	}
	var configs map[string]map[string]string
	for attempt := 1; ; attempt++ {
		var err error
		if details == nil {
			details, err = listTopics(ctx, adm, names...)
		}
		if err == nil {
			err = topicsErr(details, names)
		}
		if err == nil {
			configs, err = describeConfigs(ctx, adm, names)
		}
		if err == nil {
			break
		}
		if attempt >= attempts || !errors.Is(err, kerr.UnknownTopicOrPartition) {
			return nil, fmt.Errorf("ensure topics: verify: %w", err)
		}
		details = nil
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("ensure topics: verify: %w (last error: %w)", ctx.Err(), err)
		case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
		}
	}

	var drift []Drift
	var errs []error
	for _, s := range specs {
		d := details[s.Name]
		have := configs[s.Name]
		if s.Partitions > 0 && int32(len(d.Partitions)) != s.Partitions {
			errs = append(errs, &IncompatibleTopicError{Topic: s.Name, Field: FieldPartitions, Want: strconv.Itoa(int(s.Partitions)), Have: strconv.Itoa(len(d.Partitions))})
		}
		if want, got := s.cleanupPolicy(), normalizePolicy(have[configCleanupPolicy]); want != got {
			errs = append(errs, &IncompatibleTopicError{Topic: s.Name, Field: FieldCleanupPolicy, Want: want, Have: got})
		}
		if want := s.retentionMS(); want != "" && !sameRetention(want, have[configRetentionMS]) {
			drift = append(drift, Drift{Topic: s.Name, Field: FieldRetention, Want: want, Have: have[configRetentionMS]})
		}
		if s.ReplicationFactor > 0 {
			if rf := replicationFactor(d); rf != int(s.ReplicationFactor) {
				drift = append(drift, Drift{Topic: s.Name, Field: FieldReplicationFactor, Want: strconv.Itoa(int(s.ReplicationFactor)), Have: strconv.Itoa(rf)})
			}
		}
		keys := make([]string, 0, len(s.Configs))
		for k := range s.Configs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if want := s.Configs[k]; have[k] != want {
				drift = append(drift, Drift{Topic: s.Name, Field: k, Want: want, Have: have[k]})
			}
		}
	}
	if len(errs) > 0 {
		return drift, fmt.Errorf("ensure topics: %w", errors.Join(errs...))
	}
	return drift, nil
}

// topicsErr returns the first load error of the named topics, or
// UnknownTopicOrPartition for one missing from details.
func topicsErr(details kadm.TopicDetails, names []string) error {
	for _, n := range names {
		d, ok := details[n]
		if !ok {
			return fmt.Errorf("topic %q: %w", n, kerr.UnknownTopicOrPartition)
		}
		if d.Err != nil {
			return fmt.Errorf("topic %q: %w", n, d.Err)
		}
	}
	return nil
}

// describeConfigs returns the configs of each topic, key to value.
func describeConfigs(ctx context.Context, adm *kadm.Client, names []string) (map[string]map[string]string, error) {
	rcs, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("describe topic configs: %w", err)
	}
	out := make(map[string]map[string]string, len(rcs))
	for _, rc := range rcs {
		if rc.Err != nil {
			return nil, fmt.Errorf("describe configs of topic %q: %w", rc.Name, rc.Err)
		}
		m := make(map[string]string, len(rc.Configs))
		for _, c := range rc.Configs {
			m[c.Key] = c.MaybeValue()
		}
		out[rc.Name] = m
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("describe configs of topic %q: %w", n, kerr.UnknownTopicOrPartition)
		}
	}
	return out, nil
}

func sameRetention(want, have string) bool {
	w, err1 := strconv.ParseInt(want, 10, 64)
	h, err2 := strconv.ParseInt(have, 10, 64)
	if err1 != nil || err2 != nil {
		return want == have
	}
	if w < 0 && h < 0 {
		return true
	}
	return w == h
}

// replicationFactor is the replica count of the topic's first partition.
func replicationFactor(d kadm.TopicDetail) int {
	for _, p := range d.Partitions.Sorted() {
		return len(p.Replicas)
	}
	return 0
}
