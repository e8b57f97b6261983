// Command sse-gateway streams deliveries to browsers over Server-Sent Events
// and takes their RUM beacons. See docs/sse-gateway.md.
//
//	sse-gateway                 serve (configured by FRESHET_* variables)
//	sse-gateway check [-v]      validate the pipeline file
//	sse-gateway token -user U [-channels a,b] [-ttl 1h]
package main

import (
	"os"

	"github.com/freshet/freshet/pkg/lifecycle"
	"github.com/freshet/freshet/services/sse-gateway/internal/app"
)

func main() {
	lifecycle.Main("sse-gateway", app.Main(os.Args[1:], os.Stdout))
}
