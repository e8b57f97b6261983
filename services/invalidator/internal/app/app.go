package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/lifecycle"
	"github.com/freshet/freshet/pkg/logging"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/services/invalidator/internal/engine"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Main returns the invalidator's main function for the command line args
// (without the program name): run with no args, check [-v] [file] to
// validate the pipeline file.
func Main(args []string, stdout io.Writer) func(context.Context) error {
	return func(ctx context.Context) error {
		if len(args) > 0 && args[0] == "check" {
			return check(args[1:], stdout)
		}
		if len(args) > 0 {
			return fmt.Errorf("unknown command %q (want no command, or check)", args[0])
		}
		return run(ctx)
	}
}

// check validates the pipeline file, and that the variables its targets
// name (token_env, header_env) are set: the invalidator needs them.
func check(args []string, stdout io.Writer) error {
	p, err := pipeline.CheckCommand(args, stdout)
	if err != nil {
		return err
	}
	return p.CheckEnv(os.LookupEnv)
}

func run(ctx context.Context) error {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	log, err := logging.ForService("invalidator", cfg.Log)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	p, err := pipeline.Load(cfg.Pipeline)
	if err != nil {
		return err
	}
	ic := cfg.Invalidator
	ecfg := engine.Config{
		Kafka:          kafka.FromConfig(cfg.Kafka, "invalidator"),
		Pipeline:       p,
		Topics:         engine.Topics{Content: ic.ContentTopic, Purges: ic.PurgesTopic, Latency: ic.LatencyTopic},
		Group:          ic.Group,
		Instance:       ic.instance(),
		CommitInterval: ic.CommitInterval,
		SessionTimeout: ic.SessionTimeout,
		MaxInFlight:    ic.MaxInFlight,
		EnsureTopics:   ic.EnsureTopics,
	}
	targets := make([]string, 0, len(p.Invalidation.Targets))
	for _, t := range p.Invalidation.Targets {
		targets = append(targets, t.Name+"="+t.Type+" "+t.Address)
	}
	log.Info("starting", zap.Object("kafka", ecfg.Kafka), zap.String("group", ecfg.Group),
		zap.String("pipeline", cfg.Pipeline), zap.Strings("targets", targets))
	eng, err := engine.New(ecfg, logging.Named(log, "engine"))
	if err != nil {
		return err
	}
	closeLag, err := kafka.RegisterLag(prometheus.DefaultRegisterer, ecfg.Kafka, ecfg.Group)
	if err != nil {
		_ = eng.Close(ctx)
		return err
	}
	defer closeLag()
	admin, err := lifecycle.NewAdmin(lifecycle.AdminConfig{Addr: cfg.Admin.Addr, Pprof: ic.Pprof})
	if err != nil {
		_ = eng.Close(ctx)
		return err
	}
	err = lifecycle.Run(ctx, log, lifecycle.Options{ShutdownTimeout: cfg.ShutdownTimeout, Admin: admin}, eng)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
