package gateway

import (
	"errors"
	"net"
	"net/url"
	"time"

	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/services/sse-gateway/internal/auth"
	"github.com/freshet/freshet/services/sse-gateway/internal/rum"
)

// Config is the whole configuration of the sse-gateway, read from the
// environment by config.Load. docs/sse-gateway.md lists every variable.
type Config struct {
	config.Common
	// Gateway: the public listener and the streams (FRESHET_GATEWAY_*).
	Gateway Settings `env:"GATEWAY"`
	// Auth: which tokens open a stream (FRESHET_AUTH_*).
	Auth auth.Config `env:"AUTH"`
	// RUM: the beacons of POST /v1/rum (FRESHET_RUM_*).
	RUM rum.Config `env:"RUM"`
}

// Settings are the gateway's own settings.
type Settings struct {
	// Addr is the public listener of /v1/stream, /v1/rum and /v1/client.js.
	Addr string `env:"ADDR" default:":8081" help:"Listen address (host:port) of /v1/stream, /v1/rum and /v1/client.js."`
	// Heartbeat is the interval of the comment lines that keep proxies from
	// closing idle streams. Default 15s.
	Heartbeat time.Duration `env:"HEARTBEAT" default:"15s" help:"Interval of heartbeat comments on idle streams."`
	// Retry is the reconnection delay the streams advise (the SSE retry
	// field). Default 2s.
	Retry time.Duration `env:"RETRY" default:"2s" help:"Reconnection delay advised to clients (SSE retry:)."`
	// QueueSize bounds the events waiting for one slow stream. Default 256.
	QueueSize int `env:"QUEUE_SIZE" default:"256" help:"Events queued per stream; past it the slow-client policy applies (conflate, then re-read from the history, then disconnect)."`
	// WriteTimeout is the deadline of each write to a stream. Default 10s.
	WriteTimeout time.Duration `env:"WRITE_TIMEOUT" default:"10s" help:"Deadline of each write to a stream; a client that misses it is disconnected (write_timeout)."`
	// History is the number of deliveries kept in memory per partition
	// for resumes. Default 4096; older ones are read from Kafka.
	History int `env:"HISTORY" default:"4096" help:"Deliveries kept in memory per partition of content.deliveries for resumes; older resumes read Kafka."`
	// MaxConns caps the streams of this replica. Default 19000 (a process
	// may hold 20,000 files here).
	MaxConns int `env:"MAX_CONNS" default:"19000" help:"Streams per replica (503 past it)."`
	// MaxConnsPerUser caps the streams of one user. Default 10.
	MaxConnsPerUser int `env:"MAX_CONNS_PER_USER" default:"10" help:"Streams per user per replica (429 past it); 0: no limit."`
	// MaxConnsPerIP caps the streams from one client address. Default 100.
	MaxConnsPerIP int `env:"MAX_CONNS_PER_IP" default:"100" help:"Streams per client IP per replica (429 past it); 0: no limit."`
	// ConnectRate is the connects per second and IP allowed, with a burst of
	// ConnectBurst. Default 5/s, burst 20; 0 disables the limit.
	ConnectRate float64 `env:"CONNECT_RATE" default:"5" help:"Stream connects per second per client IP (429 past it); 0 disables."`
	// ConnectBurst: see ConnectRate.
	ConnectBurst int `env:"CONNECT_BURST" default:"20" help:"Burst of stream connects per client IP."`
	// MaxChannels caps the channels of one stream. Default 16.
	MaxChannels int `env:"MAX_CHANNELS" default:"16" help:"Channels one stream may ask for."`
	// CORSOrigins are the origins allowed to open streams and send beacons
	// from a browser; empty allows no cross-origin request.
	CORSOrigins []string `env:"CORS_ORIGINS" help:"Origins (scheme://host[:port]) allowed cross-origin; empty allows none."`
	// ClientIPHeader names a header a trusted proxy sets to the client's
	// address (first entry of X-Forwarded-For); empty uses the peer address.
	ClientIPHeader string `env:"CLIENT_IP_HEADER" help:"Header holding the client IP, set by a trusted proxy (e.g. X-Forwarded-For); empty uses the peer address."`
	// ReplayTimeout bounds one resume from Kafka. Default 15s.
	ReplayTimeout time.Duration `env:"REPLAY_TIMEOUT" default:"15s" help:"Deadline of one resume read from Kafka."`
	// GCPercent is the Go garbage collector's target (GOGC) the service
	// sets at start, unless GOGC is set. Default 400: measured at 10,000
	// streams, it takes the p99 delivery latency from ~70 ms to ~15 ms for
	// 12 instead of 9.6 KiB per idle stream (docs/sse-gateway.md).
	GCPercent int `env:"GC_PERCENT" default:"400" help:"Go GC target (GOGC) set at start unless GOGC is set: higher trades memory for fewer collections and a lower tail latency."`
	// ReplayConcurrency caps the resumes reading Kafka at once. Default 16.
	ReplayConcurrency int `env:"REPLAY_CONCURRENCY" default:"16" help:"Resumes reading Kafka at the same time."`
	// PartitionCheck is how often the partitions of content.deliveries are
	// counted. Default 30s. A replica serves the partitions it found at
	// start; when the count changes it shuts down (streams are told to
	// reconnect) and exits with an error, so that its restart serves them
	// all.
	PartitionCheck time.Duration `env:"PARTITION_CHECK" default:"30s" help:"How often the partitions of content.deliveries are counted; when partitions were added, the replica shuts down gracefully and exits with an error so that a restart serves them."`
	// Pprof serves /debug/pprof/ on the admin listener. Default false.
	Pprof bool `env:"PPROF" default:"false" help:"Serve /debug/pprof/ on the admin listener."`
}

// Validate checks the settings.
func (s *Settings) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(s.Addr); err != nil {
		errs = append(errs, config.FieldErrorf("Addr", "want host:port: %v", err))
	}
	positive := []struct {
		field string
		v     int64
	}{
		{"Heartbeat", int64(s.Heartbeat)}, {"Retry", int64(s.Retry)}, {"QueueSize", int64(s.QueueSize)},
		{"WriteTimeout", int64(s.WriteTimeout)}, {"MaxConns", int64(s.MaxConns)},
		{"MaxChannels", int64(s.MaxChannels)}, {"ReplayTimeout", int64(s.ReplayTimeout)},
		{"ReplayConcurrency", int64(s.ReplayConcurrency)}, {"PartitionCheck", int64(s.PartitionCheck)},
	}
	for _, p := range positive {
		if p.v <= 0 {
			errs = append(errs, config.FieldErrorf(p.field, "must be positive"))
		}
	}
	if s.GCPercent < 25 {
		errs = append(errs, config.FieldErrorf("GCPercent", "at least 25"))
	}
	if s.History < 0 || s.MaxConnsPerUser < 0 || s.MaxConnsPerIP < 0 || s.ConnectRate < 0 || s.ConnectBurst < 0 {
		errs = append(errs, config.FieldErrorf("History", "limits must not be negative"))
	}
	for _, o := range s.CORSOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
			errs = append(errs, config.FieldErrorf("CORSOrigins", "origin %q: want scheme://host[:port]", o))
		}
	}
	return errors.Join(errs...)
}
