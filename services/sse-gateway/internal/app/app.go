package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/pkg/lifecycle"
	"github.com/freshet/freshet/pkg/logging"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/services/sse-gateway/internal/auth"
	"github.com/freshet/freshet/services/sse-gateway/internal/gateway"
)

// Main returns the realMain of lifecycle.Main for the command line args;
// stdout receives the output of check and token.
func Main(args []string, stdout io.Writer) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		cmd := "serve"
		if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
			cmd, args = args[0], args[1:]
		}
		switch cmd {
		case "serve":
			return serve(ctx)
		case "check":
			return check(args, stdout)
		case "token":
			return token(args, stdout)
		}
		return fmt.Errorf("unknown command %q: want serve, check or token", cmd)
	}
}

func serve(ctx context.Context) error {
	var cfg gateway.Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	log, err := logging.ForService(gateway.Name, cfg.Log)
	if err != nil {
		return err
	}
	defer log.Sync()
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(cfg.Gateway.GCPercent)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	g, err := gateway.New(cfg, log)
	if err != nil {
		return err
	}
	reg.MustRegister(g.Metrics()...)
	admin, err := lifecycle.NewAdmin(lifecycle.AdminConfig{Addr: cfg.Admin.Addr, Gatherer: reg, Pprof: cfg.Gateway.Pprof})
	if err != nil {
		g.Close(ctx)
		return fmt.Errorf("FRESHET_ADMIN_ADDR: %w", err)
	}
	log.Info("starting", logging.Topic(pipeline.TopicContentDeliveries),
		zap.Stringer("addr", g.Addr()), zap.Stringer("admin", admin.Addr()))
	return lifecycle.Run(ctx, log, lifecycle.Options{ShutdownTimeout: cfg.ShutdownTimeout, Admin: admin}, g)
}

func check(args []string, stdout io.Writer) error {
	_, err := pipeline.CheckCommand(args, stdout)
	return err
}

func token(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	user := fs.String("user", "", "user id (the sub claim); required")
	channels := fs.String("channels", "", "comma-separated broadcast channels the token allows")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" {
		return errors.New("token: -user is required")
	}
	if *ttl <= 0 {
		return errors.New("token: -ttl must be positive")
	}
	var cfg struct {
		Auth auth.Config `env:"AUTH"`
	}
	if err := config.Load(&cfg); err != nil {
		return err
	}
	if !cfg.Auth.HS256Secret.IsSet() {
		return errors.New("token: FRESHET_AUTH_HS256_SECRET is not set: the token command signs HS256 tokens")
	}
	var chs []string
	if *channels != "" {
		chs = strings.Split(*channels, ",")
	}
	tok, err := auth.Mint(cfg.Auth, *user, chs, *ttl)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}
