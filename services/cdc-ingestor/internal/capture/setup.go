package capture

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
)

// quoteTable quotes "schema.table" as an identifier.
func quoteTable(name string) string {
	s, t, _ := strings.Cut(name, ".")
	return pgx.Identifier{s, t}.Sanitize()
}

// missingTables returns the captured tables that do not exist.
func (c *Capture) missingTables(ctx context.Context, conn *pgx.Conn) ([]string, error) {
	var missing []string
	for _, t := range c.opts.Pipeline.Capture.Tables {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", quoteTable(t.Name)).Scan(&ok); err != nil {
			return nil, fmt.Errorf("look for table %s: %w", t.Name, err)
		}
		if !ok {
			missing = append(missing, t.Name)
		}
	}
	return missing, nil
}

// waitForTables returns once every captured table exists, logging the
// missing ones: the ingestor may start before the application created its
// tables.
func (c *Capture) waitForTables(ctx context.Context, conn *pgx.Conn) error {
	logged := ""
	for {
		missing, err := c.missingTables(ctx, conn)
		if err != nil {
			return err
		}
		if len(missing) == 0 {
			return nil
		}
		list := strings.Join(missing, ", ")
		c.setReady(fmt.Errorf("waiting for tables %s", list))
		if list != logged {
			c.log.Warn("captured tables do not exist yet; waiting for them (create them, e.g. psql -f pipelines/freshet.sql)", zap.Strings("tables", missing))
			logged = list
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(c.opts.TableWait):
		}
	}
}

// ensurePublication creates the publication with the captured tables, or
// adds the tables it lacks. Tables it holds beyond those are left alone
// (their changes are skipped).
func (c *Capture) ensurePublication(ctx context.Context, conn *pgx.Conn) error {
	pub := c.opts.Pipeline.Capture.Publication
	var all bool
	err := conn.QueryRow(ctx, "SELECT puballtables FROM pg_publication WHERE pubname = $1", pub).Scan(&all)
	if errors.Is(err, pgx.ErrNoRows) {
		tables := make([]string, len(c.opts.Pipeline.Capture.Tables))
		for i, t := range c.opts.Pipeline.Capture.Tables {
			tables[i] = quoteTable(t.Name)
		}
		sql := "CREATE PUBLICATION " + pgx.Identifier{pub}.Sanitize()
		if len(tables) > 0 {
			sql += " FOR TABLE " + strings.Join(tables, ", ")
		}
		if _, err := conn.Exec(ctx, sql); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "42710" { // created meanwhile by another replica
				return c.ensurePublication(ctx, conn)
			}
			return fmt.Errorf("create publication %s: %w", pub, err)
		}
		c.log.Info("created publication", zap.String("publication", pub), zap.Int("tables", len(tables)))
		return nil
	}
	if err != nil {
		return fmt.Errorf("look for publication %s: %w", pub, err)
	}
	if all {
		return nil
	}
	for _, t := range c.opts.Pipeline.Capture.Tables {
		s, r, _ := strings.Cut(t.Name, ".")
		var in bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3)", pub, s, r).Scan(&in); err != nil {
			return fmt.Errorf("read publication %s: %w", pub, err)
		}
		if !in {
			if _, err := conn.Exec(ctx, "ALTER PUBLICATION "+pgx.Identifier{pub}.Sanitize()+" ADD TABLE "+quoteTable(t.Name)); err != nil {
				return fmt.Errorf("add table %s to publication %s: %w", t.Name, pub, err)
			}
			c.log.Info("added table to publication", zap.String("publication", pub), zap.String("table", t.Name))
		}
	}
	return nil
}

// slotInfo is the slot's state, or created=true when this call made it.
type slotInfo struct {
	confirmed uint64
	created   bool
}

// ensureSlot creates the logical replication slot when missing. A slot of
// the same name with another plugin or database is an error.
func (c *Capture) ensureSlot(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn) (slotInfo, error) {
	slot := c.opts.Pipeline.Capture.Slot
	var plugin, db, lsn *string
	err := conn.QueryRow(ctx, "SELECT plugin, database, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&plugin, &db, &lsn)
	if errors.Is(err, pgx.ErrNoRows) {
		res, err := pglogrepl.CreateReplicationSlot(ctx, repl, slot, "pgoutput", pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "NOEXPORT_SNAPSHOT"})
		if err != nil {
			return slotInfo{}, fmt.Errorf("create replication slot %s: %w", slot, err)
		}
		p, err := pglogrepl.ParseLSN(res.ConsistentPoint)
		if err != nil {
			return slotInfo{}, fmt.Errorf("create replication slot %s: consistent point %q: %w", slot, res.ConsistentPoint, err)
		}
		c.log.Info("created replication slot", zap.String("slot", slot), zap.String("consistent_point", res.ConsistentPoint))
		return slotInfo{confirmed: uint64(p), created: true}, nil
	}
	if err != nil {
		return slotInfo{}, fmt.Errorf("look for replication slot %s: %w", slot, err)
	}
	if plugin == nil || *plugin != "pgoutput" || db == nil || *db != c.db {
		return slotInfo{}, fmt.Errorf("replication slot %s exists but is not a pgoutput slot of database %s (plugin %v, database %v): drop it or name another slot in capture.slot", slot, c.db, deref(plugin), deref(db))
	}
	var info slotInfo
	if lsn != nil {
		p, err := pglogrepl.ParseLSN(*lsn)
		if err != nil {
			return slotInfo{}, fmt.Errorf("slot %s: confirmed_flush_lsn %q: %w", slot, *lsn, err)
		}
		info.confirmed = uint64(p)
	}
	return info, nil
}

func deref(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}
