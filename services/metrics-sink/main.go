// Command metrics-sink writes what the pipeline measured (RUM beacons,
// latency samples, purge audits, delivery ids, dead letters) into
// ClickHouse, and answers the ready-made questions. See
// docs/metrics-sink.md.
//
//	metrics-sink                                    run (configured by FRESHET_* variables)
//	metrics-sink check [-v]                         validate the pipeline file
//	metrics-sink query NAME [-since 1h] [-event ID] print a ready-made question's answer
package main

import (
	"os"

	"github.com/freshet/freshet/pkg/lifecycle"
	"github.com/freshet/freshet/services/metrics-sink/internal/app"
)

func main() {
	lifecycle.Main("metrics-sink", app.Main(os.Args[1:], os.Stdout))
}
