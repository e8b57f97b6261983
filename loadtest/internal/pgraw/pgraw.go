// Package pgraw is the baseline of every CDC figure of the load generator:
// the rawest pgoutput consumer, pglogrepl reading a replication slot and
// parsing each message with pglogrepl.Parse, nothing else (no mapping, no
// encoding, no Kafka). What it reaches is the floor any pgoutput consumer
// on this machine stands on.
//
// A Reader is used by one goroutine.
package pgraw

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/freshet/freshet/loadtest/internal/safety"
)

// CreateSlot creates a pgoutput slot at the current WAL position.
func CreateSlot(ctx context.Context, dsn, slot string) error {
	conn, err := Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, slot)
	return err
}

// DropSlot drops a slot (waiting for its reader to be gone).
func DropSlot(ctx context.Context, dsn, slot string) error {
	conn, err := Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for range 50 {
		_, err = conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, slot)
		if err == nil || !strings.Contains(err.Error(), "is active") {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// CurrentLSN is pg_current_wal_lsn().
func CurrentLSN(ctx context.Context, dsn string) (pglogrepl.LSN, error) {
	conn, err := Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&s); err != nil {
		return 0, err
	}
	return pglogrepl.ParseLSN(s)
}

// Connect opens a regular connection, to loopback only.
func Connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.DialFunc = loopbackDial
	return pgx.ConnectConfig(ctx, cfg)
}

func loopbackDial(ctx context.Context, network, addr string) (net.Conn, error) {
	if network == "unix" {
		return nil, fmt.Errorf("%s: %w", addr, safety.ErrNotLoopback)
	}
	return safety.DialContext(ctx, network, addr)
}

// Rows is what a read saw.
type Rows struct {
	Rows    int           // row messages (insert, update, delete)
	Elapsed time.Duration // from the start of replication to the last row
}

// Read streams slot (publication pub) and calls onCommit, when non-nil,
// at each commit with the transaction's commit time and its row count. It
// stops when ctx ends, when want rows were read (want > 0), or when the
// stream passed end (end > 0), and confirms what it read.
func Read(ctx context.Context, dsn, slot, pub string, want int, end pglogrepl.LSN, onCommit func(commit time.Time, rows int)) (Rows, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return Rows{}, err
	}
	cfg.RuntimeParams["replication"] = "database"
	cfg.DialFunc = loopbackDial
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return Rows{}, err
	}
	defer conn.Close(context.Background())
	start := time.Now()
	args := []string{"proto_version '1'", "publication_names '" + pub + "'"}
	if err := pglogrepl.StartReplication(ctx, conn, slot, 0, pglogrepl.StartReplicationOptions{PluginArgs: args}); err != nil {
		return Rows{}, fmt.Errorf("start replication: %w", err)
	}
	var (
		res      Rows
		commitAt time.Time
		inTx     int
		pos      pglogrepl.LSN
		lastAck  = time.Now()
	)
	for {
		if want > 0 && res.Rows >= want || end > 0 && pos >= end {
			break
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		raw, err := conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) {
				continue
			}
			return res, err
		}
		cd, ok := raw.(*pgproto3.CopyData)
		if !ok || len(cd.Data) == 0 {
			if e, ok := raw.(*pgproto3.ErrorResponse); ok {
				return res, fmt.Errorf("replication: %s", e.Message)
			}
			continue
		}
		switch cd.Data[0] {
		case pglogrepl.XLogDataByteID:
			x, err := pglogrepl.ParseXLogData(cd.Data[1:])
			if err != nil {
				return res, err
			}
			m, err := pglogrepl.Parse(x.WALData)
			if err != nil {
				return res, fmt.Errorf("parse: %w", err)
			}
			switch m := m.(type) {
			case *pglogrepl.BeginMessage:
				commitAt, inTx = m.CommitTime, 0
			case *pglogrepl.InsertMessage, *pglogrepl.UpdateMessage, *pglogrepl.DeleteMessage:
				inTx++
				res.Rows++
				res.Elapsed = time.Since(start)
			case *pglogrepl.CommitMessage:
				pos = m.TransactionEndLSN
				if onCommit != nil && inTx > 0 {
					onCommit(commitAt, inTx)
				}
			}
			if x.WALStart > pos && inTx == 0 {
				pos = x.WALStart
			}
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			k, err := pglogrepl.ParsePrimaryKeepaliveMessage(cd.Data[1:])
			if err == nil && (k.ReplyRequested || time.Since(lastAck) > 5*time.Second) {
				_ = pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: pos})
				lastAck = time.Now()
			}
		}
	}
	_ = pglogrepl.SendStandbyStatusUpdate(context.Background(), conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: pos})
	return res, nil
}
