package servers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// postgresBinDir is where Debian's postgresql-15 package puts the server.
const postgresBinDir = "/usr/lib/postgresql/15/bin"

// PostgresOptions configures StartPostgres. The zero value starts a
// throwaway server in a temporary folder on a free port.
type PostgresOptions struct {
	// Dir is the server's folder: the cluster lives in Dir/data, the log in
	// Dir/postgres.log and the unix socket in Dir. Empty means a new
	// temporary folder, removed by Stop. A folder given here is kept by
	// Stop, and a cluster already in it (Dir/data/PG_VERSION exists) is
	// reused instead of initialised.
	Dir string
	// Port is the TCP port on 127.0.0.1. Zero means a free port, picked
	// again if another process takes it first.
	Port int
	// LogFile receives the server's stdout and stderr (appended). Empty
	// means Dir/postgres.log.
	LogFile string
	// BinDir holds initdb and postgres. Empty means
	// /usr/lib/postgresql/15/bin, else the folder of postgres on PATH.
	BinDir string
	// Settings are extra server settings (-c name=value); they override the
	// defaults: wal_level=logical, max_replication_slots=20,
	// max_wal_senders=20, and, in a temporary folder only, fsync=off,
	// synchronous_commit=off and full_page_writes=off (safe unless the
	// machine itself crashes, and much faster for tests).
	Settings map[string]string
	// ReadyTimeout bounds the wait for the first successful connection.
	// Zero means DefaultReadyTimeout (30s).
	ReadyTimeout time.Duration
	// StopTimeout bounds the graceful (fast) shutdown before the process
	// group is killed. Zero means DefaultStopTimeout (10s).
	StopTimeout time.Duration
}

// Postgres is a running PostgreSQL server started by StartPostgres. Its
// superuser is "postgres" with trust authentication on 127.0.0.1, which
// also allows replication connections. Methods are safe for concurrent use.
type Postgres struct {
	opts    PostgresOptions
	dir     workDir
	bin     string
	cred    *syscall.Credential
	port    int
	logPath string

	mu      sync.Mutex
	proc    *process
	stopped bool
}

// StartPostgres initialises a cluster when the folder holds none, starts
// postgres in the foreground (as the postgres user when running as root)
// and returns once it accepts a connection. The process dies with the
// calling process even if Stop is never called.
func StartPostgres(ctx context.Context, opts PostgresOptions) (*Postgres, error) {
	bin, err := postgresBin(opts.BinDir)
	if err != nil {
		return nil, err
	}
	cred, err := postgresCredential()
	if err != nil {
		return nil, err
	}
	dir, err := prepareDir("postgres", opts.Dir)
	if err != nil {
		return nil, err
	}
	pg := &Postgres{opts: opts, dir: dir, bin: bin, cred: cred, logPath: opts.LogFile}
	if pg.logPath == "" {
		pg.logPath = filepath.Join(dir.path, "postgres.log")
	}
	if err := pg.init(ctx); err != nil {
		_ = dir.remove()
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		pg.port = opts.Port
		if pg.port == 0 {
			if pg.port, err = freePort(); err != nil {
				_ = dir.remove()
				return nil, err
			}
		}
		err = pg.start(ctx)
		if err == nil {
			return pg, nil
		}
		if opts.Port != 0 || attempt == portAttempts || !errors.Is(err, errPortTaken) {
			_ = dir.remove()
			return nil, err
		}
	}
}

var errPortTaken = errors.New("port taken")

// postgresBin finds the folder that holds initdb and postgres.
func postgresBin(binDir string) (string, error) {
	notInstalled := &NotInstalledError{Binary: "postgres (PostgreSQL 15)", Packages: []string{"postgresql-15"}}
	dirs := []string{binDir}
	if binDir == "" {
		dirs = []string{postgresBinDir}
		if p, ok := lookPath([]string{"postgres"}); ok {
			if r, err := filepath.EvalSymlinks(p); err == nil {
				p = r
			}
			dirs = append(dirs, filepath.Dir(p))
		}
	}
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "postgres")) && isExecutable(filepath.Join(d, "initdb")) {
			return d, nil
		}
	}
	return "", notInstalled
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// postgresCredential returns the postgres user when running as root
// (postgres refuses to run as root), or nil to run as the current user.
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs the postgres user to run the server: %w",
			&NotInstalledError{Binary: "user postgres", Packages: []string{"postgresql-15"}})
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("user postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// PostgresReachable returns nil when the server StartPostgres would start
// can reach dir: always when not running as root (the server then runs as
// the current user), otherwise when the postgres user can enter every
// parent of dir. The error names the first folder it cannot enter.
func PostgresReachable(dir string) error {
	cred, err := postgresCredential()
	if err != nil || cred == nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("postgres folder %s: %w", dir, err)
	}
	return reachable(abs, cred)
}

