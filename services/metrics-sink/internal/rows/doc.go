// Package rows turns the records the metrics-sink reads into rows of the
// ClickHouse tables of schemas/clickhouse, held column by column so that a
// batch is sent with one append per column. Strings are held flat
// (Strings: their bytes one after the other, and the end of each), so the
// rows hold no pointer for the garbage collector to scan, and array
// columns too (Flat: every row's items one after the other, and the end of
// each row), as ClickHouse lays them out, so that a row costs no slice of
// its own. Values returns a column as Go values (a copy, for strings).
//
// Latency samples and RUM beacons, the busiest inputs, have a direct path
// (AddLatencyValue, AddBeaconValue) from their bytes into the row, for the
// current version of their schema; it takes what it can and leaves the
// rest to the codec and Add, which give the same row.
//
// Data minimization happens here, once for every input: a beacon keeps its
// keyed user hash only when it is one (64 hex digits, an HMAC-SHA256), and
// never its session id, client clock, metric ids or source; a latency
// sample keeps only the labels of an allow-list and no value that is an IP
// address; purge and DLQ errors have IP addresses masked; a delivery keeps
// its ids and times, never its user id or content. No column can hold a
// raw user id or an IP address.
//
// A Set is not safe for concurrent use: one goroutine fills, sends and
// resets it.
package rows
