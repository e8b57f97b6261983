// Command local runs Freshet's whole stack on one machine from local
// binaries: `make run` (or `go run ./deploy/local`). See deploy/local/README.md.
package main

import (
	"github.com/freshet/freshet/deploy/local/internal/stack"
	"github.com/freshet/freshet/pkg/lifecycle"
)

func main() { lifecycle.Main("freshet-local", stack.Main) }