// reachable checks that user cred can walk down to dir: postgres runs as
// that user and must reach its folder through every parent.
func reachable(dir string, cred *syscall.Credential) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("postgres folder %s: %w", dir, err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok {
			mode := fi.Mode().Perm()
			var x os.FileMode
			switch {
			case st.Uid == cred.Uid:
				x = 0o100
			case st.Gid == cred.Gid:
				x = 0o010
			default:
				x = 0o001
			}
			if mode&x == 0 {
				return fmt.Errorf("postgres runs as user postgres, which cannot enter %s (mode %v) on the way to %s: "+
					"choose a folder elsewhere, or run `chmod o+x %s`", p, mode, dir, p)
			}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// init gives the folder to the server's user and runs initdb unless a
// cluster is already there.
func (pg *Postgres) init(ctx context.Context) error {
	if pg.cred != nil {
		if err := reachable(pg.dir.path, pg.cred); err != nil {
			return err
		}
		if err := os.Chown(pg.dir.path, int(pg.cred.Uid), int(pg.cred.Gid)); err != nil {
			return fmt.Errorf("give %s to user postgres: %w", pg.dir.path, err)
		}
	}
	data := pg.DataDir()
	if v, err := os.ReadFile(filepath.Join(data, "PG_VERSION")); err == nil {
		if got := strings.TrimSpace(string(v)); got != "15" {
			return fmt.Errorf("reuse cluster in %s: it was made by PostgreSQL %s, this launcher runs 15", data, got)
		}
		return nil
	}
	args := []string{"-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"}
	if pg.dir.temporary {
		args = append(args, "--no-sync")
	}
	out, err := runCommand(ctx, pg.cred, filepath.Join(pg.bin, "initdb"), args...)
	if err != nil {
		return fmt.Errorf("initdb %s: %w\n%s", data, err, strings.TrimSpace(out))
	}
	return nil
}

// start starts postgres on pg.port and waits until it answers.
func (pg *Postgres) start(ctx context.Context) error {
	settings := map[string]string{
		"listen_addresses":      "127.0.0.1",
		"wal_level":             "logical",
		"max_replication_slots": "20",
		"max_wal_senders":       "20",
		// A unix socket path is limited to 107 bytes; skip the socket
		// rather than fail in a deep persistent folder.
		"unix_socket_directories": pg.dir.path,
	}
	if len(pg.dir.path) > 80 {
		settings["unix_socket_directories"] = ""
	}
	if pg.dir.temporary {
		settings["fsync"] = "off"
		settings["synchronous_commit"] = "off"
		settings["full_page_writes"] = "off"
	}
	for k, v := range pg.opts.Settings {
		settings[k] = v
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := []string{"-D", pg.DataDir(), "-p", strconv.Itoa(pg.port)}
	for _, k := range keys {
		args = append(args, "-c", k+"="+settings[k])
	}
	env := []string{"PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8"}
	p, err := startProcess("postgres", pg.logPath, pg.cred, env, filepath.Join(pg.bin, "postgres"), args...)
	if err != nil {
		return err
	}
	err = p.waitReady(ctx, orDefault(pg.opts.ReadyTimeout, DefaultReadyTimeout), func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, "select 1")
		return err
	})
	if err != nil {
		stopErr := p.stop(context.Background(), syscall.SIGINT, orDefault(pg.opts.StopTimeout, DefaultStopTimeout))
		if errors.Is(err, errExited) && addrInUse(p) {
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return withLog(fmt.Errorf("start postgres on port %d: %w", pg.port, errors.Join(err, stopErr)), p)
	}
	pg.mu.Lock()
	pg.proc = p
	pg.mu.Unlock()
	return nil
}

// DSN returns a connection string for database dbname as the superuser,
// e.g. postgres://postgres@127.0.0.1:5432/app?sslmode=disable. Add
// replication=database to it for a logical replication connection.
func (pg *Postgres) DSN(dbname string) string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", pg.Addr(), url.PathEscape(dbname))
}

// Addr returns host:port of the server.
func (pg *Postgres) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(pg.port)) }

// Port returns the TCP port of the server.
func (pg *Postgres) Port() int { return pg.port }

// Dir returns the server's folder.
func (pg *Postgres) Dir() string { return pg.dir.path }

