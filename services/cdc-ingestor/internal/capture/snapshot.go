package capture

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/freshet/freshet/services/cdc-ingestor/internal/pgoutput"
)

type snapshotter struct{ c *Capture }

func newSnapshotter(c *Capture) *snapshotter { return &snapshotter{c: c} }

func (sn *snapshotter) prepare(ctx context.Context, conn *pgx.Conn, created bool) error { return nil }
func (sn *snapshotter) run(ctx context.Context, tr *tracker)                            {}
func (sn *snapshotter) touched(table, key string)                                       {}
func (sn *snapshotter) watermark(ctx context.Context, tr *tracker, x *txn, m *pgoutput.LogicalMessage, tx *txState) {
}
