package capture

import (
	"testing"

	"github.com/freshet/freshet/pkg/testenv"
)

func TestMain(m *testing.M) {
	testenv.Main(m, testenv.NeedPostgres, testenv.NeedKafka)
}
