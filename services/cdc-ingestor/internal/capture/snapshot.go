package capture

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/services/cdc-ingestor/internal/mapping"
	"github.com/freshet/freshet/services/cdc-ingestor/internal/pgoutput"
)

// How snapshots work (the watermark method of Netflix's DBLog): a table is
// read in primary-key chunks while the stream goes on. For each chunk the
// snapshotter writes a low watermark message, selects the chunk, and writes
// a high watermark message. Between the two watermarks the stream notes the
// keys of the table that changed; at the high watermark it emits the chunk's
// rows except those keys, whose newer state the stream already carries. So
// each key's events on the topic end with its latest state, and the chunk's
// events are part of the high watermark's transaction: the slot is confirmed
// past them only once Kafka acked them. Only then is the chunk's progress
// written to freshet_cdc.snapshots, so a crash repeats at most one chunk.

// StateTable holds snapshot progress, one row per slot and table.
const StateTable = "freshet_cdc.snapshots"

const stateDDL = `CREATE SCHEMA IF NOT EXISTS freshet_cdc;
CREATE TABLE IF NOT EXISTS freshet_cdc.snapshots (
	slot         text        NOT NULL,
	table_name   text        NOT NULL,
	after_key    text[],                 -- key of the last row emitted; null: from the start
	done         boolean     NOT NULL DEFAULT false,
	rows         bigint      NOT NULL DEFAULT 0,
	requested_at timestamptz NOT NULL DEFAULT now(),
	updated_at   timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (slot, table_name)
)`

type snapshotter struct {
	c       *Capture
	wake    chan struct{}
	open    atomic.Int32 // windows between their watermarks
	mu      sync.Mutex
	windows map[string]*window
}

// window is one chunk between its watermarks.
type window struct {
	table   string
	plan    *mapping.Plan
	rows    []pgoutput.Tuple
	open    bool
	touched map[string]bool
	emitted chan *txn // the high watermark's transaction, once seen
}

func newSnapshotter(c *Capture) *snapshotter {
	return &snapshotter{c: c, wake: make(chan struct{}, 1), windows: map[string]*window{}}
}

// prepare creates the state table and, for a new slot with snapshot mode
// initial, requests a snapshot of every captured table.
func (sn *snapshotter) prepare(ctx context.Context, conn *pgx.Conn, created bool) error {
	if _, err := conn.Exec(ctx, stateDDL); err != nil {
		return fmt.Errorf("create %s: %w", StateTable, err)
	}
	if !created || sn.c.opts.Pipeline.Capture.Snapshot.Mode != pipeline.SnapshotInitial {
		return nil
	}
	for _, t := range sn.c.opts.Pipeline.Capture.Tables {
		if err := request(ctx, conn, sn.c.opts.Pipeline.Capture.Slot, t.Name); err != nil {
			return err
		}
	}
	sn.c.log.Info("initial snapshot requested", zap.Int("tables", len(sn.c.opts.Pipeline.Capture.Tables)))
	return nil
}

func request(ctx context.Context, conn *pgx.Conn, slot, table string) error {
	_, err := conn.Exec(ctx, `INSERT INTO freshet_cdc.snapshots (slot, table_name) VALUES ($1, $2)
		ON CONFLICT (slot, table_name) DO UPDATE SET after_key = NULL, done = false, rows = 0, requested_at = now(), updated_at = now()`, slot, table)
	if err != nil {
		return fmt.Errorf("request snapshot of %s: %w", table, err)
	}
	return nil
}

// Resnapshot requests a new snapshot of table while streaming goes on.
func (c *Capture) Resnapshot(ctx context.Context, table string) error {
	t := c.opts.Pipeline.Table(table)
	if t == nil {
		return fmt.Errorf("%w: %s", ErrUnknownTable, table)
	}
	conn, err := pgx.Connect(ctx, c.opts.DSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, stateDDL); err != nil {
		return err
	}
	if err := request(ctx, conn, c.opts.Pipeline.Capture.Slot, t.Name); err != nil {
		return err
	}
	select {
	case c.snap.wake <- struct{}{}:
	default:
	}
	c.log.Info("snapshot requested", zap.String("table", t.Name))
	return nil
}

