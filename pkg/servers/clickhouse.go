package servers

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ClickHouseOptions configures StartClickHouse. The zero value starts a
// throwaway server in a temporary folder on free ports.
type ClickHouseOptions struct {
	// Dir is the server's folder: config.xml and users.xml (written at
	// every start), data/, tmp/ and the log. Empty means a new temporary
	// folder, removed by Stop. A folder given here is kept by Stop and its
	// data/ is reused by the next start.
	Dir string
	// TCPPort is the native protocol port on 127.0.0.1. Zero means a free
	// port.
	TCPPort int
	// HTTPPort is the HTTP port on 127.0.0.1. Zero means a free port.
	// When either port is zero and is taken before the server binds it,
	// Start picks new free ports and tries again.
	HTTPPort int
	// LogFile receives the server's log (appended). Empty means
	// Dir/clickhouse-server.log.
	LogFile string
	// Binary is the server executable. Empty means clickhouse-server on
	// PATH or in /usr/sbin, else "clickhouse server".
	Binary string
	// ReadyTimeout bounds the wait for GET /ping to answer "Ok." and for a
	// native ping. Zero means DefaultReadyTimeout (30s).
	ReadyTimeout time.Duration
	// StopTimeout bounds the graceful shutdown (SIGTERM) before the process
	// group is killed. Zero means DefaultStopTimeout (10s).
	StopTimeout time.Duration
}

// ClickHouse is a running clickhouse-server started by StartClickHouse.
// Its user "default" has no password and may connect from 127.0.0.1 only;
// the server's time zone is UTC. Methods are safe for concurrent use.
type ClickHouse struct {
	opts     ClickHouseOptions
	dir      workDir
	bin      []string
	tcpPort  int
	httpPort int
	logPath  string

	mu      sync.Mutex
	proc    *process
	conn    driver.Conn
	stopped bool
}

// StartClickHouse writes config.xml and users.xml into the folder, starts
// clickhouse-server in the foreground and returns once it answers on both
// ports. The process dies with the calling process even if Stop is never
// called.
func StartClickHouse(ctx context.Context, opts ClickHouseOptions) (*ClickHouse, error) {
	bin, err := clickhouseBin(opts.Binary)
	if err != nil {
		return nil, err
	}
	dir, err := prepareDir("clickhouse", opts.Dir)
	if err != nil {
		return nil, err
	}
	ch := &ClickHouse{opts: opts, dir: dir, bin: bin, logPath: opts.LogFile}
	if ch.logPath == "" {
		ch.logPath = filepath.Join(dir.path, "clickhouse-server.log")
	}
	for attempt := 1; ; attempt++ {
		ports, err := pickPorts(opts.TCPPort, opts.HTTPPort)
		if err != nil {
			_ = dir.remove()
			return nil, err
		}
		ch.tcpPort, ch.httpPort = ports[0], ports[1]
		err = ch.start(ctx)
		if err == nil {
			return ch, nil
		}
		fixed := opts.TCPPort != 0 && opts.HTTPPort != 0
		if fixed || attempt == portAttempts || !errors.Is(err, errPortTaken) {
			_ = dir.remove()
			return nil, err
		}
	}
}

func clickhouseBin(binary string) ([]string, error) {
	if binary != "" {
		return []string{binary}, nil
	}
	if p, ok := lookPath([]string{"clickhouse-server"}, "/usr/sbin", "/usr/bin"); ok {
		return []string{p}, nil
	}
	if p, ok := lookPath([]string{"clickhouse"}, "/usr/bin"); ok {
		return []string{p, "server"}, nil
	}
	return nil, &NotInstalledError{Binary: "clickhouse-server", Packages: []string{"clickhouse-server", "clickhouse-client"}}
}

