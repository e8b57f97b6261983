package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/lifecycle"
	"github.com/freshet/freshet/pkg/logging"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/services/sse-gateway/internal/auth"
	"github.com/freshet/freshet/services/sse-gateway/internal/limit"
	"github.com/freshet/freshet/services/sse-gateway/internal/rum"
	"github.com/freshet/freshet/services/sse-gateway/web"
)

// Name is the service's name in logs and as its Kafka client id.
const Name = "sse-gateway"

// Gateway is the sse-gateway: the consumer of content.deliveries, the
// streams of /v1/stream, the beacons of /v1/rum and the client of
// /v1/client.js. New binds the listener; Run does the rest.
type Gateway struct {
	cfg      Config
	log      *zap.Logger
	pipe     *pipeline.Pipeline
	topic    string // deliveries
	rumTopic string
	codec    *codec.Codec
	verifier *auth.Verifier
	kopts    []kgo.Opt
	client   *kgo.Client // produces beacons and dead letters
	adm      *kadm.Client
	dlq      *kafka.DLQ
	ln       net.Listener
	srv      *http.Server
	rum      *rum.Handler
	metrics  *metrics

	hub      atomic.Pointer[hub]
	nparts   int
	keyPart  kgo.TopicPartitioner
	total    atomic.Int64
	active   atomic.Int64 // streams whose writer has not ended
	perUser  *limit.Counter
	perIP    *limit.Counter
	connRate *limit.Rate
	replays  chan struct{}
	origins  map[string]bool

	lifecycle.ReadyFlag
	closeOnce sync.Once
	closeErr  error
}

// Option changes what New builds, for tests and tools.
type Option func(*options)

type options struct {
	deliveries, beacons string
	pipe                *pipeline.Pipeline
}

// WithTopics names the topics read and written, instead of the design's
// content.deliveries and rum.beacons (tests use per-test names).
func WithTopics(deliveries, beacons string) Option {
	return func(o *options) { o.deliveries, o.beacons = deliveries, beacons }
}

// WithPipeline uses p instead of loading the pipeline file.
func WithPipeline(p *pipeline.Pipeline) Option { return func(o *options) { o.pipe = p } }

// New validates cfg, loads the pipeline file and the JWKS, builds the Kafka
// client (it does not connect yet) and binds the public listener.
func New(cfg Config, log *zap.Logger, opts ...Option) (*Gateway, error) {
	o := options{deliveries: pipeline.TopicContentDeliveries, beacons: pipeline.TopicRUMBeacons}
	for _, opt := range opts {
		opt(&o)
	}
	for _, v := range []interface{ Validate() error }{&cfg.Common, &cfg.Gateway, &cfg.Auth, &cfg.RUM} {
		if err := v.Validate(); err != nil {
			return nil, err
		}
	}
	if log == nil {
		log = zap.NewNop()
	}
	pipe := o.pipe
	if pipe == nil {
		var err error
		if pipe, err = pipeline.Load(cfg.Pipeline); err != nil {
			return nil, err
		}
	}
	g := &Gateway{
		cfg: cfg, log: log, pipe: pipe, topic: o.deliveries, rumTopic: o.beacons,
		perUser:  limit.NewCounter(cfg.Gateway.MaxConnsPerUser),
		perIP:    limit.NewCounter(cfg.Gateway.MaxConnsPerIP),
		connRate: &limit.Rate{PerSecond: cfg.Gateway.ConnectRate, Burst: cfg.Gateway.ConnectBurst},
		replays:  make(chan struct{}, cfg.Gateway.ReplayConcurrency),
		origins:  map[string]bool{},
		keyPart:  kgo.StickyKeyPartitioner(nil).ForTopic(o.deliveries),
		metrics:  newMetrics(),
	}
	for _, origin := range cfg.Gateway.CORSOrigins {
		g.origins[origin] = true
	}
	g.SetNotReady(errors.New("starting: reading content.deliveries"))

	var err error
	var codecOpts []codec.Option
	if cfg.Kafka.SchemaRegistryURL != "" {
		codecOpts = append(codecOpts, codec.WithRegistry(cfg.Kafka.SchemaRegistryURL))
	}
	if g.codec, err = codec.New(codecOpts...); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if g.verifier, err = auth.NewVerifier(ctx, cfg.Auth); err != nil {
		return nil, fmt.Errorf("FRESHET_AUTH: %w", err)
	}
	if g.kopts, err = kafka.Opts(kafka.FromConfig(cfg.Kafka, Name), logging.Named(log, "kafka")); err != nil {
		return nil, err
	}
	if g.client, err = kgo.NewClient(g.kopts...); err != nil {
		return nil, err
	}
	g.adm = kadm.NewClient(g.client)
	g.dlq = kafka.NewDLQ(g.client, kafka.DLQOptions{Component: Name + "/decode"})
	g.rum = rum.NewHandler(cfg.RUM, rum.Deps{
		Produce: g.produceBeacon, Verifier: g.verifier, Cookie: cfg.Auth.Cookie,
		ClientIP: g.clientIP, Log: logging.Named(log, "rum"),
	})

	mux := http.NewServeMux()
	mux.HandleFunc("/v1/stream", g.serveStream)
	mux.Handle("/v1/rum", g.withCORS(g.rum, "POST, OPTIONS"))
	mux.Handle("/v1/client.js", web.Handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: see docs/sse-gateway.md")
	})
	g.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          zap.NewStdLog(logging.Named(log, "http")),
	}
	if g.ln, err = net.Listen("tcp", cfg.Gateway.Addr); err != nil {
		g.client.Close()
		return nil, fmt.Errorf("FRESHET_GATEWAY_ADDR: listen %s: %w", cfg.Gateway.Addr, err)
	}
	return g, nil
}

