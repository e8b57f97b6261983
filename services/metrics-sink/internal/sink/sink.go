package sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/lifecycle"
	"github.com/freshet/freshet/pkg/logging"
	"github.com/freshet/freshet/schemas"
	"github.com/freshet/freshet/services/metrics-sink/internal/chschema"
	"github.com/freshet/freshet/services/metrics-sink/internal/rows"
)

// Option tunes New.
type Option func(*options)

type options struct {
	reg   prometheus.Registerer
	codec *codec.Codec
}

// WithRegisterer registers the sink's metrics with reg (default: a registry
// of its own, which nothing serves).
func WithRegisterer(reg prometheus.Registerer) Option { return func(o *options) { o.reg = reg } }

// WithCodec shares a codec.
func WithCodec(c *codec.Codec) Option { return func(o *options) { o.codec = c } }

// Sink moves records from Kafka into ClickHouse.
type Sink struct {
	cfg     Config
	log     *zap.Logger
	codec   *codec.Codec
	decoder decoder
	m       *metrics
	ready   lifecycle.ReadyFlag

	kinds map[string]rows.Kind // topic to input
	dlq   *kafka.DLQ

	// Two batches: the loop fills one while the inserter writes the
	// other. free holds the batches not in use.
	cur  *batch
	free chan *batch
	// avgRecord is the bytes a record of the last batch handed over, 0
	// before the first (batch.room).
	avgRecord int
	toInsert  chan *batch
	blocked   atomic.Bool // a rebalance waits for the loop

	cl      *kgo.Client
	conn    driver.Conn // the inserter's, once Run prepared it
	scratch scratch     // the inserter's, for the columns of a batch

	mu    sync.Mutex
	clean map[position]bool // partitions whose stored offsets are known
	// ahead holds, per partition not yet clean, the offsets ClickHouse
	// held past the batch that was checked (a crashed instance may have
	// stored more than one of this instance's batches); the batches that
	// bring them leave them out.
	ahead map[position]map[int64]bool

	ttl       bool
	retention time.Time

	closeOnce sync.Once

	read map[string]prometheus.Counter // the loop's, per topic
}

// readCounter returns the records counter of topic (cached: the loop counts
// every record).
func (s *Sink) readCounter(topic string) prometheus.Counter {
	c, ok := s.read[topic]
	if !ok {
		c = s.m.read.WithLabelValues(topic)
		s.read[topic] = c
	}
	return c
}

// batch is the rows of a batch, its dead letters and the offsets to
// commit once they are stored.
type batch struct {
	set     *rows.Set
	dead    []*kgo.Record
	offsets map[string]map[int32]kgo.EpochOffset
	first   time.Time // when its first record came
	bytes   int       // of the record values taken
}

func newBatch() *batch {
	return &batch{set: rows.NewSet(), offsets: map[string]map[int32]kgo.EpochOffset{}}
}

func (b *batch) pending() int { return b.set.Len() + len(b.dead) }

// room is how many records to poll into the batch: what is left of its
// rows, and of its bytes at the size of the records it took so far, or of
// those of the last batch, avg (a poll of 50,000 beacons would take
// several times the bytes bound).
func (b *batch) room(rows, bytes, avg int) int {
	n := rows - b.set.Len()
	if taken := b.pending(); taken > 0 {
		avg = max(b.bytes/taken, 1)
	}
	if avg == 0 {
		avg = 1 << 10 // a guess until a record is taken: the next poll corrects it
	}
	return max(min(n, (bytes-b.bytes)/avg), 1)
}

func (b *batch) reset() {
	b.bytes = 0
	b.set.Reset()
	clear(b.dead)
	b.dead = b.dead[:0]
	clear(b.offsets)
}

// position is a partition of a topic, as the raw tables key their rows.
type position struct {
	topic     string
	partition int32
}

// Name implements lifecycle.Named.
func (s *Sink) Name() string { return "sink" }

// Ready implements lifecycle.Readier.
func (s *Sink) Ready() error { return s.ready.Ready() }

