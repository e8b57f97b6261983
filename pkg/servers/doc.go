// Package servers starts and stops the real servers Freshet runs against:
// PostgreSQL 15 (wal_level=logical), ClickHouse, Varnish 7 with a given VCL,
// and an in-process Kafka-protocol broker (franz-go's kfake). Tests use it
// through pkg/testenv with temporary folders; the local stack runner uses it
// directly with persistent folders and fixed ports.
//
// Each launcher is StartX(ctx, XOptions) (*X, error): it returns once the
// server answers a real request (a Postgres connection running select 1;
// ClickHouse's GET /ping answering "Ok." and a native ping; an HTTP answer
// from Varnish; a TCP accept on every kfake broker), or an error quoting the
// tail of the server's log. Stop(ctx) shuts the server down gracefully,
// kills its process group if that takes too long, removes the folder when
// it was temporary, and may be called more than once.
//
// Folders: an empty Dir means a temporary folder named
// freshet-<kind>-<pid>-* in os.TempDir, removed by Stop. A Dir given by the
// caller is created if missing, kept by Stop, and its data is reused by the
// next start (Postgres skips initdb when PG_VERSION exists; ClickHouse
// reuses its data/ folder; kfake reloads its DataDir). Config files are
// rewritten at every start.
//
// Ports: zero means a free port on 127.0.0.1, picked by listening on port 0
// and closing; if another process takes it before the server binds it,
// Start retries with new ports. Fixed ports are not retried.
//
// Nothing outlives the caller: every server process leads its own process
// group and gets SIGKILL when the calling process dies (Pdeathsig, forked
// from an OS thread that lives as long as the process). Postgres is run as
// the postgres user (via the process credentials, without runuser or
// pg_ctl, so that no intermediate process breaks that link) and in the
// foreground; its backends exit when the postmaster dies. varnishd runs
// with -j none for the same reason (a jail changes its user, which clears
// Pdeathsig); its cache worker exits when the manager dies. Temporary
// folders of a killed process stay behind: RemoveStaleTempDirs removes
// them once that process is gone.
//
// A missing binary yields an error wrapping ErrNotInstalled
// (*NotInstalledError) that names the apt-get command to run.
//
// Concurrency: the launchers may run concurrently, and the methods of each
// server are safe for concurrent use. Stop and Restart serialise with each
// other.
package servers