// Name implements lifecycle.Named.
func (g *Gateway) Name() string { return "gateway" }

// Addr is the address of the public listener.
func (g *Gateway) Addr() net.Addr { return g.ln.Addr() }

// URL is "http://" and Addr.
func (g *Gateway) URL() string { return "http://" + g.ln.Addr().String() }

// Metrics returns the gateway's Prometheus collectors, for the admin
// server's registry.
func (g *Gateway) Metrics() []Collector { return g.metrics.all() }

// Run creates the topics it needs, reads content.deliveries and serves
// streams until ctx is cancelled. Then it tells every stream to reconnect
// (to another replica), waits for them to end within the shutdown deadline
// and returns nil.
func (g *Gateway) Run(ctx context.Context) error {
	if err := g.start(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	h := g.hub.Load()

	consumerCtx, stopConsumer := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConsumer()
	consumerDone := make(chan error, 1)
	go func() { consumerDone <- g.consume(consumerCtx, h) }()
	serveDone := make(chan error, 1)
	go func() { serveDone <- g.srv.Serve(g.ln) }()
	verifierCtx, stopVerifier := context.WithCancel(ctx)
	defer stopVerifier()
	go g.verifier.Run(verifierCtx, func(err error) {
		g.log.Warn("JWKS refresh failed; the previous keys stay in use", logging.Error(err))
	})
	go func() { // ends the streams whose client went away
		t := time.NewTicker(reapInterval)
		defer t.Stop()
		for {
			select {
			case <-verifierCtx.Done():
				return
			case <-t.C:
				reap(h.streams(""))
			}
		}
	}()

	partitionsChanged := make(chan error, 1)
	go func() { partitionsChanged <- g.watchPartitions(verifierCtx) }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-partitionsChanged:
	case err = <-consumerDone:
		err = fmt.Errorf("consume %s: %w", g.topic, err)
	case err = <-serveDone:
		if errors.Is(err, http.ErrServerClosed) {
			err = nil // Close was called
		} else {
			err = fmt.Errorf("serve %s: %w", g.cfg.Gateway.Addr, err)
		}
	}
	g.SetNotReady(errors.New("shutting down"))
	g.log.Info("closing streams", zap.Int("streams", h.count()))
	h.shutdown()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.ShutdownTimeout)
	defer cancel()
	if serr := g.srv.Shutdown(sctx); serr != nil && err == nil {
		err = fmt.Errorf("shut down streams: %w", serr)
	}
	// Hijacked streams are not the server's any more: wait for their writers.
	for g.active.Load() > 0 && sctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if n := g.active.Load(); n > 0 {
		h.kill()
		if err == nil {
			err = fmt.Errorf("shut down streams: %d still writing at the deadline", n)
		}
	}
	stopConsumer()
	if cerr := <-consumerDone; cerr != nil && err == nil && !errors.Is(cerr, context.Canceled) {
		err = cerr
	}
	return err
}