// New returns a Sink. It does not connect: Run does.
func New(cfg Config, log *zap.Logger, opts ...Option) (*Sink, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.reg == nil {
		o.reg = prometheus.NewRegistry()
	}
	if log == nil {
		log = zap.NewNop()
	}
	s := &Sink{cfg: cfg, log: log, codec: o.codec, kinds: map[string]rows.Kind{}, clean: map[position]bool{}, ahead: map[position]map[int64]bool{},
		cur: newBatch(), free: make(chan *batch, 1), toInsert: make(chan *batch), read: map[string]prometheus.Counter{}}
	s.free <- newBatch()
	if s.codec == nil {
		var err error
		if s.codec, err = codec.New(codec.WithRegistry(cfg.Kafka.SchemaRegistryURL)); err != nil {
			return nil, fmt.Errorf("sink: codec: %w", err)
		}
	}
	s.decoder = newDecoder(s.codec)
	for k, t := range cfg.Topics {
		if t != "" {
			s.kinds[t] = k
		}
	}
	for _, t := range cfg.DLQTopics {
		if _, ok := s.kinds[t]; ok {
			return nil, fmt.Errorf("sink: topic %s is named twice", t)
		}
		s.kinds[t] = rows.DLQ
	}
	var err error
	if s.m, err = newMetrics(o.reg); err != nil {
		return nil, fmt.Errorf("sink: metrics: %w", err)
	}
	s.ready.SetNotReady(errors.New("connecting to ClickHouse"))
	installColStrProvider()
	return s, nil
}

// topics returns every topic read, sorted.
func (s *Sink) topics() []string { return slices.Sorted(maps.Keys(s.kinds)) }

// Run prepares ClickHouse (database, migrations, retention) and Kafka
// (topics), then moves records until ctx is cancelled.
func (s *Sink) Run(ctx context.Context) error {
	if err := s.prepareClickHouse(ctx); err != nil {
		return err
	}
	if err := s.prepareKafka(ctx); err != nil {
		return err
	}
	s.ready.SetReady()
	s.m.up.Set(1)
	s.log.Info("running", zap.Strings("topics", s.topics()), zap.String("group", s.cfg.Group),
		zap.Int("batch_rows", s.cfg.BatchRows), zap.Duration("batch_interval", s.cfg.BatchInterval))
	// The inserter outlives ctx by the shutdown's grace, to store the
	// batch in hand.
	ictx, icancel := context.WithCancel(context.WithoutCancel(ctx))
	defer icancel()
	inserted := make(chan struct{})
	go func() {
		defer close(inserted)
		s.inserter(ictx)
	}()
	var err error
	for {
		if err = s.step(ctx); err != nil {
			if ctx.Err() != nil {
				err = nil
			}
			break
		}
	}
	s.finish(icancel, inserted)
	return err
}

// finish hands the batch in hand to the inserter and gives it a few
// seconds to store it and commit; what it cannot store is read again by
// the next run.
func (s *Sink) finish(icancel context.CancelFunc, inserted <-chan struct{}) {
	grace := time.NewTimer(5 * time.Second)
	defer grace.Stop()
	if s.cur.pending() > 0 {
		select {
		case s.toInsert <- s.cur:
		case <-grace.C:
		}
	}
	close(s.toInsert)
	select {
	case <-inserted:
		return
	case <-grace.C:
	}
	s.log.Warn("batch not stored at shutdown: it will be read again")
	icancel()
	<-inserted
}

// step polls once, and hands the batch to the inserter when it is full or
// old enough, or when a rebalance waits.
func (s *Sink) step(ctx context.Context) error {
	wait := s.cfg.BatchInterval
	if s.cur.pending() > 0 {
		wait = max(time.Until(s.cur.first.Add(s.cfg.BatchInterval)), time.Millisecond)
	}
	pctx, cancel := context.WithTimeout(ctx, wait)
	fetches := s.cl.PollRecords(pctx, s.cur.room(s.cfg.BatchRows, s.cfg.BatchBytes, s.avgRecord))
	cancel()
	if fetches.IsClientClosed() || ctx.Err() != nil {
		return ctx.Err()
	}
	fetches.EachError(func(topic string, p int32, err error) {
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			s.log.Warn("fetch", logging.Topic(topic), logging.Partition(p), logging.Error(err))
		}
	})
	var err error
	fetches.EachRecord(func(r *kgo.Record) {
		if err == nil {
			err = s.take(ctx, r)
		}
		// take copied what it keeps (a dead letter, its own record): the
		// fetch's memory can go back to the pool.
		r.Recycle()
	})
	if err != nil {
		return err
	}
	s.m.pending.Set(float64(s.cur.set.Len()))
	full := s.cur.set.Len() >= s.cfg.BatchRows || s.cur.bytes >= s.cfg.BatchBytes || !time.Now().Before(s.cur.first.Add(s.cfg.BatchInterval))
	if s.cur.pending() > 0 && (full || s.blocked.Load()) {
		s.avgRecord = max(s.cur.bytes/s.cur.pending(), 1)
		if err := s.handOver(ctx); err != nil {
			return err
		}
	}
	if s.cur.pending() == 0 && (s.blocked.Load() || len(fetches.Records()) == 0) {
		// Nothing polled is uncommitted once the inserter is idle.
		if err := s.drain(ctx); err != nil {
			return err
		}
		s.blocked.Store(false)
		s.cl.AllowRebalance()
	}
	return nil
}

