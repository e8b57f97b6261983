package kafka

import (
	"bytes"
	"encoding/binary"
	"slices"
	"sync"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"
)

// FetchPool lends a consumer the memory of its fetches (kgo.WithPools): the
// buffers record batches are decompressed into and the slices their records
// are decoded into. franz-go takes a batch's memory back when every record
// of the batch has been recycled (kgo.Record.Recycle), so a consumer that
// copies what it keeps out of a record and then recycles it allocates that
// memory once instead of for every fetch. A record that is not recycled
// (kept, say, as a dead letter) only keeps its batch's memory out of the
// pool; the garbage collector frees it as before.
//
// The pool holds at most maxBytes of free memory; what is put back beyond
// that is left to the garbage collector, so the pool never holds more than
// a bounded amount on top of what the consumer's fetches hold anyway.
//
// It is safe for concurrent use, as franz-go requires.
type FetchPool struct {
	mu   sync.Mutex
	bufs [][]byte
	recs [][]kgo.Record
	held int // bytes of the free buffers and record slices
	max  int
}

// xerialMagic starts a snappy batch in the xerial framing (older Java
// clients), whose chunks each carry their own length.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// maxSnappyBlock bounds the length a snappy block may claim, so that a
// corrupt one cannot make the pool allocate more than a batch can hold.
const maxSnappyBlock = 1 << 30

// recordSize is the memory of one kgo.Record in a slice.
const recordSize = int(unsafe.Sizeof(kgo.Record{}))

// NewFetchPool returns a pool that keeps at most maxBytes of free memory.
func NewFetchPool(maxBytes int) *FetchPool { return &FetchPool{max: maxBytes} }

// GetDecompressBytes implements kgo.PoolDecompressBytes: the smallest free
// buffer that holds the batch decompressed, or a new one. A snappy block
// (franz-go's default codec) starts with its decompressed length; for the
// other codecs four times the compressed size is a guess, which franz-go
// corrects by growing the buffer (the grown one comes back).
func (p *FetchPool) GetDecompressBytes(compressed []byte, codec kgo.CompressionCodecType) []byte {
	want := 4 * len(compressed)
	if n, used := binary.Uvarint(compressed); codec == kgo.CodecSnappy && used > 0 && n <= uint64(maxSnappyBlock) && !bytes.HasPrefix(compressed, xerialMagic) {
		want = int(n)
	}
	p.mu.Lock()
	i := smallestFit(p.bufs, want)
	if i >= 0 {
		b := p.bufs[i]
		p.bufs = slices.Delete(p.bufs, i, i+1)
		p.held -= cap(b)
		p.mu.Unlock()
		return b[:0]
	}
	p.mu.Unlock()
	return make([]byte, 0, want)
}

// PutDecompressBytes implements kgo.PoolDecompressBytes.
func (p *FetchPool) PutDecompressBytes(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held+cap(b) <= p.max {
		p.bufs = append(p.bufs, b[:0])
		p.held += cap(b)
	}
}

// GetRecords implements kgo.PoolRecords: the smallest free slice of at
// least n records, or a new one.
func (p *FetchPool) GetRecords(n int) []kgo.Record {
	p.mu.Lock()
	i := smallestFit(p.recs, n)
	if i >= 0 {
		r := p.recs[i]
		p.recs = slices.Delete(p.recs, i, i+1)
		p.held -= cap(r) * recordSize
		p.mu.Unlock()
		return r[:0]
	}
	p.mu.Unlock()
	return make([]kgo.Record, 0, n)
}

// PutRecords implements kgo.PoolRecords.
func (p *FetchPool) PutRecords(r []kgo.Record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if size := cap(r) * recordSize; p.held+size <= p.max {
		clear(r[:cap(r)]) // nothing of the last fetch stays reachable
		p.recs = append(p.recs, r[:0])
		p.held += size
	}
}

// Held returns the bytes of free memory the pool holds.
func (p *FetchPool) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

// smallestFit returns the index of the smallest slice of capacity at least
// n, or -1.
func smallestFit[S ~[]E, E any](free []S, n int) int {
	best := -1
	for i, s := range free {
		if cap(s) >= n && (best < 0 || cap(s) < cap(free[best])) {
			best = i
		}
	}
	return best
}

// Clone returns a copy of r that shares no memory with it (key, value and
// headers copied), to keep past r.Recycle: a dead letter, for one.
func Clone(r *kgo.Record) *kgo.Record {
	c := *r
	c.Context = nil // not a pooled record: its Recycle does nothing
	c.Key = slices.Clone(r.Key)
	c.Value = slices.Clone(r.Value)
	c.Headers = make([]kgo.RecordHeader, len(r.Headers))
	for i, h := range r.Headers {
		c.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: slices.Clone(h.Value)}
	}
	return &c
}