// ErrUnknownTable: the table is not captured.
var ErrUnknownTable = errors.New("table is not captured by the pipeline")

// SnapshotHandler serves POST /snapshot?table=schema.table (admin listener).
func (c *Capture) SnapshotHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "use POST /snapshot?table=schema.table"})
			return
		}
		table := r.URL.Query().Get("table")
		err := c.Resnapshot(r.Context(), table)
		switch {
		case errors.Is(err, ErrUnknownTable):
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		case err != nil:
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "request snapshot: " + err.Error()})
		default:
			w.WriteHeader(http.StatusAccepted)
			_ = json.NewEncoder(w).Encode(map[string]string{"table": c.opts.Pipeline.Table(table).Name, "status": "requested"})
		}
	})
}

// SnapshotsDone reports whether no snapshot of the slot is pending.
func (c *Capture) SnapshotsDone(ctx context.Context, conn *pgx.Conn) (bool, error) {
	var pending bool
	err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM freshet_cdc.snapshots WHERE slot = $1 AND NOT done)", c.opts.Pipeline.Capture.Slot).Scan(&pending)
	return !pending, err
}

// run snapshots the pending tables, one chunk at a time, until ctx ends
// (the session's end).
func (sn *snapshotter) run(ctx context.Context, tr *tracker) {
	sn.mu.Lock()
	sn.windows = map[string]*window{}
	sn.open.Store(0)
	sn.mu.Unlock()
	conn, err := pgx.Connect(ctx, sn.c.opts.DSN)
	if err != nil {
		return // the session reports connection problems
	}
	defer conn.Close(context.Background())
	// Watermarks must reach the stream at once, whatever the server's
	// default (a server with synchronous_commit=off flushes WAL, and so
	// lets logical decoding see it, only every wal_writer_delay).
	if _, err := conn.Exec(ctx, "SET synchronous_commit = on"); err != nil {
		return
	}
	for {
		var table string
		var after []string
		var rows int64
		err := conn.QueryRow(ctx, `SELECT table_name, after_key, rows FROM freshet_cdc.snapshots WHERE slot = $1 AND NOT done ORDER BY requested_at LIMIT 1`,
			sn.c.opts.Pipeline.Capture.Slot).Scan(&table, &after, &rows)
		if errors.Is(err, pgx.ErrNoRows) {
			select {
			case <-ctx.Done():
				return
			case <-sn.wake:
			case <-time.After(5 * time.Second):
			}
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				sn.c.log.Warn("snapshot: read progress", zap.Error(err))
			}
			return
		}
		if err := sn.table(ctx, conn, table, after, rows); err != nil {
			if ctx.Err() == nil {
				sn.c.count("snapshot")
				sn.c.log.Warn("snapshot interrupted; it goes on from the last acked chunk", zap.String("table", table), zap.Error(err))
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
			if ctx.Err() != nil {
				return
			}
		}
	}
}

