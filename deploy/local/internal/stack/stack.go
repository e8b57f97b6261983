package stack

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/pkg/servers"
)

// Main is the whole command: `local` runs the stack, `local broker` only
// the embedded broker, `local help` prints the usage.
func Main(ctx context.Context) error {
	return run(ctx, os.Args[1:], os.Stdout)
}

const usage = `usage:
  go run ./deploy/local           start the whole stack (make run); Ctrl-C stops it
  go run ./deploy/local broker    start only the embedded Kafka-protocol broker
  go run ./deploy/local config    print docs/configuration.md (make docs writes it)

Configuration: FRESHET_LOCAL_* variables (see deploy/local/README.md).
`

func run(ctx context.Context, args []string, out io.Writer) error {
	cmd := ""
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "":
		var cfg Config
		if err := config.Load(&cfg); err != nil {
			return err
		}
		return Run(ctx, cfg, out)
	case "broker":
		return runBroker(ctx, args, out)
	case "config":
		md, err := ConfigReference()
		if err != nil {
			return err
		}
		_, err = io.WriteString(out, md)
		return err
	case "help", "-h", "-help", "--help":
		_, err := io.WriteString(out, usage)
		return err
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

// part is one running piece of the stack.
type part struct {
	name  string
	where string        // what runs where, for the summary
	took  time.Duration // time to ready
	stop  func(context.Context) error
}

// Stack is the running stack.
type Stack struct {
	cfg   Config
	dir   string // absolute
	out   io.Writer
	mu    sync.Mutex
	parts []*part // in start order; stopped in reverse

	secrets map[string]string
	svcs    []*service
	restart restartPolicy // zero: defaultRestart
	origin  bool          // the reference origin is among the services run
}

// Run starts the stack, prints what runs where, and blocks until ctx is
// cancelled; then it stops everything, services first, and returns nil.
// When a part cannot start, everything already started is stopped and the
// error says which part failed and why.
func Run(ctx context.Context, cfg Config, out io.Writer) (err error) {
	start := time.Now()
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return fmt.Errorf("data folder %s: %w", cfg.Dir, err)
	}
	s := &Stack{cfg: cfg, dir: dir, out: out}
	defer func() {
		if stopErr := s.stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()
	names, err := s.selectServices()
	if err != nil {
		return err
	}
	if err := s.checkPorts(names); err != nil {
		return err
	}
	s.origin = slices.Contains(names, "origin")
	if err := ensurePackages(ctx, out, cfg.Install); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	if s.secrets, err = loadSecrets(filepath.Join(dir, "secrets.env")); err != nil {
		return err
	}
	fmt.Fprintf(out, "freshet: data in %s (kept across restarts; delete it to start over)\n", dir)

	// The services build while the servers start.
	build := make(chan error, 1)
	go func() { build <- s.buildServices(ctx, names) }()

	if err := s.startInfrastructure(ctx); err != nil {
		<-build
		return err
	}
	if err := <-build; err != nil {
		return err
	}
	if err := s.startServices(ctx, names); err != nil {
		return err
	}
	fmt.Fprintf(out, "freshet: all parts ready in %s. Ctrl-C stops everything.\n", time.Since(start).Round(10*time.Millisecond))
	s.printHints()
	s.watchServices(ctx)
	<-ctx.Done()
	fmt.Fprintln(out, "freshet: stopping")
	return nil
}

// checkPorts fails, before anything starts, when a port of the stack is
// taken: a clear error naming the ports and the variables that move them,
// instead of a part failing half-way.
func (s *Stack) checkPorts(services []string) error {
	var taken []PortUse
	for _, p := range s.cfg.ports(services) {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p.Port))
		if err != nil {
			taken = append(taken, p)
			continue
		}
		l.Close()
	}
	if len(taken) > 0 {
		return &PortsInUseError{Ports: taken}
	}
	return nil
}

