package engine_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/services/personalizer/internal/ptest"
)

// While the broker refuses the deliveries for a few seconds mid-stream (a
// Kafka outage as the personalizer sees it), the instance keeps running;
// once the broker is back, every delivery arrives exactly once. A retriable
// refusal (not the leader) is retried within the transaction; a refusal that
// fails the records (invalid record) makes the instance abort the
// transaction, roll its progress back and process the changes again.
func TestDeliveriesOutageMidStream(t *testing.T) {
	for _, c := range []struct {
		name string
		err  *kerr.Error
	}{
		{"retriable", kerr.NotLeaderForPartition},
		{"aborts the transaction", kerr.InvalidRecord},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, 4, 2)
			users := e.interested(e.start("a"), 40, "t")
			var outage atomic.Bool
			refused := testenv.RefuseProduce(t, e.kt, c.err.Code, &outage, e.topics.Deliveries)
			const n = 120
			ids, wait := feed(t, e.prod, n, 5, 20*time.Millisecond, func(i int) {
				switch {
				case i == n/3:
					outage.Store(true)
				case i > n/3 && i < 2*n/3:
					time.Sleep(400 * time.Millisecond) // changes keep coming for ~3s of outage
				case i == 2*n/3:
					outage.Store(false)
				}
			})
			wait()
			e.caughtUp()
			if refused.Load() == 0 {
				t.Fatal("the broker refused no delivery: there was no outage")
			}
			ptest.ExactlyOnce(t, e.deliveries(), ids, users)
			t.Logf("%d produce requests refused during the outage", refused.Load())
		})
	}
}
