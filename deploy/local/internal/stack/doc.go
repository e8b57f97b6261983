// Package stack runs Freshet's whole stack on one machine from local
// binaries, for `make run`: Postgres 15 (wal_level=logical) with the example
// schema of pipelines/freshet.sql, ClickHouse, Varnish with the VCL of
// deploy/varnish, an embedded disk-backed Kafka-protocol broker (franz-go's
// kfake) on a fixed loopback port, and every service under services/, built
// from the tree and run as separate processes.
//
// Data, logs, binaries and generated secrets live under one folder
// (FRESHET_LOCAL_DIR, default .freshet) that survives restarts. Every
// process the stack starts leads its own process group and is killed if the
// runner dies (pkg/servers), so nothing outlives it; on SIGINT or SIGTERM
// the services are stopped first, then the servers, in reverse order of
// start.
//
// The embedded broker is the single-machine default, not a production
// broker: it has no replication. Set FRESHET_KAFKA_BROKERS to use a real
// cluster instead.
package stack
