// Command origin is Freshet's reference origin: a read API over the
// pipeline's content table, behind the edge cache, that tags every page
// with the surrogate keys the invalidator purges. See docs/origin.md.
//
//	origin              run (configured by FRESHET_* variables)
//	origin check [-v]   validate the pipeline file
package main

import (
	"os"

	"github.com/freshet/freshet/pkg/lifecycle"
	"github.com/freshet/freshet/services/origin/internal/app"
)

func main() {
	lifecycle.Main(app.Name, app.Main(os.Args[1:], os.Stdout))
}