// table snapshots table from after on, chunk by chunk.
func (sn *snapshotter) table(ctx context.Context, conn *pgx.Conn, table string, after []string, rows int64) error {
	t := sn.c.opts.Pipeline.Table(table)
	if t == nil { // no longer captured: forget it
		_, err := conn.Exec(ctx, "UPDATE freshet_cdc.snapshots SET done = true, updated_at = now() WHERE slot = $1 AND table_name = $2", sn.c.opts.Pipeline.Capture.Slot, table)
		return err
	}
	rel, types, err := describe(ctx, conn, t)
	if err != nil {
		return err
	}
	plan, err := mapping.NewPlan(t, rel)
	if err != nil {
		return err
	}
	keys := mapping.KeyColumns(t)
	cols := make([]string, len(rel.Columns))
	for i, c := range rel.Columns {
		cols[i] = "src." + pgx.Identifier{c.Name}.Sanitize() + "::text"
	}
	keyList := make([]string, len(keys))
	params := make([]string, len(keys))
	for i, k := range keys {
		// Qualified: the select list's text casts keep the column names,
		// and a bare name in ORDER BY would sort by the text.
		keyList[i] = "src." + pgx.Identifier{k}.Sanitize()
		params[i] = fmt.Sprintf("$%d::text::%s", i+1, types[k])
	}
	chunk := sn.c.opts.Pipeline.Capture.Snapshot.ChunkSize
	base := "SELECT " + strings.Join(cols, ", ") + " FROM " + quoteTable(t.Name) + " AS src"
	order := fmt.Sprintf(" ORDER BY %s LIMIT %d", strings.Join(keyList, ", "), chunk)
	if after == nil {
		sn.c.log.Info("snapshot started", zap.String("table", t.Name), zap.Int("chunk_size", chunk))
	}
	for {
		sql, args := base+order, []any{}
		if after != nil {
			sql = base + " WHERE (" + strings.Join(keyList, ", ") + ") > (" + strings.Join(params, ", ") + ")" + order
			for _, a := range after {
				args = append(args, a)
			}
		}
		n, last, err := sn.chunk(ctx, conn, plan, keys, sql, args)
		if err != nil {
			return err
		}
		rows += int64(n)
		done := n < chunk
		if n > 0 {
			after = last
		}
		if _, err := conn.Exec(ctx, "UPDATE freshet_cdc.snapshots SET after_key = $3, done = $4, rows = $5, updated_at = now() WHERE slot = $1 AND table_name = $2",
			sn.c.opts.Pipeline.Capture.Slot, t.Name, after, done, rows); err != nil {
			return fmt.Errorf("write progress: %w", err)
		}
		if done {
			sn.c.log.Info("snapshot done", zap.String("table", t.Name), zap.Int64("rows", rows))
			return nil
		}
	}
}

// chunk runs one watermark window and waits until its rows are acked. It
// returns the rows read and the key of the last one.
func (sn *snapshotter) chunk(ctx context.Context, conn *pgx.Conn, plan *mapping.Plan, keys []string, sql string, args []any) (int, []string, error) {
	id := newWindowID()
	w := &window{table: plan.Table.Name, plan: plan, touched: map[string]bool{}, emitted: make(chan *txn, 1)}
	sn.mu.Lock()
	sn.windows[id] = w
	sn.mu.Unlock()
	defer func() {
		sn.mu.Lock()
		if w.open {
			w.open = false
			sn.open.Add(-1)
		}
		delete(sn.windows, id)
		sn.mu.Unlock()
	}()
	if err := emitWatermark(ctx, conn, id, "low"); err != nil {
		return 0, nil, err
	}
	rs, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return 0, nil, fmt.Errorf("select chunk: %w", err)
	}
	var tuples []pgoutput.Tuple
	for rs.Next() {
		raw := rs.RawValues()
		t := make(pgoutput.Tuple, len(raw))
		for i, v := range raw {
			if v == nil {
				t[i] = pgoutput.Value{Kind: pgoutput.KindNull}
			} else {
				t[i] = pgoutput.Value{Kind: pgoutput.KindText, Data: append([]byte(nil), v...)}
			}
		}
		tuples = append(tuples, t)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return 0, nil, fmt.Errorf("select chunk: %w", err)
	}
	sn.mu.Lock()
	w.rows = tuples
	sn.mu.Unlock()
	if err := emitWatermark(ctx, conn, id, "high"); err != nil {
		return 0, nil, err
	}
	var x *txn
	select {
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	case x = <-w.emitted:
	}
	select {
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	case <-x.acked:
	}
	if len(tuples) == 0 {
		return 0, nil, nil
	}
	lastRow := tuples[len(tuples)-1]
	last := make([]string, len(keys))
	for i, k := range keys {
		for j, c := range plan.Relation.Columns {
			if c.Name == k {
				last[i] = string(lastRow[j].Data)
			}
		}
	}
	return len(tuples), last, nil
}

