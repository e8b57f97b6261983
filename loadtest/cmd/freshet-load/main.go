// Command freshet-load measures Freshet as a whole: it starts the whole
// local stack the way `make run` does (Postgres, ClickHouse, Varnish, the
// embedded kfake broker and every service under services/, from the tree),
// runs scenarios against it one after another, prints progress while they
// run and a summary table at the end, and writes the same as JSON.
//
//	go run ./loadtest/cmd/freshet-load                 # the short run of every scenario (make bench)
//	go run ./loadtest/cmd/freshet-load -long           # the sizes
//	go run ./loadtest/cmd/freshet-load -scenarios freshness -clients 2000 -rates 1000:20s
//
// Run it from the repository root. It sends traffic only to 127.0.0.0/8,
// every scenario is bounded in time and count, and it stops by itself.
// Figures and how to read them: docs/benchmarks.md, "Whole stack".
package main

import (
	"github.com/freshet/freshet/loadtest/internal/cli"
	"github.com/freshet/freshet/pkg/lifecycle"
)

func main() { lifecycle.Main("freshet-load", cli.Main) }
