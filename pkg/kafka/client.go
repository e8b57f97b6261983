package kafka

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/freshet/freshet/pkg/logging"
)

// DefaultLinger is how long the producer waits for more records before
// sending a batch to a partition. 5ms keeps the added latency well inside the
// pipeline's budgets (p99 commit-to-ack 50ms) while batching under load.
const DefaultLinger = 5 * time.Millisecond

// Opts returns the franz-go options for cfg, for callers that build the
// client themselves (kgo.NewGroupTransactSession takes options, not a
// client). The options are, in order:
//
//   - kgo.SeedBrokers(cfg.Brokers...) and kgo.ClientID (default "freshet");
//   - kgo.DialTLSConfig when TLS is on (the server name is set per broker
//     host by franz-go);
//   - kgo.SASL for plain, scram-sha-256 or scram-sha-512;
//   - kgo.WithLogger(logging.Kgo(log)) when log is not nil;
//   - producer defaults for a pipeline that must not lose or reorder
//     records: idempotent writes (franz-go's default, kept on),
//     kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(DefaultLinger),
//     and unbounded record retries (a record fails only when its context is
//     cancelled or the client closes).
//
// Options given to NewClient after these override them.
//
// It returns a [*ConfigError] naming the bad field.
func Opts(cfg Config, log *zap.Logger) ([]kgo.Opt, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	brokers := make([]string, len(cfg.Brokers))
	for i, b := range cfg.Brokers {
		brokers[i] = strings.TrimSpace(b)
	}
	clientID := cfg.ClientID
	if clientID == "" {
		clientID = DefaultClientID
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ClientID(clientID),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(DefaultLinger),
		kgo.RecordRetries(math.MaxInt64),
	}
	tlsCfg, err := cfg.TLS.config()
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil {
		opts = append(opts, kgo.DialTLSConfig(tlsCfg))
	}
	mech, err := cfg.SASL.mechanism()
	if err != nil {
		return nil, err
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	if log != nil {
		opts = append(opts, kgo.WithLogger(logging.Kgo(log)))
	}
	return opts, nil
}

// NewClient returns a franz-go client for cfg with the options of [Opts],
// then opts. It does not connect: the first request does, and fails if the
// brokers cannot be reached or refuse the credentials (call client.Ping to
// check at start). Close the client when done.
//
// It returns a [*ConfigError] naming the bad field, or the error of
// kgo.NewClient.
func NewClient(cfg Config, log *zap.Logger, opts ...kgo.Opt) (*kgo.Client, error) {
	base, err := Opts(cfg, log)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: new client: %w", err)
	}
	return cl, nil
}
