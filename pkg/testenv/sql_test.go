package testenv_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/freshet/freshet/pkg/testenv"
)

// TestPostgresWith: the files run, in order, in the test's database.
func TestPostgresWith(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.sql"), filepath.Join(dir, "b.sql")
	if err := os.WriteFile(a, []byte("create table t (x int); insert into t values (1);"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, []byte("insert into t values (2); insert into t select x + 10 from t;"), 0o600); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(context.Background(), testenv.PostgresWith(t, a, b))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n, sum int
	if err := conn.QueryRow(context.Background(), "select count(*), sum(x) from t").Scan(&n, &sum); err != nil || n != 4 || sum != 26 {
		t.Fatalf("rows %d, sum %d, %v; want 4 rows summing to 26", n, sum, err)
	}
}
