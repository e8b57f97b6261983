package app

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"runtime/debug"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"go.uber.org/zap"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/lifecycle"
	"github.com/freshet/freshet/pkg/logging"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/services/cdc-ingestor/internal/capture"
	"github.com/freshet/freshet/services/cdc-ingestor/internal/ingest"
)

// Name is the service's name.
const Name = "cdc-ingestor"

// Config is the service's configuration, read from FRESHET_* variables.
type Config struct {
	config.Common
	// PostgresDSN is the database whose tables are captured. It may hold a
	// password, so it is a Secret.
	PostgresDSN config.Secret `env:"POSTGRES_DSN" default:"postgres://postgres@127.0.0.1:5432/freshet?sslmode=disable" help:"Postgres connection URL of the captured database (the ingestor creates its publication and replication slot there)."`
	// Ingest configures HTTP ingest.
	Ingest Ingest `env:"INGEST"`
	// LatencySamples caps commit-to-ack samples sent to pipeline.latency.
	LatencySamples int `env:"LATENCY_SAMPLES" default:"100" help:"Commit-to-ack latency samples produced to pipeline.latency per second, at most (0 turns them off)."`
	// StatusInterval is how often the confirmed LSN is sent to Postgres.
	StatusInterval time.Duration `env:"STATUS_INTERVAL" default:"1s" help:"How often the slot's confirmed LSN is reported to Postgres."`
	// Pprof serves /debug/pprof/ on the admin listener. Default false.
	Pprof bool `env:"CDC_PPROF" default:"false" help:"Serve /debug/pprof/ on the admin listener."`
}

// Ingest configures POST /v1/events.
type Ingest struct {
	Addr     string          `env:"ADDR" default:":8080" help:"Listen address of HTTP ingest (POST /v1/events)."`
	APIKeys  config.Secret   `env:"API_KEYS" help:"API keys of HTTP ingest, comma-separated name:key pairs (keys of 16 characters or more); empty refuses every request. Only names are logged."`
	MaxBody  config.ByteSize `env:"MAX_BODY" default:"1MiB" help:"Largest request body accepted."`
	MaxBatch int             `env:"MAX_BATCH" default:"1000" help:"Most events in one request."`
	Rate     float64         `env:"RATE" default:"1000" help:"Events per second each API key may send (token bucket)."`
	Burst    int             `env:"BURST" default:"2000" help:"Token bucket size per API key."`
}

// Validate checks what Load cannot.
func (c *Config) Validate() error {
	u, err := url.Parse(c.PostgresDSN.Reveal())
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || len(u.Path) < 2 {
		return config.FieldErrorf("PostgresDSN", "want postgres://user@host:port/database")
	}
	if c.LatencySamples < 0 {
		return config.FieldErrorf("LatencySamples", "must not be negative")
	}
	return nil
}

// Validate checks the ingest settings.
func (i *Ingest) Validate() error {
	if _, err := ingest.ParseKeys(i.APIKeys.Reveal()); err != nil {
		return config.FieldErrorf("APIKeys", "%v", err)
	}
	if i.MaxBody <= 0 || i.MaxBatch <= 0 || i.Rate <= 0 || i.Burst <= 0 {
		return config.FieldErrorf("MaxBody", "MAX_BODY, MAX_BATCH, RATE and BURST must be positive")
	}
	return nil
}

// Main runs the service; with the argument "check" it checks the pipeline
// file instead ("check -v" prints it whole).
func Main(ctx context.Context) error {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "check" {
		// check reads only the pipeline path: the rest of the
		// configuration need not be valid to check a file.
		_, err := pipeline.CheckCommand(args[1:], os.Stdout)
		return err
	}
	if len(args) > 0 {
		return fmt.Errorf("unknown command %q (commands: check)", args[0])
	}
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	log, err := logging.ForService(Name, cfg.Log)
	if err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(capture.GCPercent)
	}
	defer log.Sync()
	return Run(ctx, cfg, log, prometheus.DefaultRegisterer)
}

