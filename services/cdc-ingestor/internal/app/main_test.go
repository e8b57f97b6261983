package app

import (
	"os"
	"testing"

	"github.com/freshet/freshet/pkg/lifecycle"
	"github.com/freshet/freshet/pkg/testenv"
)

// helperEnv makes the test binary run the service instead of the tests, so
// that a test can run the ingestor as a separate process and kill -9 it.
const helperEnv = "FRESHET_CDC_INGESTOR_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Args = os.Args[:1]
		lifecycle.Main(Name, Main)
	}
	testenv.Main(m, testenv.NeedPostgres, testenv.NeedKafka)
}
