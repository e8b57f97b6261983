package testenv

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// PostgresWith is Postgres with the SQL files run in the test's new
// database, in order: e.g. the example application's schema and rows,
// PostgresWith(t, "../../pipelines/freshet.sql"). A file that does not run
// fails the test.
func PostgresWith(tb testing.TB, files ...string) string {
	tb.Helper()
	dsn := Postgres(tb)
	ctx := ctxFor(tb, opTimeout)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	defer conn.Close(context.Background())
	for _, f := range files {
		sql, err := os.ReadFile(f)
		if err != nil {
			tb.Fatalf("testenv: %v", err)
		}
		if _, err := conn.Exec(ctx, string(sql)); err != nil {
			tb.Fatalf("testenv: run %s: %v", f, err)
		}
	}
	return dsn
}
