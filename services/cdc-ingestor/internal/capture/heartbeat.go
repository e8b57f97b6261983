package capture

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// heartbeatLoop writes a heartbeat message every capture.heartbeat, so that
// the slot advances while the captured tables are quiet (the message is
// streamed, acked and confirmed like a transaction), and measures the slot's
// lag, warning past capture.slot_lag_warning.
func (c *Capture) heartbeatLoop(ctx context.Context) {
	capt := c.opts.Pipeline.Capture
	tick := time.NewTicker(capt.Heartbeat)
	defer tick.Stop()
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	warned := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if conn == nil {
			var err error
			if conn, err = pgx.Connect(ctx, c.opts.DSN); err != nil {
				conn = nil
				continue // the replication session reports connection problems
			}
		}
		if _, err := conn.Exec(ctx, "SELECT pg_logical_emit_message(true, $1, ''::text)", HeartbeatPrefix); err != nil {
			conn.Close(context.Background())
			conn = nil
			continue
		}
		var lag *int64
		err := conn.QueryRow(ctx, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint FROM pg_replication_slots WHERE slot_name = $1", capt.Slot).Scan(&lag)
		if err != nil || lag == nil {
			continue
		}
		if c.opts.Metrics != nil {
			c.opts.Metrics.SlotLag.Set(float64(*lag))
		}
		limit := int64(capt.SlotLagWarning)
		switch {
		case limit > 0 && *lag > limit && !warned:
			c.log.Warn("replication slot lag is past capture.slot_lag_warning: Postgres keeps this much WAL until the ingestor catches up",
				zap.String("slot", capt.Slot), zap.Int64("lag_bytes", *lag), zap.Int64("warning_bytes", limit))
			warned = true
		case warned && *lag <= limit:
			c.log.Info("replication slot lag back under capture.slot_lag_warning", zap.String("slot", capt.Slot), zap.Int64("lag_bytes", *lag))
			warned = false
		}
	}
}
