// Command invalidator purges the edge caches that hold stale copies of
// changed content: Varnish, Fastly, Cloudflare and HTTP webhooks, as the
// pipeline file's invalidation section says. See docs/invalidator.md.
//
//	invalidator              run (configured by FRESHET_* variables)
//	invalidator check [-v]   validate the pipeline file and the targets' variables
package main

import (
	"os"

	"github.com/freshet/freshet/pkg/lifecycle"
	"github.com/freshet/freshet/services/invalidator/internal/app"
)

func main() {
	lifecycle.Main("invalidator", app.Main(os.Args[1:], os.Stdout))
}
