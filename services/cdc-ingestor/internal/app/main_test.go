package app

import (
	"testing"

	"github.com/freshet/freshet/pkg/lifecycle"
	"github.com/freshet/freshet/pkg/testenv"
)

func TestMain(m *testing.M) {
	// The kill tests run the ingestor as a separate process: this binary,
	// in service mode.
	testenv.ServiceMain(m, func() { lifecycle.Main(Name, Main) }, testenv.NeedPostgres, testenv.NeedKafka)
}
