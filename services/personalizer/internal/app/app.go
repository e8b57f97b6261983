package app

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/lifecycle"
	"github.com/freshet/freshet/pkg/logging"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/services/personalizer/internal/engine"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Main returns the personalizer's main function for the command line args
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
		return run(ctx)
	}
}

func check(args []string, stdout io.Writer) error {
	_, err := pipeline.CheckCommand(args, stdout)
	return err
}

func run(ctx context.Context) error {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	log, err := logging.ForService("personalizer", cfg.Log)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	p, err := pipeline.Load(cfg.Pipeline)
	if err != nil {
		return err
	}
	pc := cfg.Personalizer
	ecfg := engine.Config{
		Kafka:                       kafka.FromConfig(cfg.Kafka, "personalizer"),
		Pipeline:                    p,
		Topics:                      engine.Topics{Content: pc.ContentTopic, Profiles: pc.ProfilesTopic, Deliveries: pc.DeliveriesTopic, Latency: pc.LatencyTopic},
		Group:                       pc.Group,
		TransactionalID:             pc.transactionalID(),
		TransactionTimeout:          pc.TransactionTimeout,
		SessionTimeout:              pc.SessionTimeout,
		MaxChangesPerTransaction:    pc.MaxChangesPerTransaction,
		MaxDeliveriesPerTransaction: pc.MaxDeliveriesPerTransaction,
		PollWait:                    pc.PollWait,
		MinTransactionInterval:      pc.MinTransactionInterval,
		EnsureTopics:                pc.EnsureTopics,
	}
	log.Info("starting", zap.Object("kafka", ecfg.Kafka), zap.String("group", ecfg.Group),
		zap.String("transactional_id", ecfg.TransactionalID), zap.String("pipeline", cfg.Pipeline))
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
	admin, err := lifecycle.NewAdmin(lifecycle.AdminConfig{Addr: cfg.Admin.Addr, Pprof: pc.Pprof})
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
