package testenv

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// HoldTable takes an ACCESS EXCLUSIVE lock on table ("content" or
// "public.content", in the database of dsn) at a moment when ready reports
// true with the lock held, and keeps it until the returned release is called
// (or the test ends). Readers of the table,
// such as the next chunk of a snapshot, wait meanwhile: a test uses it to
// stop a component at a known point, however fast the machine, before it
// kills or stops it. ready is called with the lock held, so what it observes
// cannot move on while it decides. HoldTable fails tb when ready is not
// true within 60s.
func HoldTable(tb testing.TB, dsn, table string, ready func() bool) (release func()) {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	release = func() { conn.Close(ctx) } // ends the transaction, and so the lock
	tb.Cleanup(release)
	deadline := time.Now().Add(60 * time.Second)
	for {
		tx, err := conn.Begin(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "LOCK TABLE "+pgx.Identifier(strings.Split(table, ".")).Sanitize()+" IN ACCESS EXCLUSIVE MODE"); err != nil {
			tb.Fatal(err)
		}
		if ready() {
			return release
		}
		if err := tx.Rollback(ctx); err != nil {
			tb.Fatal(err)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("testenv: hold table %s: not ready within 60s", table)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
