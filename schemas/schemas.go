// Package schemas holds Freshet's schema files and compiles them into every
// binary that needs them.
//
// Avro holds the Avro event schemas of schemas/avro: the event schemas at its
// root (ContentChange.avsc and so on), the named types they share in types/,
// and the resolved form of every released version in history/, which lets
// readers decode events written with an older schema. See avro/README.md for
// how the files fit together and the rules for changing them; pkg/codec loads
// them.
//
// ClickHouse holds the ClickHouse schema of schemas/clickhouse: versioned
// migrations and the ready-made queries; the metrics-sink applies and runs
// them.
//
// The embedded file systems are read-only and safe for concurrent use.
package schemas

import (
	"embed"
	"io/fs"
)

//go:embed clickhouse/*.sql clickhouse/queries/*.sql
var clickhouseFiles embed.FS

// ClickHouse is the tree of schemas/clickhouse: the versioned migrations
// NNNN_name.sql at its root, applied in order by the metrics-sink, and the
// ready-made questions in queries/ (see docs/metrics-sink.md).
var ClickHouse fs.FS = mustSub(clickhouseFiles, "clickhouse")

//go:embed avro/*.avsc avro/types/*.avsc avro/history/*.avsc
var avroFiles embed.FS

// Avro is the tree of schemas/avro: event schemas at the root, shared named
// types in types/, past versions in history/.
var Avro fs.FS = mustSub(avroFiles, "avro")

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		// fs.Sub fails only on an invalid path, which is a constant here.
		panic(err)
	}
	return sub
}
