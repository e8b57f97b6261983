// Package testenv gives a test package real servers: Postgres, ClickHouse
// and the Kafka-protocol broker are started once per package (by
// pkg/servers, in temporary folders) and each test gets resources of its
// own on them: a database, a ClickHouse database, a topic and group prefix.
// Varnish is started per call, since its VCL names the test's backend;
// ReferenceVCL renders the repository's reference VCL for a backend.
//
// A package opts in from TestMain:
//
//	func TestMain(m *testing.M) {
//		// Start Postgres and the broker before the first test (concurrently);
//		// anything not listed starts on first use.
//		testenv.Main(m, testenv.NeedPostgres, testenv.NeedKafka)
//	}
//
//	func TestCapture(t *testing.T) {
//		dsn := testenv.Postgres(t)      // a fresh database, dropped after the test
//		kt := testenv.Kafka(t)          // seeds and this test's prefix
//		topic := kt.Topic("content.changes")
//		group := kt.Group("invalidator") // or testenv.Topic(t, ...), testenv.Group(t, ...)
//		db := testenv.ClickHouse(t)     // db.Options() for clickhouse-go, db.Database
//		vcl := testenv.ReferenceVCL(t, srv.Listener.Addr().String()) // deploy/varnish/default.vcl
//		edge := testenv.Varnish(t, vcl) // edge.URL(), edge.Stats(ctx), stopped after the test
//		...
//	}
//
// A package whose tests kill its service mid-stream runs the service as a
// separate process: ServiceMain instead of Main makes the test binary the
// service when StartService starts it, and StartService waits for /readyz
// and kills it when the test ends:
//
//	func TestMain(m *testing.M) {
//		testenv.ServiceMain(m, func() { lifecycle.Main("personalizer", app.Main(nil, os.Stdout)) }, testenv.NeedKafka)
//	}
//
//	func TestKill(t *testing.T) {
//		svc := testenv.StartService(t, testenv.ServiceOptions{Name: "personalizer", Env: env})
//		...
//		svc.Kill() // SIGKILL, from any goroutine (a kfake control function)
//	}
//
// Browser starts a headless Chromium of the test's own (chromedp), for
// tests that drive a page as a person would; Chromium counts as a server
// binary (skip or fail when missing).
//
// Faults for crash and outage tests: HoldTable holds a Postgres table still
// (a snapshot between two chunks); RefuseProduce makes the broker refuse the
// produce requests to some topics while a flag is set (a Kafka outage as a
// producer sees it).
//
// Main stops every server after the tests, also when some fail, and on
// SIGINT or SIGTERM. If the process dies without running that (a test
// panics, go test -timeout fires, kill -9), the server processes still die
// with it (pkg/servers sets Pdeathsig), and the next Main removes the
// temporary folders they left.
//
// A server whose binary is missing makes the test skip with the apt-get
// command that installs it, or fail when FRESHET_REQUIRE_SERVERS=1 (as in
// CI). In -short mode, tests that need a server binary are skipped; the
// broker runs in process and is always available. FRESHET_KEEP_TESTDATA=1
// keeps the servers' folders and the per-test databases and topics, and
// prints where they are.
//
// Per-test resources are cleaned up by t.Cleanup: the database is dropped
// with its replication slots (WAL piles up otherwise) and its sessions;
// topics named with the test's prefix are deleted.
//
// A package server that failed to start is not tried again: every test
// that asks for it gets the same error.
//
// Concurrency: every function may be called from parallel tests. Tests
// that restart a shared server (PostgresServer(t).Restart) affect the
// other tests of the package and should not run in parallel with them.
package testenv