// start creates the topics, lists the partitions and where to read them
// from, and sets up the hub: each partition is read from History records
// before its end, so that recent resumes come from memory after a restart.
func (g *Gateway) start(ctx context.Context) error {
	specs := []kafka.TopicSpec{
		kafka.TopicSpecFor(g.pipe, pipeline.TopicContentDeliveries, g.topic),
		kafka.TopicSpecFor(g.pipe, pipeline.TopicRUMBeacons, g.rumTopic),
		kafka.TopicSpecFromPipeline(g.pipe.DLQTopic(pipeline.TopicContentDeliveries), kafka.DLQTopic(g.topic)),
	}
	drifts, err := kafka.EnsureTopics(ctx, g.adm, specs...)
	if err != nil {
		return err
	}
	for _, d := range drifts {
		g.log.Warn("topic differs from the pipeline file", zap.Stringer("drift", d))
	}
	start, end, err := g.listOffsets(ctx)
	if err != nil {
		return err
	}
	n := len(start)
	for p := range n {
		start[p] = max(start[p], end[p]-int64(g.cfg.Gateway.History))
	}
	g.nparts = n
	g.hub.Store(newHub(start, end, g.cfg.Gateway.History))
	return nil
}

// ErrPartitionsChanged is what Run returns when the deliveries topic no
// longer has the partitions the replica serves: a restart serves them all.
var ErrPartitionsChanged = errors.New("the partitions of the deliveries topic changed")

// watchPartitions counts the partitions of the deliveries topic every
// PartitionCheck and returns an ErrPartitionsChanged error when the count is
// no longer the one served; nil when ctx ends. A failed count is retried at
// the next tick.
func (g *Gateway) watchPartitions(ctx context.Context) error {
	t := time.NewTicker(g.cfg.Gateway.PartitionCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		topics, err := g.adm.ListTopics(ctx, g.topic)
		if err == nil {
			err = topics.Error()
		}
		if err != nil {
			if ctx.Err() == nil {
				g.log.Warn("count the partitions of the deliveries topic", logging.Topic(g.topic), logging.Error(err))
			}
			continue
		}
		if n := len(topics[g.topic].Partitions); n != 0 && n != g.nparts {
			return fmt.Errorf("%w: %s has %d partitions, this replica serves %d; shutting down so that a restart serves them all",
				ErrPartitionsChanged, g.topic, n, g.nparts)
		}
	}
}

// Close closes the listener, every stream (without a last event: the
// graceful path is cancelling Run) and the Kafka client. Safe to call twice.
func (g *Gateway) Close(ctx context.Context) error {
	g.closeOnce.Do(func() {
		if h := g.hub.Load(); h != nil {
			h.kill()
		}
		if err := g.srv.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			g.closeErr = err
		}
		g.ln.Close()
		g.client.Close()
	})
	return g.closeErr
}

// produceBeacon writes one beacon to rum.beacons and waits for the ack.
func (g *Gateway) produceBeacon(ctx context.Context, key string, ev rum.Event) error {
	value, err := g.codec.EncodeEvent(ctx, g.rumTopic, ev)
	if err != nil {
		return err
	}
	return g.client.ProduceSync(ctx, &kgo.Record{Topic: g.rumTopic, Key: []byte(key), Value: value}).FirstErr()
}

// listOffsets returns the log start and last stable offset of every partition
// of the deliveries topic. A topic just created may not be listed by every
// broker yet: it retries for a while.
func (g *Gateway) listOffsets(ctx context.Context) (start, end []int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		start, end, err = g.tryListOffsets(ctx)
		if err == nil {
			return start, end, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (g *Gateway) tryListOffsets(ctx context.Context) (start, end []int64, err error) {
	bounds, err := kafka.LogBounds(ctx, g.adm, g.topic)
	if err != nil {
		return nil, nil, err
	}
	n := len(bounds)
	if n == 0 {
		return nil, nil, fmt.Errorf("topic %s: partitions not listed yet", g.topic)
	}
	start, end = make([]int64, n), make([]int64, n)
	for p := range n {
		b, ok := bounds[int32(p)]
		if !ok {
			return nil, nil, fmt.Errorf("topic %s partition %d not listed", g.topic, p)
		}
		start[p], end[p] = b.Start, b.Stable
	}
	return start, end, nil
}
