package stack

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// saveSlots makes Postgres keep, across its restart, how far each logical
// replication slot of the stack's database was confirmed: the
// cdc-ingestor confirms what Kafka acked, but Postgres 15 writes a slot to
// disk only when its restart position or catalog xmin moves (or, from
// Postgres 17, at the shutdown checkpoint), so after a restart the slot
// could fall back by up to a few minutes of changes, which the ingestor
// would then stream again (same event ids, new records on Kafka, new
// deliveries on the users' streams). pg_replication_slot_advance to the
// confirmed position marks the slot dirty, so the shutdown checkpoint
// saves it. It runs after the services stopped; a slot still held by a
// client (an ingestor the stack does not run) is left alone. Best effort:
// the error says which slot it could not save.
func saveSlots(ctx context.Context, dsn string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("save replication slots: %w", err)
	}
	defer conn.Close(context.Background())
	// A walsender outlives its client by a moment: wait for it.
	var active []string
	for {
		active = active[:0]
		rows, err := conn.Query(ctx, `select slot_name from pg_replication_slots
			where slot_type = 'logical' and database = current_database() and active`)
		if err == nil {
			active, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if err != nil {
			return fmt.Errorf("save replication slots: %w", err)
		}
		if len(active) == 0 || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	rows, err := conn.Query(context.Background(), `select slot_name, (pg_replication_slot_advance(slot_name, confirmed_flush_lsn)).end_lsn::text
		from pg_replication_slots
		where slot_type = 'logical' and database = current_database() and not active and confirmed_flush_lsn is not null`)
	if err == nil {
		_, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
			var name, lsn string
			return name, r.Scan(&name, &lsn)
		})
	}
	if err != nil {
		return fmt.Errorf("save replication slots: %w", err)
	}
	if len(active) > 0 {
		return fmt.Errorf("save replication slots: %v still in use; their confirmed position may fall back after the restart", active)
	}
	return nil
}
