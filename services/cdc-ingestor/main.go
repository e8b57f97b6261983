// Command cdc-ingestor turns committed Postgres changes, outbox messages and
// events apps POST to /v1/events into Avro events on Kafka, confirming the
// replication slot only after Kafka acked them. See docs/cdc-ingestor.md.
//
// Usage: cdc-ingestor [check [-v]]
package main

import (
	"github.com/freshet/freshet/pkg/lifecycle"
	"github.com/freshet/freshet/services/cdc-ingestor/internal/app"
)

func main() { lifecycle.Main(app.Name, app.Main) }
