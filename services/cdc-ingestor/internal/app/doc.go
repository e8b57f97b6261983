// Package app is the cdc-ingestor's main: it reads the configuration and the
// pipeline file, creates the topics, and runs the capture (Postgres logical
// replication), HTTP ingest and the latency sampler under pkg/lifecycle,
// with /healthz, /readyz and /metrics on the admin listener and POST
// /snapshot there to snapshot a table again.
//
// Concurrency: Main is called once per process.
package app
