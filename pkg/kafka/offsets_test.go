package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// LogBounds gives each partition's log start and last stable offset: here
// partition 0 holds 3 records, partition 1 had 5 of which 2 were deleted,
// and a transaction left open on partition 2 holds its end back.
func TestLogBounds(t *testing.T) {
	ctx := testCtx(t)
	adm := newTestAdmin(t)
	topic := topicName(t, ".bounds")
	if _, err := EnsureTopics(ctx, adm, TopicSpec{Name: topic, Partitions: 3}); err != nil {
		t.Fatal(err)
	}
	cl := newTestClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p, n := range []int{3, 5} {
		for range n {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: int32(p), Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: topic, Partition: 1, At: 2})
	// Fresh admin clients from here: adm's metadata may predate the topic.
	if resp, err := newTestAdmin(t).DeleteRecords(ctx, del); err != nil || resp.Error() != nil {
		t.Fatalf("delete records: %v %v", err, resp.Error())
	}
	txn := newTestClient(t, kgo.TransactionalID(topicName(t, ".txn")), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 2, Value: []byte("open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	defer txn.EndTransaction(ctx, kgo.TryAbort)

	got, err := LogBounds(ctx, newTestAdmin(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]Bounds{0: {0, 3}, 1: {2, 5}, 2: {0, 0}}
	if len(got) != len(want) {
		t.Fatalf("bounds of %d partitions, want %d: %v", len(got), len(want), got)
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("partition %d: %+v, want %+v", p, got[p], w)
		}
	}
}

func TestLogBoundsOfAMissingTopic(t *testing.T) {
	if b, err := LogBounds(testCtx(t), newTestAdmin(t), topicName(t, ".none")); err == nil {
		t.Fatalf("bounds of a topic that does not exist: %v, and no error", b)
	}
}
