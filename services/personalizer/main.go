// Command personalizer matches each content change with the users it
// concerns and produces their deliveries, exactly once. See
// docs/personalizer.md.
//
//	personalizer              run (configured by FRESHET_* variables)
//	personalizer check [-v]   validate the pipeline file
package main

import (
	"os"

	"github.com/freshet/freshet/pkg/lifecycle"
	"github.com/freshet/freshet/services/personalizer/internal/app"
)

func main() {
	lifecycle.Main("personalizer", app.Main(os.Args[1:], os.Stdout))
}
