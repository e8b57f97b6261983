package chschema

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Migration is one versioned file of schemas/clickhouse.
type Migration struct {
	// Version is the NNNN of the file name, from 1.
	Version int
	// Name is the file name.
	Name string
	// Statements are the file's statements, without their semicolons.
	Statements []string
}

var fileRe = regexp.MustCompile(`^(\d{4})_[a-z0-9_]+\.sql$`)

// Load reads the migrations at the root of fsys (schemas.ClickHouse), in
// version order. Versions must run 1, 2, 3... without gaps.
func Load(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("chschema: list migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		m := fileRe.FindStringSubmatch(e.Name())
		if e.IsDir() || m == nil {
			continue
		}
		v, _ := strconv.Atoi(m[1])
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("chschema: read %s: %w", e.Name(), err)
		}
		ms = append(ms, Migration{Version: v, Name: e.Name(), Statements: Split(string(b))})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("chschema: migration %s: want version %04d (versions run 1, 2, 3... without gaps)", m.Name, i+1)
		}
		if len(m.Statements) == 0 {
			return nil, fmt.Errorf("chschema: migration %s holds no statement", m.Name)
		}
	}
	return ms, nil
}

// Split cuts a SQL file into statements at the lines that end with ';',
// dropping comment lines (--) and blank lines.
func Split(sql string) []string {
	var out []string
	var cur []string
	for _, line := range strings.Split(sql, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur = append(cur, strings.TrimRight(line, " \t\r"))
		if strings.HasSuffix(t, ";") {
			s := strings.TrimSuffix(strings.TrimSpace(strings.Join(cur, "\n")), ";")
			out = append(out, s)
			cur = nil
		}
	}
	if s := strings.TrimSpace(strings.Join(cur, "\n")); s != "" {
		out = append(out, s)
	}
	return out
}

