package kafka

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestFetchPoolKeepsAtMostItsBound(t *testing.T) {
	p := NewFetchPool(1000)
	p.PutDecompressBytes(make([]byte, 10, 600))
	p.PutDecompressBytes(make([]byte, 0, 300))
	p.PutDecompressBytes(make([]byte, 0, 200)) // 1,100 bytes: left to the collector
	if got := p.Held(); got != 900 {
		t.Fatalf("held %d bytes, want 900", got)
	}
	// The smallest buffer that fits, empty.
	if b := p.GetDecompressBytes(make([]byte, 50), kgo.CodecLz4); cap(b) != 300 || len(b) != 0 {
		t.Fatalf("got len %d cap %d, want the 300-byte buffer, empty", len(b), cap(b))
	}
	if got := p.Held(); got != 600 {
		t.Fatalf("held %d bytes after a get, want 600", got)
	}
	// None fits: a new one of four times the compressed size.
	if b := p.GetDecompressBytes(make([]byte, 400), kgo.CodecLz4); cap(b) != 1600 {
		t.Fatalf("got cap %d, want a new 1600-byte buffer", cap(b))
	}
	if got := p.Held(); got != 600 {
		t.Fatalf("held %d bytes, want 600 (the 600-byte buffer is still free)", got)
	}

	// A snappy block says how long it is decompressed: 500 bytes here, so
	// the 600-byte buffer fits although four times 3 bytes would not ask
	// for it, and a block longer than any free buffer gets a new one of
	// its length.
	p.PutDecompressBytes(make([]byte, 0, 100))
	if b := p.GetDecompressBytes(binary.AppendUvarint(nil, 500), kgo.CodecSnappy); cap(b) != 600 {
		t.Fatalf("snappy block of 500 bytes: got cap %d, want the 600-byte buffer", cap(b))
	}
	if b := p.GetDecompressBytes(binary.AppendUvarint(nil, 5000), kgo.CodecSnappy); cap(b) != 5000 {
		t.Fatalf("snappy block of 5000 bytes: got cap %d, want a new 5000-byte buffer", cap(b))
	}

	recs := NewFetchPool(10 * recordSize)
	r := recs.GetRecords(4)
	if cap(r) != 4 || len(r) != 0 {
		t.Fatalf("GetRecords(4): len %d cap %d", len(r), cap(r))
	}
	r = append(r, kgo.Record{Value: []byte("kept?")})
	recs.PutRecords(r)
	if got := recs.Held(); got != 4*recordSize {
		t.Fatalf("held %d bytes, want %d", got, 4*recordSize)
	}
	again := recs.GetRecords(3)
	if cap(again) != 4 || again[:1][0].Value != nil {
		t.Fatalf("the free slice was not given back cleared: cap %d, first %q", cap(again), again[:1][0].Value)
	}
	recs.PutRecords(make([]kgo.Record, 0, 11)) // over the bound
	if got := recs.Held(); got != 0 {
		t.Fatalf("held %d bytes, want 0", got)
	}
}

// TestFetchPoolReusesFetchMemory consumes compressed batches from the
// broker with the pool, recycling every record after copying its value,
// and checks that every value arrives intact, that the memory comes back
// to the pool, and that a record cloned before its recycle keeps its bytes
// (a dead letter).
func TestFetchPoolReusesFetchMemory(t *testing.T) {
	ctx := testCtx(t)
	topic := topicName(t, "")
	spec := TopicSpec{Name: topic, Partitions: 1}
	if _, err := EnsureTopics(ctx, newTestAdmin(t), spec); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	value := func(i int) []byte { return bytes.Repeat([]byte(fmt.Sprintf("value %05d;", i)), 20) }
	prod := newTestClient(t, kgo.ProducerBatchCompression(kgo.SnappyCompression()), kgo.DefaultProduceTopic(topic))
	for round := range 2 {
		for i := range n / 2 {
			prod.Produce(ctx, &kgo.Record{Value: value(round*n/2 + i)}, nil)
		}
		if err := prod.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}

	pool := NewFetchPool(64 << 20)
	cons := newTestClient(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.WithPools(pool))
	var got [][]byte
	var clone *kgo.Record
	for len(got) < n {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Context == nil {
				t.Fatal("a record of a pooled fetch has no recycle context")
			}
			if clone == nil {
				clone = Clone(r)
			}
			got = append(got, bytes.Clone(r.Value))
			r.Recycle()
		})
	}
	for i, v := range got {
		if !bytes.Equal(v, value(i)) {
			t.Fatalf("record %d: %q", i, v)
		}
	}
	if !bytes.Equal(clone.Value, value(0)) {
		t.Fatalf("the clone lost its value after the recycle: %q", clone.Value)
	}
	if pool.Held() == 0 {
		t.Fatal("no memory came back to the pool after every record was recycled")
	}
}
