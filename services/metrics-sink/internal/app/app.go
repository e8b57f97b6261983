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

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/lifecycle"
	"github.com/freshet/freshet/pkg/logging"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/services/metrics-sink/internal/queries"
	"github.com/freshet/freshet/services/metrics-sink/internal/rows"
	"github.com/freshet/freshet/services/metrics-sink/internal/sink"
)

// gcPercent is the sink's GOGC when it runs under a memory limit.
const gcPercent = 400

// Main returns the metrics-sink's main function for the command line args
// (without the program name): run with no args, check [-v] [FILE] to
// validate the pipeline file, query NAME [-since D] [-event ID] to print
// a ready-made question's answer.
func Main(args []string, stdout io.Writer) func(context.Context) error {
	return func(ctx context.Context) error {
		if len(args) > 0 {
			switch args[0] {
			case "check":
				return check(args[1:], stdout)
			case "query":
				return query(ctx, args[1:], stdout)
			}
			return fmt.Errorf("unknown command %q (want no command, check or query)", args[0])
		}
		return run(ctx)
	}
}

func check(args []string, stdout io.Writer) error {
	_, err := pipeline.CheckCommand(args, stdout)
	return err
}

// queryConfig is what the query command reads: the ClickHouse variables.
type queryConfig struct {
	ClickHouse ClickHouse `env:"CLICKHOUSE"`
}

func query(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	fs.SetOutput(stdout)
	since := fs.Duration("since", time.Hour, "how far back to look")
	event := fs.String("event", "", "only this change (its event id); freshness only")
	sqlOnly := fs.Bool("sql", false, "print the SQL instead of running it")
	fs.Usage = func() {
		fmt.Fprintf(stdout, "usage: metrics-sink query NAME [-since 1h] [-event ID] [-sql]\nqueries: %s\n", strings.Join(queries.Names(), ", "))
		fs.PrintDefaults()
	}
	name := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	}
	if name == "" {
		fs.Usage()
		return errors.New("query: name a query")
	}
	from := time.Now().Add(-*since)
	q, err := queries.SQL(name, from, *event)
	if err != nil {
		return err
	}
	if *sqlOnly {
		_, err := fmt.Fprintln(stdout, q)
		return err
	}
	var cfg queryConfig
	if err := config.Load(&cfg); err != nil {
		return err
	}
	conn, err := clickhouse.Open(cfg.ClickHouse.Options())
	if err != nil {
		return err
	}
	defer conn.Close()
	res, err := queries.Query(ctx, conn, q)
	if err != nil {
		return fmt.Errorf("query %s: %w", name, err)
	}
	return res.Print(stdout)
}

func run(ctx context.Context) error {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	log, err := logging.ForService("metrics-sink", cfg.Log)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	p, err := pipeline.Load(cfg.Pipeline)
	if err != nil {
		return err
	}
	sc := cfg.Sink
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set && sc.MemoryLimit > 0 {
		debug.SetMemoryLimit(int64(sc.MemoryLimit))
		if _, set := os.LookupEnv("GOGC"); !set {
			// The limit bounds the heap: the collector need not run
			// every time the heap doubles (a batch's rows are most of
			// what is live, and short-lived), only when it is five times
			// what is live, or near the limit.
			debug.SetGCPercent(gcPercent)
		}
	}
	scfg := sink.Config{
		Kafka:    kafka.FromConfig(cfg.Kafka, "metrics-sink"),
		Pipeline: p,
		Group:    sc.Group,
		Topics: map[rows.Kind]string{
			rows.Beacons: sc.BeaconsTopic, rows.Latency: sc.LatencyTopic, rows.Purges: sc.PurgesTopic, rows.Deliveries: sc.DeliveriesTopic,
		},
		DLQTopics:      sc.DLQTopics,
		ClickHouse:     cfg.ClickHouse.Options(),
		BatchRows:      sc.BatchRows,
		BatchBytes:     int(sc.BatchBytes),
		BatchInterval:  sc.BatchInterval,
		MaxBackoff:     sc.MaxBackoff,
		FetchMaxBytes:  int32(sc.FetchMaxBytes),
		FetchMaxWait:   sc.FetchMaxWait,
		RetentionDays:  sc.RetentionDays,
		SessionTimeout: sc.SessionTimeout,
		EnsureTopics:   sc.EnsureTopics,
	}
	log.Info("starting", zap.Object("kafka", scfg.Kafka), zap.Strings("clickhouse", cfg.ClickHouse.Addr),
		zap.String("database", cfg.ClickHouse.Database), zap.String("group", sc.Group), zap.String("pipeline", cfg.Pipeline))
	s, err := sink.New(scfg, logging.Named(log, "sink"), sink.WithRegisterer(prometheus.DefaultRegisterer))
	if err != nil {
		return err
	}
	closeLag, err := kafka.RegisterLag(prometheus.DefaultRegisterer, scfg.Kafka, sc.Group)
	if err != nil {
		return err
	}
	defer closeLag()
	admin, err := lifecycle.NewAdmin(lifecycle.AdminConfig{Addr: cfg.Admin.Addr, Pprof: sc.Pprof})
	if err != nil {
		return err
	}
	err = lifecycle.Run(ctx, log, lifecycle.Options{ShutdownTimeout: cfg.ShutdownTimeout, Admin: admin}, s)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