// DataDir returns the cluster's folder (PGDATA).
func (pg *Postgres) DataDir() string { return filepath.Join(pg.dir.path, "data") }

// LogFile returns the path of the server's log.
func (pg *Postgres) LogFile() string { return pg.logPath }

// Bin returns the path of one of the server's programs, e.g.
// "pg_recvlogical", from the folder that holds its postgres.
func (pg *Postgres) Bin(name string) string { return filepath.Join(pg.bin, name) }

// Pid returns the process id of the postmaster, which also leads the
// process group of all its backends; 0 once stopped.
func (pg *Postgres) Pid() int {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	if pg.proc == nil {
		return 0
	}
	return pg.proc.pid()
}

// Restart stops the server gracefully and starts it again on the same port
// with the same data, as a database restart seen by clients (their
// connections break, replication slots survive). It fails if another
// process took the port in between.
func (pg *Postgres) Restart(ctx context.Context) error {
	pg.mu.Lock()
	if pg.stopped {
		pg.mu.Unlock()
		return errors.New("restart postgres: already stopped")
	}
	p := pg.proc
	pg.proc = nil
	pg.mu.Unlock()
	if p != nil {
		if err := p.stop(ctx, syscall.SIGINT, orDefault(pg.opts.StopTimeout, DefaultStopTimeout)); err != nil {
			return fmt.Errorf("restart postgres: %w", err)
		}
	}
	if err := pg.start(ctx); err != nil {
		return fmt.Errorf("restart postgres: %w", err)
	}
	return nil
}

// Stop shuts the server down (fast shutdown: what pg_ctl stop -m fast
// sends, SIGINT to the postmaster, which ends every session and
// checkpoints), kills the process group if that takes longer than
// StopTimeout or ctx ends, and removes the folder when it is temporary.
// Calling it again does nothing and returns nil.
func (pg *Postgres) Stop(ctx context.Context) error {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	if pg.stopped {
		return nil
	}
	pg.stopped = true
	var err error
	if pg.proc != nil {
		err = pg.proc.stop(ctx, syscall.SIGINT, orDefault(pg.opts.StopTimeout, DefaultStopTimeout))
		pg.proc = nil
	}
	return errors.Join(err, pg.dir.remove())
}

// connect opens a connection to the maintenance database.
func (pg *Postgres) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		return nil, fmt.Errorf("connect to postgres at %s: %w", pg.Addr(), err)
	}
	return conn, nil
}

// CreateDatabase creates database name (any name: it is quoted).
func (pg *Postgres) CreateDatabase(ctx context.Context, name string) error {
	conn, err := pg.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %q: %w", name, err)
	}
	return nil
}

// DropDatabase drops the replication slots of database name, then the
// database itself, ending the sessions still connected to it. A database
// that does not exist is not an error.
func (pg *Postgres) DropDatabase(ctx context.Context, name string) error {
	if err := pg.DropReplicationSlots(ctx, name); err != nil {
		return err
	}
	conn, err := pg.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %q: %w", name, err)
	}
	return nil
}

// DropReplicationSlots drops every replication slot of database dbname,
// first ending the walsender that holds an active one. Slots left behind
// keep WAL forever. It returns once every slot is gone, or fails when ctx
// ends or after 15s.
func (pg *Postgres) DropReplicationSlots(ctx context.Context, dbname string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := pg.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for {
		rows, err := conn.Query(ctx, "SELECT slot_name, coalesce(active_pid, 0) FROM pg_replication_slots WHERE database = $1", dbname)
		if err != nil {
			return fmt.Errorf("list replication slots of %q: %w", dbname, err)
		}
		type slot struct {
			name string
			pid  int32
		}
		var slots []slot
		for rows.Next() {
			var s slot
			if err := rows.Scan(&s.name, &s.pid); err != nil {
				rows.Close()
				return fmt.Errorf("list replication slots of %q: %w", dbname, err)
			}
			slots = append(slots, s)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("list replication slots of %q: %w", dbname, err)
		}
		if len(slots) == 0 {
			return nil
		}
		var lastErr error
		for _, s := range slots {
			if s.pid != 0 {
				if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend($1)", s.pid); err != nil {
					return fmt.Errorf("end walsender %d of slot %q: %w", s.pid, s.name, err)
				}
				continue // the slot stays active until that backend is gone
			}
			if _, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", s.name); err != nil {
				lastErr = fmt.Errorf("drop replication slot %q: %w", s.name, err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drop replication slots of %q: %w", dbname, errors.Join(ctx.Err(), lastErr))
		case <-time.After(20 * time.Millisecond):
		}
	}
}