// startInfrastructure starts Postgres, ClickHouse, Varnish and the broker
// concurrently and reports each as it becomes ready.
func (s *Stack) startInfrastructure(ctx context.Context) error {
	starts := []func(context.Context) (*part, error){s.startPostgres, s.startClickHouse, s.startVarnish}
	if s.cfg.embeddedBroker() {
		starts = append(starts, s.startBroker)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(starts))
	for i, start := range starts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.Now()
			p, err := start(ctx)
			if err != nil {
				errs[i] = err
				return
			}
			p.took = time.Since(t)
			s.add(p)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// add records a started part and prints its line.
func (s *Stack) add(p *part) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.parts = append(s.parts, p)
	fmt.Fprintf(s.out, "  %-13s ready in %-7s %s\n", p.name, p.took.Round(10*time.Millisecond), p.where)
}

// stop stops every part in reverse order of start.
func (s *Stack) stop() error {
	s.mu.Lock()
	parts := s.parts
	s.parts = nil
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var errs []error
	for i := len(parts) - 1; i >= 0; i-- {
		if err := parts[i].stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", parts[i].name, err))
		}
	}
	if len(parts) > 0 {
		fmt.Fprintf(s.out, "freshet: stopped %d parts\n", len(parts))
	}
	return errors.Join(errs...)
}

func (s *Stack) partErr(name string, err error) error {
	var ni *servers.NotInstalledError
	if errors.As(err, &ni) {
		return fmt.Errorf("%s: %w (install with: sudo %s)", name, err, ni.Install())
	}
	return fmt.Errorf("%s: %w", name, err)
}

// Database is the Postgres and ClickHouse database the stack creates.
const Database = "freshet"

func (s *Stack) postgresDSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.cfg.PostgresPort, Database)
}

func (s *Stack) startPostgres(ctx context.Context) (*part, error) {
	place, err := placePostgres(s.dir)
	if err != nil {
		return nil, s.partErr("postgres", err)
	}
	pg, err := servers.StartPostgres(ctx, servers.PostgresOptions{
		Dir: place.dir, Port: s.cfg.PostgresPort, ReadyTimeout: s.cfg.ReadyTimeout,
	})
	if err != nil {
		return nil, s.partErr("postgres", err)
	}
	stop := func(ctx context.Context) error {
		if err := saveSlots(ctx, s.postgresDSN()); err != nil {
			fmt.Fprintf(s.out, "freshet: %v\n", err)
		}
		return pg.Stop(ctx)
	}
	p := &part{name: "postgres", stop: stop, where: s.postgresDSN() + "  (log " + pg.LogFile() + ")" + place.note()}
	if err := s.loadSchema(ctx, pg); err != nil {
		_ = pg.Stop(context.Background())
		return nil, s.partErr("postgres", err)
	}
	return p, nil
}

// loadSchema creates the freshet database when missing and loads
// pipelines/freshet.sql into it (the file can be run again safely).
func (s *Stack) loadSchema(ctx context.Context, pg *servers.Postgres) error {
	conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		return err
	}
	var exists bool
	err = conn.QueryRow(ctx, "select exists(select 1 from pg_database where datname = $1)", Database).Scan(&exists)
	if err == nil && !exists {
		_, err = conn.Exec(ctx, "create database "+Database)
	}
	conn.Close(ctx)
	if err != nil {
		return fmt.Errorf("create database %s: %w", Database, err)
	}
	const schemaFile = "pipelines/freshet.sql"
	sql, err := os.ReadFile(schemaFile)
	if err != nil {
		return fmt.Errorf("read the example schema (run from the repository root): %w", err)
	}
	conn, err = pgx.Connect(ctx, pg.DSN(Database))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, string(sql)); err != nil {
		return fmt.Errorf("load %s: %w", schemaFile, err)
	}
	return nil
}

func (s *Stack) startClickHouse(ctx context.Context) (*part, error) {
	ch, err := servers.StartClickHouse(ctx, servers.ClickHouseOptions{
		Dir: filepath.Join(s.dir, "clickhouse"), TCPPort: s.cfg.ClickHouseTCPPort,
		HTTPPort: s.cfg.ClickHouseHTTPPort, ReadyTimeout: s.cfg.ReadyTimeout,
	})
	if err != nil {
		return nil, s.partErr("clickhouse", err)
	}
	if err := ch.CreateDatabase(ctx, Database); err != nil {
		_ = ch.Stop(context.Background())
		return nil, s.partErr("clickhouse", err)
	}
	where := fmt.Sprintf("native %s, http http://%s, database %s", ch.NativeAddr(), ch.HTTPAddr(), Database)
	return &part{name: "clickhouse", stop: ch.Stop, where: where}, nil
}

