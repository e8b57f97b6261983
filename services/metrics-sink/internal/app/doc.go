// Package app is the metrics-sink's command line: running the service
// (configuration, logging, lifecycle, admin endpoints), `check` (validate
// the pipeline file) and `query` (a ready-made question against
// ClickHouse, printed as a table). See docs/metrics-sink.md.
package app