// MigrationsTable records the versions applied.
const MigrationsTable = "schema_migrations"

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS ` + MigrationsTable + ` (
    version    UInt32,
    name       String,
    applied_at DateTime
) ENGINE = MergeTree ORDER BY version`

// Applied returns the highest version recorded in the migrations table, 0
// when none (or no table).
func Applied(ctx context.Context, conn driver.Conn) (int, error) {
	var exists uint8
	if err := conn.QueryRow(ctx, "SELECT count() > 0 FROM system.tables WHERE database = currentDatabase() AND name = '"+MigrationsTable+"'").Scan(&exists); err != nil {
		return 0, fmt.Errorf("chschema: look for %s: %w", MigrationsTable, err)
	}
	if exists == 0 {
		return 0, nil
	}
	var v uint32
	if err := conn.QueryRow(ctx, "SELECT max(version) FROM "+MigrationsTable).Scan(&v); err != nil {
		return 0, fmt.Errorf("chschema: read %s: %w", MigrationsTable, err)
	}
	return int(v), nil
}

// Migrate applies the migrations after the highest version applied, up to
// upTo (0: all), on conn's database, and returns the versions it applied.
// A database already at upTo, or past it, is left as it is.
func Migrate(ctx context.Context, conn driver.Conn, ms []Migration, upTo int) ([]int, error) {
	if upTo <= 0 || upTo > len(ms) {
		upTo = len(ms)
	}
	if err := conn.Exec(ctx, createMigrationsTable); err != nil {
		return nil, fmt.Errorf("chschema: create %s: %w", MigrationsTable, err)
	}
	have, err := Applied(ctx, conn)
	if err != nil {
		return nil, err
	}
	var done []int
	for _, m := range ms {
		if m.Version <= have || m.Version > upTo {
			continue
		}
		for i, s := range m.Statements {
			if err := conn.Exec(ctx, s); err != nil && !alreadyDone(err) {
				return done, fmt.Errorf("chschema: %s, statement %d: %w", m.Name, i+1, err)
			}
		}
		// INSERT ... SELECT: 18.16 and clickhouse-go hang on INSERT ... VALUES.
		q := fmt.Sprintf("INSERT INTO %s (version, name, applied_at) SELECT %d, '%s', now()", MigrationsTable, m.Version, m.Name)
		if err := conn.Exec(ctx, q); err != nil {
			return done, fmt.Errorf("chschema: record %s: %w", m.Name, err)
		}
		done = append(done, m.Version)
	}
	return done, nil
}

// ClickHouse error codes of statements whose work is already done.
const (
	codeDuplicateColumn    = 15
	codeTableAlreadyExists = 57
)

// alreadyDone reports whether err says the statement's column or table
// already exists: a migration that ran before its version was recorded.
func alreadyDone(err error) bool {
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) {
		return false
	}
	return ex.Code == codeDuplicateColumn || ex.Code == codeTableAlreadyExists || strings.Contains(ex.Message, "already exists")
}

// Version is a ClickHouse server version.
type Version struct{ Major, Minor int }

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// AtLeast reports whether v is major.minor or newer.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

// ServerVersion asks the server its version.
func ServerVersion(ctx context.Context, conn driver.Conn) (Version, error) {
	var s string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&s); err != nil {
		return Version{}, fmt.Errorf("chschema: server version: %w", err)
	}
	return ParseVersion(s)
}

// ParseVersion reads "18.16.1" or "24.8.4.13".
func ParseVersion(s string) (Version, error) {
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 {
		return Version{}, fmt.Errorf("chschema: server version %q: want major.minor", s)
	}
	maj, err1 := strconv.Atoi(parts[0])
	min, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return Version{}, fmt.Errorf("chschema: server version %q: want major.minor", s)
	}
	return Version{maj, min}, nil
}

// Retained lists the tables whose rows expire, with the DateTime column
// they expire by (the one they are partitioned by, per day).
var Retained = []struct{ Table, Column string }{
	{"latency_samples", "at"},
	{"edge_purges", "finished_at"},
	{"rum_beacons", "received_at"},
	{"deliveries", "produced_at"},
	{"dlq_records", "at"},
	{"latency_1m", "minute"},
	{"purge_latency_1m", "minute"},
	{"sse_lag_1m", "minute"},
	{"web_vitals_1m", "minute"},
}

// TTLFrom is the first version whose MergeTree tables take a TTL.
var TTLFrom = Version{19, 6}

// SetTTL gives every retained table a TTL of days (on servers from 19.6),
// unless it has that TTL already. It reports whether the server has TTL.
func SetTTL(ctx context.Context, conn driver.Conn, v Version, days int) (bool, error) {
	if !v.AtLeast(TTLFrom.Major, TTLFrom.Minor) {
		return false, nil
	}
	for _, r := range Retained {
		var engine string
		if err := conn.QueryRow(ctx, "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = '"+r.Table+"'").Scan(&engine); err != nil {
			return true, fmt.Errorf("chschema: engine of %s: %w", r.Table, err)
		}
		if strings.Contains(engine, fmt.Sprintf("TTL %s + toIntervalDay(%d)", r.Column, days)) {
			continue
		}
		if err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s MODIFY TTL %s + INTERVAL %d DAY", r.Table, r.Column, days)); err != nil {
			return true, fmt.Errorf("chschema: TTL of %s: %w", r.Table, err)
		}
	}
	return true, nil
}

// DropExpired drops the day partitions of the retained tables that are
// entirely older than days before today (UTC, the partitions' days), and
// returns how many it dropped: retention where the server has no TTL.
func DropExpired(ctx context.Context, conn driver.Conn, days int) (int, error) {
	var cutoff uint32
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT toYYYYMMDD(today() - %d)", days)).Scan(&cutoff); err != nil {
		return 0, fmt.Errorf("chschema: retention cutoff: %w", err)
	}
	dropped := 0
	for _, r := range Retained {
		rows, err := conn.Query(ctx, "SELECT DISTINCT partition FROM system.parts WHERE database = currentDatabase() AND table = '"+r.Table+"' AND active")
		if err != nil {
			return dropped, fmt.Errorf("chschema: partitions of %s: %w", r.Table, err)
		}
		var old []uint64
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				rows.Close()
				return dropped, err
			}
			if n, err := strconv.ParseUint(strings.Trim(p, "'"), 10, 32); err == nil && n < uint64(cutoff) {
				old = append(old, n)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return dropped, err
		}
		for _, p := range old {
			if err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP PARTITION %d", r.Table, p)); err != nil {
				return dropped, fmt.Errorf("chschema: drop partition %d of %s: %w", p, r.Table, err)
			}
			dropped++
		}
	}
	return dropped, nil
}

// Database quotes name for a statement after checking it is a plain
// identifier.
func Database(name string) (string, error) {
	if !identRe.MatchString(name) {
		return "", fmt.Errorf("database %q: want letters, digits and underscores", name)
	}
	return "`" + name + "`", nil
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Files lists the query files of fsys's queries/ folder by name (without
// .sql).
func Files(fsys fs.FS) (map[string]string, error) {
	entries, err := fs.ReadDir(fsys, "queries")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			b, err := fs.ReadFile(fsys, path.Join("queries", e.Name()))
			if err != nil {
				return nil, err
			}
			out[strings.TrimSuffix(e.Name(), ".sql")] = string(b)
		}
	}
	return out, nil
}