// Run runs the service with cfg until ctx is cancelled.
func Run(ctx context.Context, cfg Config, log *zap.Logger, reg prometheus.Registerer) error {
	p, err := pipeline.Load(cfg.Pipeline)
	if err != nil {
		return err
	}
	keys, _ := ingest.ParseKeys(cfg.Ingest.APIKeys.Reveal())
	client, err := kafka.NewClient(kafka.FromConfig(cfg.Kafka, Name), log.Named("kafka"))
	if err != nil {
		return err
	}
	defer client.Close()
	cdc, err := codec.New(codec.WithRegistry(cfg.Kafka.SchemaRegistryURL))
	if err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	drift, err := kafka.EnsureTopics(startCtx, kadm.NewClient(client), TopicSpecs(p)...)
	if err != nil {
		return fmt.Errorf("topics: %w", err)
	}
	for _, d := range drift {
		log.Warn("existing topic differs from the pipeline file", zap.Any("drift", d))
	}
	if err := register(startCtx, cdc, p); err != nil {
		return err
	}
	var sampler *capture.LatencySampler
	comps := []lifecycle.Component{}
	if cfg.LatencySamples > 0 {
		sampler = capture.NewLatencySampler(client, cdc, pipeline.TopicPipelineLatency, cfg.LatencySamples)
		comps = append(comps, sampler)
	}
	capt, err := capture.New(capture.Options{
		DSN: cfg.PostgresDSN.Reveal(), Pipeline: p, Client: client, Codec: cdc,
		Metrics: capture.NewMetrics(reg), Latency: sampler, StatusInterval: cfg.StatusInterval,
	}, log.Named("capture"))
	if err != nil {
		return err
	}
	srv, err := ingest.New(ingest.Options{
		Addr: cfg.Ingest.Addr, Keys: keys, Topic: pipeline.TopicContentChanges, Client: client, Codec: cdc,
		MaxBody: int64(cfg.Ingest.MaxBody), MaxBatch: cfg.Ingest.MaxBatch, Rate: cfg.Ingest.Rate, Burst: cfg.Ingest.Burst, Registerer: reg,
	}, log.Named("ingest"))
	if err != nil {
		return err
	}
	admin, err := lifecycle.NewAdmin(lifecycle.AdminConfig{Addr: cfg.Admin.Addr, Pprof: cfg.Pprof})
	if err != nil {
		srv.Close(ctx)
		return err
	}
	// A re-snapshot reads whole tables: only holders of an API key may ask.
	admin.Handle("/snapshot", ingest.RequireKey(keys, capt.SnapshotHandler()))
	comps = append(comps, capt, srv)
	log.Info("starting", zap.String("ingest_addr", srv.Addr().String()), zap.Int("api_keys", len(keys)), zap.String("pipeline", cfg.Pipeline),
		zap.String("slot", p.Capture.Slot), zap.String("publication", p.Capture.Publication))
	return lifecycle.Run(ctx, log, lifecycle.Options{ShutdownTimeout: cfg.ShutdownTimeout, Admin: admin}, comps...)
}

// TopicSpecs returns the topics the ingestor writes: each captured table's,
// the outbox's, content.changes (HTTP ingest) with their dead-letter topics,
// and pipeline.latency, with the pipeline file's settings.
func TopicSpecs(p *pipeline.Pipeline) []kafka.TopicSpec {
	names := []string{pipeline.TopicContentChanges}
	for _, t := range p.Capture.Tables {
		names = append(names, t.Topic)
	}
	if p.Capture.Outbox.Prefix != "" {
		names = append(names, p.Capture.Outbox.Topic)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	var specs []kafka.TopicSpec
	for _, n := range names {
		dlq := pipeline.DLQTopicName(n)
		specs = append(specs, kafka.TopicSpecFor(p, n, n), kafka.TopicSpecFor(p, dlq, dlq))
	}
	return append(specs, kafka.TopicSpecFor(p, pipeline.TopicPipelineLatency, pipeline.TopicPipelineLatency))
}

// register registers the schemas up front when a registry is configured,
// so that a registry problem fails the start, not the first event.
func register(ctx context.Context, c *codec.Codec, p *pipeline.Pipeline) error {
	if c.Framing() != codec.Confluent {
		return nil
	}
	pairs := [][2]string{{pipeline.TopicContentChanges, events.ContentChangeSchema}, {pipeline.TopicPipelineLatency, events.LatencySampleSchema}}
	for _, t := range p.Capture.Tables {
		s := events.ContentChangeSchema
		if t.Event == pipeline.EventProfile {
			s = events.UserProfileSchema
		}
		pairs = append(pairs, [2]string{t.Topic, s})
	}
	for _, pr := range pairs {
		if _, err := c.Register(ctx, pr[0], pr[1]); err != nil {
			return fmt.Errorf("register schema %s for %s: %w", pr[1], pr[0], err)
		}
	}
	return nil
}
