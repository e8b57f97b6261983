package scenario

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
)

// Observer reads topics of the stack's broker beside the services, from
// their end at the time it started, and hands every record to a function
// as it arrives.
type Observer struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// ObserveOptions configure Observe.
type ObserveOptions struct {
	// ReadCommitted reads only committed transactions (the personalizer's
	// deliveries are written in transactions).
	ReadCommitted bool
	// Raw lists topics whose records are not decoded (fn gets a nil event).
	Raw []string
}

// Observe starts reading topics from their end and calls fn, from one
// goroutine, with the time each fetch arrived, the record and its decoded
// event (nil for a Raw topic or a record that does not decode). It returns
// once the consumer has its partitions, so nothing produced after it
// returns is missed.
func (e *Env) Observe(ctx context.Context, topics []string, o ObserveOptions, fn func(at time.Time, r *kgo.Record, ev events.Event)) (*Observer, error) {
	opts := []kgo.Opt{kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.FetchMaxWait(50 * time.Millisecond)}
	if o.ReadCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := e.Kafka(opts...)
	if err != nil {
		return nil, err
	}
	cd, err := codec.New()
	if err != nil {
		cl.Close()
		return nil, err
	}
	raw := map[string]bool{}
	for _, t := range o.Raw {
		raw[t] = true
	}
	octx, cancel := context.WithCancel(ctx)
	ob := &Observer{cl: cl, cancel: cancel, done: make(chan struct{})}
	// One poll joins the partitions at their end before anything is
	// written.
	pctx, pcancel := context.WithTimeout(octx, 2*time.Second)
	cl.PollFetches(pctx)
	pcancel()
	go func() {
		defer close(ob.done)
		for octx.Err() == nil {
			fs := cl.PollFetches(octx)
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				var ev events.Event
				if !raw[r.Topic] {
					ev, _, _ = cd.DecodeTyped(octx, r.Value)
				}
				fn(now, r, ev)
			})
		}
	}()
	return ob, nil
}

// Stop stops reading and closes the client; fn is not called after it
// returns. Safe to call twice.
func (o *Observer) Stop() {
	o.once.Do(func() {
		o.cancel()
		<-o.done
		o.cl.Close()
	})
}

// Parallel runs fn(i) for i in [0, n) with at most par at a time, stops
// starting new ones after the first error, and returns it (or ctx's
// error).
func Parallel(ctx context.Context, n, par int, fn func(i int) error) error {
	sem := make(chan struct{}, par)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for i := range n {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed || ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// Paced calls write with the rows due every 10 ms (a transaction each, as
// an application commits) so that rate rows a second are written for d,
// and returns the first error of write or nil when d is over.
func Paced(ctx context.Context, rate float64, d time.Duration, write func(rows int) error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	const tick = 10 * time.Millisecond
	p := newPacer(tick, d)
	var carry float64
	for {
		n := p.Take(ctx)
		if n == 0 {
			return nil
		}
		carry += rate * tick.Seconds() * float64(n)
		rows := int(carry)
		carry -= float64(rows)
		if rows == 0 {
			continue
		}
		if err := write(rows); err != nil && ctx.Err() == nil {
			return err
		}
	}
}