var clickhouseConfig = template.Must(template.New("config.xml").Parse(`<?xml version="1.0"?>
<!-- Written by freshet's pkg/servers at every start: edits are lost. -->
<yandex>
    <logger>
        <level>information</level>
        <console>1</console>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>{{.TCPPort}}</tcp_port>
    <http_port>{{.HTTPPort}}</http_port>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>134217728</uncompressed_cache_size>
    <mark_cache_size>134217728</mark_cache_size>
    <path>{{.Dir}}/data/</path>
    <tmp_path>{{.Dir}}/tmp/</tmp_path>
    <user_files_path>{{.Dir}}/user_files/</user_files_path>
    <format_schema_path>{{.Dir}}/format_schemas/</format_schema_path>
    <users_config>{{.Dir}}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
</yandex>
`))

// clickhouseUsers enables LowCardinality on 18.16 through the profile:
// current releases reject that setting's name, so clients must never send
// it themselves.
const clickhouseUsers = `<?xml version="1.0"?>
<!-- Written by freshet's pkg/servers at every start: edits are lost. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
            <allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type>
            <!-- Idle native connections notice a shutdown within 1s (default 10s). -->
            <poll_interval>1</poll_interval>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
`

// writeConfig writes config.xml and users.xml for the current ports.
func (ch *ClickHouse) writeConfig() error {
	var esc bytes.Buffer
	if err := xml.EscapeText(&esc, []byte(ch.dir.path)); err != nil {
		return fmt.Errorf("write clickhouse config: %w", err)
	}
	var cfg bytes.Buffer
	err := clickhouseConfig.Execute(&cfg, map[string]any{
		"Dir": esc.String(), "TCPPort": ch.tcpPort, "HTTPPort": ch.httpPort,
	})
	if err != nil {
		return fmt.Errorf("write clickhouse config: %w", err)
	}
	if err := os.WriteFile(ch.configPath(), cfg.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write clickhouse config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(ch.dir.path, "users.xml"), []byte(clickhouseUsers), 0o644); err != nil {
		return fmt.Errorf("write clickhouse users: %w", err)
	}
	return nil
}

func (ch *ClickHouse) configPath() string { return filepath.Join(ch.dir.path, "config.xml") }

// start starts the server on the current ports and waits until it answers.
func (ch *ClickHouse) start(ctx context.Context) error {
	if err := ch.writeConfig(); err != nil {
		return err
	}
	args := append(append([]string{}, ch.bin[1:]...), "--config-file="+ch.configPath())
	p, err := startProcess("clickhouse-server", ch.logPath, nil, []string{"PATH=/usr/bin:/bin", "TZ=UTC"}, ch.bin[0], args...)
	if err != nil {
		return err
	}
	var conn driver.Conn
	err = p.waitReady(ctx, orDefault(ch.opts.ReadyTimeout, DefaultReadyTimeout), func(ctx context.Context) error {
		if err := ch.ping(ctx); err != nil {
			return err
		}
		c, err := clickhouse.Open(ch.Options("default"))
		if err != nil {
			return err
		}
		if err := c.Ping(ctx); err != nil {
			c.Close()
			return fmt.Errorf("native ping: %w", err)
		}
		conn = c
		return nil
	})
	if err != nil {
		stopErr := p.stop(context.Background(), syscall.SIGTERM, orDefault(ch.opts.StopTimeout, DefaultStopTimeout))
		if errors.Is(err, errExited) && addrInUse(p) {
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return withLog(fmt.Errorf("start clickhouse-server on ports %d (tcp) and %d (http): %w",
			ch.tcpPort, ch.httpPort, errors.Join(err, stopErr)), p)
	}
	ch.mu.Lock()
	ch.proc, ch.conn = p, conn
	ch.mu.Unlock()
	return nil
}

// ping checks that GET /ping answers "Ok.".
func (ch *ClickHouse) ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ch.HTTPAddr()+"/ping", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "Ok." {
		return fmt.Errorf("GET /ping: %s %q", resp.Status, body)
	}
	return nil
}

// NativeAddr returns host:port of the native protocol (the one
// clickhouse-go must use against 18.16).
func (ch *ClickHouse) NativeAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(ch.tcpPort))
}

// HTTPAddr returns host:port of the HTTP interface.
func (ch *ClickHouse) HTTPAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(ch.httpPort))
}

