package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/pkg/lifecycle"
	"github.com/freshet/freshet/pkg/logging"
	"github.com/freshet/freshet/pkg/origin"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/services/origin/internal/demo"
)

// Name is the service's name.
const Name = "origin"

// Main returns the origin's main function for the command line args
// (without the program name): run with no args, check [-v] to validate the
// pipeline file.
func Main(args []string, stdout io.Writer) func(context.Context) error {
	return func(ctx context.Context) error {
		if len(args) > 0 && args[0] == "check" {
			return check(args[1:], stdout)
		}
		if len(args) > 0 {
			return fmt.Errorf("unknown command %q (want no command, or check)", args[0])
		}
		var cfg Config
		if err := config.Load(&cfg); err != nil {
			return err
		}
		log, err := logging.ForService(Name, cfg.Log)
		if err != nil {
			return err
		}
		defer func() { _ = log.Sync() }()
		err = Run(ctx, cfg, log, prometheus.DefaultRegisterer)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
}

func check(args []string, stdout io.Writer) error {
	_, err := pipeline.CheckCommand(args, stdout)
	return err
}

// Run serves pages with cfg until ctx is cancelled.
func Run(ctx context.Context, cfg Config, log *zap.Logger, reg prometheus.Registerer) error {
	p, err := pipeline.Load(cfg.Pipeline)
	if err != nil {
		return err
	}
	pcfg, err := pgxpool.ParseConfig(cfg.PostgresDSN.Reveal())
	if err != nil {
		return config.FieldErrorf("PostgresDSN", "%v", err) // the parser's message holds no password
	}
	pcfg.MaxConns = cfg.MaxConns
	db, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("database pool: %w", err)
	}
	defer db.Close()
	h, err := origin.NewHandler(db, p, origin.Options{
		Table: cfg.Table, SMaxAge: orOff(cfg.SMaxAge), StaleWhileRevalidate: orOff(cfg.StaleWhileRevalidate),
		MaxAge: cfg.MaxAge, ListLimit: cfg.ListLimit, QueryTimeout: cfg.QueryTimeout, Registerer: reg,
	})
	if err != nil {
		return err
	}
	if cfg.Demo {
		mux := http.NewServeMux()
		gw, _ := url.Parse(cfg.DemoGateway) // checked by Validate
		d, err := demo.New(db, p, cfg.Table, demo.Config{
			Users: cfg.DemoUsers, Gateway: gw, Secret: cfg.AuthHS256Secret, Issuer: cfg.AuthIssuer,
			Audience: cfg.AuthAudience, TokenTTL: cfg.DemoTokenTTL, Channels: p.Channels(),
		})
		if err != nil {
			return err
		}
		d.Register(mux)
		mux.Handle("/", h)
		h = mux
		log.Warn("demo mode: /demo mints short-lived tokens for the demo users and edits titles; /v1/ goes to the gateway",
			zap.Strings("demo_users", cfg.DemoUsers), zap.String("gateway", gw.Redacted()))
	}
	srv, err := newServer(cfg.Addr, h)
	if err != nil {
		return err
	}
	admin, err := lifecycle.NewAdmin(lifecycle.AdminConfig{Addr: cfg.Admin.Addr})
	if err != nil {
		_ = srv.Close(ctx)
		return err
	}
	log.Info("starting", zap.String("addr", srv.ln.Addr().String()), zap.String("pipeline", cfg.Pipeline),
		zap.String("database", pcfg.ConnConfig.Database), zap.String("db_host", pcfg.ConnConfig.Host))
	return lifecycle.Run(ctx, log, lifecycle.Options{ShutdownTimeout: cfg.ShutdownTimeout, Admin: admin},
		&probe{db: db, every: 2 * time.Second, timeout: time.Second}, srv)
}

// orOff maps a configured 0 (turned off) to the negative value that
// origin.Options reads as off (its zero means the default).
func orOff(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// server serves the pages.
type server struct {
	ln  net.Listener
	srv *http.Server
}

func newServer(addr string, h http.Handler) (*server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (FRESHET_ORIGIN_ADDR): %w", addr, err)
	}
	return &server{ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}}, nil
}

func (s *server) Name() string { return "http" }

// Run serves until ctx is cancelled, then lets requests in flight finish
// (for 10s at most).
func (s *server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(sctx)
	return nil
}

// Close stops the server; safe to call twice.
func (s *server) Close(context.Context) error {
	if err := s.srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// probe pings the database every so often: the origin is ready while the
// last ping succeeded.
type probe struct {
	db      *pgxpool.Pool
	every   time.Duration
	timeout time.Duration
	ready   lifecycle.ReadyFlag
}

func (p *probe) Name() string { return "database" }
func (p *probe) Ready() error { return p.ready.Ready() }
func (p *probe) ping(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	if err := p.db.Ping(ctx); err != nil {
		p.ready.SetNotReady(fmt.Errorf("database unreachable: %w", err))
		return
	}
	p.ready.SetReady()
}

// Run pings until ctx is cancelled.
func (p *probe) Run(ctx context.Context) error {
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		p.ping(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

var (
	_ lifecycle.Readier = (*probe)(nil)
	_ lifecycle.Closer  = (*server)(nil)
)