type watermarkMsg struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
}

func emitWatermark(ctx context.Context, conn *pgx.Conn, id, kind string) error {
	b, _ := json.Marshal(watermarkMsg{ID: id, Kind: kind})
	if _, err := conn.Exec(ctx, "SELECT pg_logical_emit_message(true, $1, $2::text)", WatermarkPrefix, string(b)); err != nil {
		return fmt.Errorf("write %s watermark: %w", kind, err)
	}
	return nil
}

func newWindowID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// describe returns the table's columns as a relation, and the SQL type of
// each column by name.
func describe(ctx context.Context, conn *pgx.Conn, t *pipeline.Table) (*pgoutput.Relation, map[string]string, error) {
	rows, err := conn.Query(ctx, `SELECT a.attname, a.atttypid, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
		WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, quoteTable(t.Name))
	if err != nil {
		return nil, nil, fmt.Errorf("describe %s: %w", t.Name, err)
	}
	defer rows.Close()
	rel := &pgoutput.Relation{Namespace: t.Schema(), Name: t.Relation()}
	types := map[string]string{}
	for rows.Next() {
		var name, typ string
		var oid uint32
		if err := rows.Scan(&name, &oid, &typ); err != nil {
			return nil, nil, err
		}
		rel.Columns = append(rel.Columns, pgoutput.Column{Name: name, TypeOID: oid})
		types[name] = typ
	}
	return rel, types, rows.Err()
}

// touched notes that the stream changed key of table: a window open on the
// table must not emit its (older) snapshot row.
func (sn *snapshotter) touched(table, key string) {
	if sn.open.Load() == 0 {
		return
	}
	sn.mu.Lock()
	for _, w := range sn.windows {
		if w.open && w.table == table {
			w.touched[key] = true
		}
	}
	sn.mu.Unlock()
}

// watermark handles a watermark message of the stream, as part of x.
func (sn *snapshotter) watermark(ctx context.Context, tr *tracker, x *txn, m *pgoutput.LogicalMessage, tx *txState) {
	var wm watermarkMsg
	if err := json.Unmarshal(m.Content, &wm); err != nil {
		return
	}
	sn.mu.Lock()
	w := sn.windows[wm.ID]
	if w == nil { // a window of an earlier session: its chunk is read again
		sn.mu.Unlock()
		return
	}
	if wm.Kind == "low" {
		if !w.open {
			w.open = true
			sn.open.Add(1)
		}
		sn.mu.Unlock()
		return
	}
	if !w.open { // high without low: the low was before the session started
		sn.mu.Unlock()
		return
	}
	w.open = false
	sn.open.Add(-1)
	rows, touched := w.rows, w.touched
	sn.mu.Unlock()

	emitted := 0
	for _, row := range rows {
		key, ok := w.plan.Key(row)
		if !ok || touched[key] {
			continue
		}
		src := events.Source{Origin: events.OriginSnapshot, DB: sn.c.db, LSN: m.LSN, CommitLSN: tx.commitLSN, TxID: tx.xid, Seq: tx.seq, CommitTime: tx.commitTime}
		tx.seq++
		rs := &relState{rel: w.plan.Relation, plan: w.plan}
		sn.c.emitMapped(ctx, tr, x, rs, mapping.Change{Op: events.OpCreate, New: row, Source: src})
		emitted++
	}
	if m := sn.c.opts.Metrics; m != nil {
		m.SnapshotRows.WithLabelValues(w.table).Add(float64(emitted))
	}
	w.emitted <- x
}