// VCLFile is the edge cache's VCL, with BACKEND_HOST and BACKEND_PORT
// placeholders.
const VCLFile = "deploy/varnish/default.vcl"

func (s *Stack) startVarnish(ctx context.Context) (*part, error) {
	vcl, err := os.ReadFile(VCLFile)
	if err != nil {
		return nil, s.partErr("varnish", fmt.Errorf("read VCL (run from the repository root): %w", err))
	}
	text := strings.NewReplacer("BACKEND_HOST", "127.0.0.1", "BACKEND_PORT", fmt.Sprint(s.cfg.OriginPort)).Replace(string(vcl))
	v, err := servers.StartVarnish(ctx, servers.VarnishOptions{
		VCL: text, Dir: filepath.Join(s.dir, "varnish"), Port: s.cfg.VarnishPort,
		AdminPort: s.cfg.VarnishAdminPort, ReadyTimeout: s.cfg.ReadyTimeout,
	})
	if err != nil {
		return nil, s.partErr("varnish", err)
	}
	where := fmt.Sprintf("%s (in front of the reference origin on 127.0.0.1:%d; a page: curl -si %s/tech/hello-freshet)", v.URL(), s.cfg.OriginPort, v.URL())
	if !s.origin {
		where = fmt.Sprintf("%s (backend 127.0.0.1:%d: no reference origin runs, so pages answer 503; purges work)", v.URL(), s.cfg.OriginPort)
	}
	return &part{name: "varnish", stop: v.Stop, where: where}, nil
}

func (s *Stack) startBroker(ctx context.Context) (*part, error) {
	k, err := startBroker(ctx, brokerOptions{
		dir: filepath.Join(s.dir, "kafka"), port: s.cfg.KafkaPort,
		partitions: s.cfg.Partitions, readyTimeout: s.cfg.ReadyTimeout,
	})
	if err != nil {
		return nil, s.partErr("kafka", err)
	}
	where := strings.Join(k.Seeds(), ",") + " (embedded kfake broker: the single-machine default, not a production broker)"
	return &part{name: "kafka", stop: k.Stop, where: where}, nil
}

// runBroker is `local broker`: the embedded broker alone, in the
// foreground, until ctx is cancelled.
func runBroker(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(out)
	dir := fs.String("dir", ".freshet/kafka", "data folder (records and consumer group offsets persist there)")
	port := fs.Int("port", 9092, "port on 127.0.0.1")
	partitions := fs.Int("partitions", 12, "default partition count of created topics")
	sync := fs.Bool("sync", false, "fsync every write (survives a machine crash, slower)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	k, err := startBroker(ctx, brokerOptions{dir: *dir, port: *port, partitions: *partitions, sync: *sync, readyTimeout: 30 * time.Second})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "freshet: embedded Kafka-protocol broker ready on %s, data in %s (single-machine default, not a production broker)\n",
		strings.Join(k.Seeds(), ","), *dir)
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return k.Stop(stopCtx)
}

type brokerOptions struct {
	dir          string
	port         int
	partitions   int
	sync         bool
	readyTimeout time.Duration
}

// startBroker starts kfake on a fixed loopback port with a data folder,
// so that services in other processes connect to it as to Kafka and its
// records and group offsets survive a restart.
func startBroker(ctx context.Context, o brokerOptions) (*servers.Kfake, error) {
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return nil, fmt.Errorf("broker data folder: %w", err)
	}
	return servers.StartKfake(ctx, servers.KfakeOptions{
		Dir: o.dir, Ports: []int{o.port}, DefaultPartitions: o.partitions,
		SyncWrites: o.sync, ReadyTimeout: o.readyTimeout,
	})
}
