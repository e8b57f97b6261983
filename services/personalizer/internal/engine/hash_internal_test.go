package engine

import (
	"fmt"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaHash places a key where a fresh Kafka default partitioner does, also
// from many goroutines at once (the shared partitioner keeps no state for
// keyed records), and an empty key deterministically.
func TestKafkaHashMatchesTheDefaultPartitioner(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				key := []byte(fmt.Sprintf("user-%d-%d", g, i))
				want := kgo.StickyKeyPartitioner(nil).ForTopic("").Partition(&kgo.Record{Key: key}, 12)
				if got := kafkaHash(key, 12); got != want {
					t.Errorf("kafkaHash(%s, 12) = %d, want %d", key, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	if a, b := kafkaHash(nil, 12), kafkaHash([]byte{}, 12); a != b {
		t.Errorf("a nil key went to %d, an empty one to %d: want the same partition", a, b)
	}
}