// handOver gives the batch in hand to the inserter (waiting while it
// stores the previous one) and takes the free one.
func (s *Sink) handOver(ctx context.Context) error {
	select {
	case s.toInsert <- s.cur:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case s.cur = <-s.free:
	case <-ctx.Done():
		s.cur = newBatch() // the other is the inserter's until it returns
		return ctx.Err()
	}
	return nil
}

// drain waits until the inserter has stored and committed every batch
// handed over.
func (s *Sink) drain(ctx context.Context) error {
	select {
	case b := <-s.free:
		s.free <- b
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// inserter stores the batches handed over, in order, until toInsert is
// closed or ctx ends.
func (s *Sink) inserter(ctx context.Context) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case b, ok := <-s.toInsert:
			if !ok {
				return
			}
			if err := s.flush(ctx, b); err != nil {
				return
			}
			b.reset()
			s.free <- b
		case <-tick.C:
			s.keepRetention(ctx)
		}
	}
}

// take turns a record into a row, or a dead letter, of the batch in hand.
func (s *Sink) take(ctx context.Context, r *kgo.Record) error {
	b := s.cur
	if b.pending() == 0 {
		b.first = time.Now()
	}
	k, ok := s.kinds[r.Topic]
	if !ok {
		return nil
	}
	s.readCounter(r.Topic).Inc()
	b.bytes += len(r.Value)
	parts := b.offsets[r.Topic]
	if parts == nil {
		parts = map[int32]kgo.EpochOffset{}
		b.offsets[r.Topic] = parts
	}
	parts[r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
	if k == rows.DLQ {
		h := make(map[string]string, len(r.Headers))
		for _, x := range r.Headers {
			if strings.HasPrefix(x.Key, "freshet.dlq.") {
				h[x.Key] = string(x.Value)
			}
		}
		b.set.AddDLQ(r.Topic, h, r.Timestamp, r.Partition, r.Offset)
		return nil
	}
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, s.cfg.MaxBackoff) {
		err := s.decoder.add(ctx, b.set, k, r.Value, r.Partition, r.Offset)
		if err == nil || codec.IsDataError(err) || errors.Is(err, rows.ErrWrongEvent) {
			if err != nil {
				b.dead = append(b.dead, s.dlq.Record(kafka.Clone(r), err, time.Now()))
				s.m.dlq.WithLabelValues(r.Topic).Inc()
				s.log.Warn("record to the DLQ", logging.Topic(r.Topic), logging.Partition(r.Partition), logging.Offset(r.Offset), logging.Error(err))
			}
			return nil
		}
		// A registry outage is no fault of the record: wait for it.
		s.log.Warn("decode (transient), retrying", logging.Topic(r.Topic), logging.Error(err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
	}
}

// flush inserts batch b into every table, retrying until it succeeds or
// ctx ends, then sends its dead letters and commits its offsets.
func (s *Sink) flush(ctx context.Context, b *batch) error {
	start := time.Now()
	paused := false
	for backoff := 200 * time.Millisecond; ; backoff = min(2*backoff, s.cfg.MaxBackoff) {
		err := s.insertAll(ctx, b.set)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.m.errors.Inc()
		s.m.up.Set(0)
		s.ready.SetNotReady(fmt.Errorf("clickhouse: %w", err))
		if !paused {
			s.cl.PauseFetchTopics(s.topics()...)
			paused = true
		}
		s.log.Warn("insert failed, retrying", zap.Duration("backoff", backoff), zap.Int("rows", b.set.Len()), logging.Error(err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		s.reconnect()
	}
	if paused {
		s.cl.ResumeFetchTopics(s.topics()...)
		s.m.up.Set(1)
		s.ready.SetReady()
		s.log.Info("ClickHouse is back", zap.Duration("after", time.Since(start)))
	}
	for backoff := 200 * time.Millisecond; len(b.dead) > 0; backoff = min(2*backoff, s.cfg.MaxBackoff) {
		err := s.cl.ProduceSync(ctx, b.dead...).FirstErr()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.log.Warn("dead letters not produced, retrying", logging.Error(err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
	}
	s.cl.CommitOffsetsSync(ctx, b.offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err == nil {
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if e := kerr.ErrorForCode(p.ErrorCode); e != nil && err == nil {
						err = fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, e)
					}
				}
			}
		}
		if err != nil {
			// The rows are in; a later commit covers them, or whoever
			// reads them again finds their offsets stored and skips them.
			s.log.Warn("commit offsets", logging.Error(err))
		}
	})
	s.m.batches.Inc()
	s.m.insertSec.Observe(time.Since(start).Seconds())
	return nil
}

// insertAll inserts every table that holds rows; a table inserted is
// emptied, so a retry sends only what failed.
func (s *Sink) insertAll(ctx context.Context, set *rows.Set) error {
	for _, k := range rows.Kinds {
		t := set.Table(k)
		if t.Len() == 0 {
			continue
		}
		if err := s.dedupe(ctx, k, t); err != nil {
			return err
		}
		if t.Len() > 0 {
			if err := s.insert(ctx, t); err != nil {
				s.forget(k, t)
				return fmt.Errorf("insert into %s: %w", t.Name(), err)
			}
			s.m.rows.WithLabelValues(t.Name()).Add(float64(t.Len()))
		}
		t.Reset()
	}
	if n := set.Minimized; n > 0 {
		s.m.minimized.Add(float64(n))
		set.Minimized = 0
	}
	return nil
}

func (s *Sink) topicOf(k rows.Kind, t *rows.Table, i int) string {
	if k == rows.DLQ {
		return t.Topic(i)
	}
	return s.cfg.Topics[k]
}

// forget marks the partitions of t's rows as unknown again: an insert
// whose outcome is unknown may have stored some of them.
func (s *Sink) forget(k rows.Kind, t *rows.Table) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range t.Len() {
		p, _ := t.Position(i)
		pos := position{s.topicOf(k, t, i), p}
		delete(s.clean, pos)
		delete(s.ahead, pos)
	}
}

// dedupe leaves out the rows whose offsets ClickHouse holds already, for
// the partitions not known clean. The first check of a partition lists
// every offset stored from the batch's first one on, not only the batch's
// range: an instance killed between insert and commit may have stored more
// rows than this batch holds. A partition is clean once the batches read
// have passed every offset that list held.
func (s *Sink) dedupe(ctx context.Context, k rows.Kind, t *rows.Table) error {
	type span struct{ lo, hi int64 }
	spans := map[position]span{}
	s.mu.Lock()
	for i := range t.Len() {
		p, o := t.Position(i)
		pos := position{s.topicOf(k, t, i), p}
		if s.clean[pos] {
			continue
		}
		sp, ok := spans[pos]
		if !ok {
			sp = span{o, o}
		}
		spans[pos] = span{min(sp.lo, o), max(sp.hi, o)}
	}
	s.mu.Unlock()
	if len(spans) == 0 {
		return nil
	}
	stored := map[position]map[int64]bool{}
	for pos, sp := range spans {
		s.mu.Lock()
		known, ok := s.ahead[pos]
		s.mu.Unlock()
		if ok {
			stored[pos] = known
			continue
		}
		q := fmt.Sprintf("SELECT kafka_offset FROM %s WHERE kafka_partition = %d AND kafka_offset >= %d",
			t.Name(), pos.partition, sp.lo)
		if c := t.TopicColumn(); c != "" {
			q += fmt.Sprintf(" AND %s = '%s'", c, strings.ReplaceAll(pos.topic, "'", ""))
		}
		rs, err := s.conn.Query(ctx, q)
		if err != nil {
			return fmt.Errorf("stored offsets of %s: %w", t.Name(), err)
		}
		for rs.Next() {
			var o uint64
			if err := rs.Scan(&o); err != nil {
				rs.Close()
				return err
			}
			if stored[pos] == nil {
				stored[pos] = map[int64]bool{}
			}
			stored[pos][int64(o)] = true
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return fmt.Errorf("stored offsets of %s: %w", t.Name(), err)
		}
	}
	if len(stored) > 0 {
		mask := make([]bool, t.Len())
		skipped := 0
		for i := range mask {
			p, o := t.Position(i)
			mask[i] = !stored[position{s.topicOf(k, t, i), p}][o]
			if !mask[i] {
				skipped++
			}
		}
		if skipped > 0 {
			t.Keep(mask)
			s.m.skipped.WithLabelValues(t.Name()).Add(float64(skipped))
			s.log.Info("rows already stored, left out", zap.String("table", t.Name()), zap.Int("rows", skipped))
		}
	}
	s.mu.Lock()
	for pos, sp := range spans {
		rest := map[int64]bool{}
		for o := range stored[pos] {
			if o > sp.hi {
				rest[o] = true
			}
		}
		if len(rest) == 0 {
			s.clean[pos] = true
			delete(s.ahead, pos)
		} else {
			s.ahead[pos] = rest
		}
	}
	s.mu.Unlock()
	return nil
}

// insert sends t as one native batch.
func (s *Sink) insert(ctx context.Context, t *rows.Table) error {
	done := sizes.set(t)
	b, err := s.conn.PrepareBatch(ctx, t.Insert())
	done()
	if err != nil {
		return err
	}
	if err := appendTable(b, t, &s.scratch); err != nil {
		_ = b.Abort()
		return err
	}
	return b.Send()
}

// batchColumns is the part of a driver.Batch appendTable fills.
type batchColumns interface {
	Column(i int) driver.BatchColumn
	Columns() []column.Interface
}

// appendTable appends every column of t to b, one append per column. The
// array columns, stored flat, go in whole (appendFlat); where that cannot
// be, row by row, which is clickhouse-go's reflection-free path for a
// []string or []float64 row (a slice of them goes through reflection).
// The others go in the wire's format (appendStrings, appendWire), or else
// through Append.
func appendTable(b batchColumns, t *rows.Table, sc *scratch) error {
	cols := b.Columns()
	for i, c := range t.Columns() {
		bc := b.Column(i)
		var done bool
		var err error
		if f, ok := c.(rows.Flat); ok {
			if arr, ok := cols[i].(*column.Array); ok {
				done, err = appendFlat(arr, f, sc)
			}
			if !done && err == nil {
				err = appendRows(bc, c.Values())
			}
		} else {
			if s, ok := c.(rows.Strings); ok {
				done, err = appendStrings(cols[i], s, sc)
			} else {
				done, err = appendWire(cols[i], c.Values(), sc)
			}
			if !done && err == nil {
				err = bc.Append(c.Values())
			}
		}
		if err != nil {
			return fmt.Errorf("column %s: %w", c.Name(), err)
		}
	}
	return nil
}

// appendRows appends the rows of an array column one by one.
func appendRows(bc driver.BatchColumn, values any) error {
	switch v := values.(type) {
	case [][]string:
		for _, row := range v {
			if err := bc.AppendRow(row); err != nil {
				return err
			}
		}
		return nil
	case [][]float64:
		for _, row := range v {
			if err := bc.AppendRow(row); err != nil {
				return err
			}
		}
		return nil
	}
	return bc.Append(values)
}

// appendFlat fills arr, an empty Array(String) or Array(Float64) column,
// with f's rows at once, and reports whether it could. clickhouse-go has
// no way to append the offsets of an array column but row by row (which
// costs an interface, hence an allocation, per row and per item); what it
// has is Decode, which reads a column in the native format of the wire:
// the end of each row (UInt64), then the items. So f is written in that
// format, which is how it is stored already, and arr decodes it.
func appendFlat(arr *column.Array, f rows.Flat, sc *scratch) (bool, error) {
	items, ends := f.Flat()
	if arr.Rows() != 0 || string(arr.Type()) != "Array("+string(arr.Base().Type())+")" {
		return false, nil
	}
	buf := proto.Buffer{Buf: sc.buf[:0]}
	defer func() { sc.buf = buf.Buf }()
	for _, e := range ends {
		buf.PutUInt64(e)
	}
	switch v := items.(type) {
	case rows.Strings:
		if _, ok := arr.Base().(*column.String); !ok {
			return false, nil
		}
		buf.Buf = putStrings(buf.Buf, v)
	case []float64:
		if _, ok := arr.Base().(*column.Float64); !ok {
			return false, nil
		}
		buf.Buf = slices.Grow(buf.Buf, 8*len(v))
		for _, x := range v {
			buf.PutFloat64(x)
		}
	default:
		return false, nil
	}
	if err := arr.Decode(proto.NewReader(bytes.NewReader(buf.Buf)), len(ends)); err != nil {
		return true, err
	}
	return true, nil
}

// decoder turns record values into rows.
type decoder struct {
	codec *codec.Codec
	// directLatency, directBeacon: latency samples and beacons go
	// straight from their bytes into the row (rows.AddLatencyValue,
	// rows.AddBeaconValue) when they can.
	directLatency, directBeacon bool
}

func newDecoder(c *codec.Codec) decoder {
	return decoder{codec: c, directLatency: rows.DirectLatency(c), directBeacon: rows.DirectBeacon(c)}
}

// add decodes the value of a record of input k, read at partition and
// offset, and appends its row to set. Its errors are the codec's, or
// rows.ErrWrongEvent.
func (d decoder) add(ctx context.Context, set *rows.Set, k rows.Kind, value []byte, partition int32, offset int64) error {
	if k == rows.Latency && d.directLatency && set.AddLatencyValue(value, partition, offset) ||
		k == rows.Beacons && d.directBeacon && set.AddBeaconValue(value, partition, offset) {
		return nil
	}
	ev, _, err := d.codec.DecodeTyped(ctx, value)
	if err != nil {
		return err
	}
	return set.Add(k, ev, partition, offset)
}

// reconnect opens a new connection pool (the old one's connections may
// point at a server that restarted).
func (s *Sink) reconnect() {
	conn, err := clickhouse.Open(s.cfg.ClickHouse)
	if err != nil {
		s.log.Warn("reconnect to ClickHouse", logging.Error(err))
		return
	}
	if s.conn != nil {
		_ = s.conn.Close()
	}
	s.conn = conn
}

// prepareClickHouse creates the database, applies the migrations and the
// retention, retrying until ClickHouse answers.
func (s *Sink) prepareClickHouse(ctx context.Context) error {
	for backoff := 200 * time.Millisecond; ; backoff = min(2*backoff, s.cfg.MaxBackoff) {
		err := s.tryPrepare(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ex *clickhouse.Exception
		if errors.As(err, &ex) && ex.Code != 0 && !retryable(ex.Code) {
			return err // a schema or permission error: waiting does not help
		}
		s.ready.SetNotReady(err)
		s.log.Warn("ClickHouse not ready, retrying", zap.Duration("backoff", backoff), logging.Error(err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
	}
}

// retryable reports whether a server error may go away by itself.
func retryable(code int32) bool {
	switch code {
	case 159, 209, 210, 242, 425: // TIMEOUT_EXCEEDED, SOCKET_TIMEOUT, NETWORK_ERROR, TABLE_IS_READ_ONLY, SYSTEM_ERROR
		return true
	}
	return false
}

func (s *Sink) tryPrepare(ctx context.Context) error {
	db, err := chschema.Database(s.cfg.ClickHouse.Auth.Database)
	if err != nil {
		return err
	}
	boot := *s.cfg.ClickHouse
	boot.Auth.Database = "default"
	bc, err := clickhouse.Open(&boot)
	if err != nil {
		return err
	}
	err = bc.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db)
	bc.Close()
	if err != nil {
		return fmt.Errorf("create database %s: %w", db, err)
	}
	conn, err := clickhouse.Open(s.cfg.ClickHouse)
	if err != nil {
		return err
	}
	v, err := chschema.ServerVersion(ctx, conn)
	if err != nil {
		conn.Close()
		return err
	}
	if !s.cfg.SkipMigrations {
		ms, err := chschema.Load(schemas.ClickHouse)
		if err != nil {
			conn.Close()
			return err
		}
		done, err := chschema.Migrate(ctx, conn, ms, 0)
		if err != nil {
			conn.Close()
			return err
		}
		if len(done) > 0 {
			s.log.Info("migrations applied", zap.Ints("versions", done), zap.Stringer("server", v))
		}
		if s.ttl, err = chschema.SetTTL(ctx, conn, v, s.cfg.RetentionDays); err != nil {
			conn.Close()
			return err
		}
	}
	if s.conn != nil {
		s.conn.Close()
	}
	s.conn = conn
	s.keepRetention(ctx)
	return nil
}

// keepRetention drops expired partitions once an hour, where the server
// has no TTL.
func (s *Sink) keepRetention(ctx context.Context) {
	if s.ttl || s.cfg.SkipMigrations || time.Since(s.retention) < time.Hour {
		return
	}
	s.retention = time.Now()
	n, err := chschema.DropExpired(ctx, s.conn, s.cfg.RetentionDays)
	if err != nil {
		s.log.Warn("retention", logging.Error(err))
	}
	if n > 0 {
		s.m.dropParts.Add(float64(n))
		s.log.Info("expired partitions dropped", zap.Int("partitions", n), zap.Int("retention_days", s.cfg.RetentionDays))
	}
}

// prepareKafka ensures the input topics and their dead letter topics, and
// creates the group consumer. The other dead letter topics read belong to
// the services that write them; the consumer picks each up once it exists.
func (s *Sink) prepareKafka(ctx context.Context) error {
	opts, err := kafka.Opts(s.cfg.Kafka, logging.Named(s.log, "kafka"))
	if err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	opts = append(opts,
		kgo.ConsumerGroup(s.cfg.Group),
		kgo.ConsumeTopics(s.topics()...),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(s.cfg.SessionTimeout),
		kgo.FetchMaxBytes(s.cfg.FetchMaxBytes),
		kgo.FetchMaxPartitionBytes(min(s.cfg.FetchMaxBytes, 4<<20)),
		// The sink stores batches of a second: a fetch waits at the broker
		// for a quarter of FetchMaxBytes (or FetchMaxWait) rather than
		// returning each few records as they come, which at a few
		// thousand changes a second made hundreds of fetches a second
		// for the broker to serve beside the services that wait on it.
		kgo.FetchMinBytes(s.cfg.FetchMaxBytes/4),
		kgo.FetchMaxWait(s.cfg.FetchMaxWait),
		// The decompressed batches and their records are reused, not
		// allocated per fetch: a fifth of the sink's garbage at full rate.
		kgo.WithPools(kafka.NewFetchPool(4*int(s.cfg.FetchMaxBytes))),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsRevoked(s.dropped),
		kgo.OnPartitionsLost(s.dropped),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) { s.blocked.Store(true) }),
	)
	if s.cl, err = kgo.NewClient(opts...); err != nil {
		return fmt.Errorf("sink: kafka client: %w", err)
	}
	s.dlq = kafka.NewDLQ(s.cl, kafka.DLQOptions{Component: "metrics-sink/decode"})
	if s.cfg.EnsureTopics {
		var specs []kafka.TopicSpec
		for k, t := range s.cfg.Topics {
			if t == "" {
				continue
			}
			role := topicRoles[k]
			specs = append(specs, kafka.TopicSpecFor(s.cfg.Pipeline, role, t), kafka.TopicSpecFor(s.cfg.Pipeline, kafka.DLQTopic(role), kafka.DLQTopic(t)))
		}
		drift, err := kafka.EnsureTopics(ctx, kadm.NewClient(s.cl), specs...)
		if err != nil {
			return fmt.Errorf("sink: topics: %w", err)
		}
		for _, d := range drift {
			s.log.Warn("topic differs from the pipeline", zap.String("drift", d.String()))
		}
	}
	return nil
}

// topicRoles are the pipeline's names of the inputs' topics.
var topicRoles = map[rows.Kind]string{
	rows.Latency: "pipeline.latency", rows.Purges: "edge.purges", rows.Beacons: "rum.beacons", rows.Deliveries: "content.deliveries",
}

// dropped forgets what is known of partitions another member may write.
func (s *Sink) dropped(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, ps := range lost {
		for _, p := range ps {
			delete(s.clean, position{t, p})
			delete(s.ahead, position{t, p})
		}
	}
}

// Close closes the clients. It may be called more than once.
func (s *Sink) Close(context.Context) error {
	s.closeOnce.Do(func() {
		if s.cl != nil {
			s.cl.AllowRebalance() // or leaving the group waits for it
			s.cl.Close()
		}
		if s.conn != nil {
			_ = s.conn.Close()
		}
	})
	return nil
}
