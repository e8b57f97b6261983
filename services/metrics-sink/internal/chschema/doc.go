// Package chschema applies Freshet's ClickHouse schema (schemas/clickhouse)
// to a database: versioned migrations recorded in a schema_migrations table,
// and the retention of the data (TTL where the server has it, dropped
// partitions where it does not).
//
// Migrations are files NNNN_name.sql, applied in the order of NNNN, each
// once; statements are separated by lines ending with ';'. Applying them is
// idempotent: every CREATE says IF NOT EXISTS, and an ALTER that finds its
// column already there (a run that died between the ALTER and the record of
// its version) counts as applied. Several sinks starting at once may apply
// the same version together; the result is the same.
//
// The functions are safe for concurrent use; they hold no state.
package chschema