// DSN returns a native-protocol connection string for database, e.g.
// clickhouse://default@127.0.0.1:9000/metrics, which clickhouse.ParseDSN
// reads.
func (ch *ClickHouse) DSN(database string) string {
	return fmt.Sprintf("clickhouse://default@%s/%s", ch.NativeAddr(), database)
}

// Options returns clickhouse-go options for a native connection to
// database as user default. They send no settings: 18.16 accepts only
// integer or boolean settings per query.
func (ch *ClickHouse) Options(database string) *clickhouse.Options {
	return &clickhouse.Options{
		Protocol:    clickhouse.Native,
		Addr:        []string{ch.NativeAddr()},
		Auth:        clickhouse.Auth{Database: database, Username: "default"},
		DialTimeout: 5 * time.Second,
		ReadTimeout: 30 * time.Second,
	}
}

// Dir returns the server's folder.
func (ch *ClickHouse) Dir() string { return ch.dir.path }

// LogFile returns the path of the server's log.
func (ch *ClickHouse) LogFile() string { return ch.logPath }

// Pid returns the server's process id (also its process group id); 0 once
// stopped.
func (ch *ClickHouse) Pid() int {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.proc == nil {
		return 0
	}
	return ch.proc.pid()
}

var clickhouseName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// CreateDatabase creates database name if it does not exist. The name must
// be a plain identifier (letters, digits, underscore).
func (ch *ClickHouse) CreateDatabase(ctx context.Context, name string) error {
	return ch.exec(ctx, "create database", name, "CREATE DATABASE IF NOT EXISTS `%s`")
}

// DropDatabase drops database name and its tables, if it exists.
func (ch *ClickHouse) DropDatabase(ctx context.Context, name string) error {
	return ch.exec(ctx, "drop database", name, "DROP DATABASE IF EXISTS `%s`")
}

func (ch *ClickHouse) exec(ctx context.Context, what, name, query string) error {
	if !clickhouseName.MatchString(name) {
		return fmt.Errorf("%s %q: not a plain identifier", what, name)
	}
	ch.mu.Lock()
	conn := ch.conn
	ch.mu.Unlock()
	if conn == nil {
		return fmt.Errorf("%s %q: clickhouse-server is not running", what, name)
	}
	if err := conn.Exec(ctx, fmt.Sprintf(query, name)); err != nil {
		return fmt.Errorf("%s %q: %w", what, name, err)
	}
	return nil
}

// Restart stops the server gracefully and starts it again on the same
// ports with the same data, as an outage seen by clients.
func (ch *ClickHouse) Restart(ctx context.Context) error {
	ch.mu.Lock()
	if ch.stopped {
		ch.mu.Unlock()
		return errors.New("restart clickhouse-server: already stopped")
	}
	p, conn := ch.proc, ch.conn
	ch.proc, ch.conn = nil, nil
	ch.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
	if p != nil {
		if err := p.stop(ctx, syscall.SIGTERM, orDefault(ch.opts.StopTimeout, DefaultStopTimeout)); err != nil {
			return fmt.Errorf("restart clickhouse-server: %w", err)
		}
	}
	if err := ch.start(ctx); err != nil {
		return fmt.Errorf("restart clickhouse-server: %w", err)
	}
	return nil
}

// Stop shuts the server down (SIGTERM), kills the process group if that
// takes longer than StopTimeout or ctx ends, and removes the folder when it
// is temporary. Calling it again does nothing and returns nil.
func (ch *ClickHouse) Stop(ctx context.Context) error {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.stopped {
		return nil
	}
	ch.stopped = true
	if ch.conn != nil {
		ch.conn.Close()
		ch.conn = nil
	}
	var err error
	if ch.proc != nil {
		err = ch.proc.stop(ctx, syscall.SIGTERM, orDefault(ch.opts.StopTimeout, DefaultStopTimeout))
		ch.proc = nil
	}
	return errors.Join(err, ch.dir.remove())
}
