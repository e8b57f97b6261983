package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/logging"
)

// consume reads every partition of the deliveries topic (no consumer group:
// each replica reads everything and serves its own connections) from where
// start said, and hands each record to the hub. It reads committed records
// only, and keeps control records so that its position passes transaction
// markers. A record that does not decode goes to the dead letter topic.
func (g *Gateway) consume(ctx context.Context, h *hub) error {
	offsets := map[int32]kgo.Offset{}
	for p, ps := range h.parts {
		offsets[int32(p)] = kgo.NewOffset().At(ps.next)
	}
	opts := append(append([]kgo.Opt(nil), g.kopts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{g.topic: offsets}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(250*time.Millisecond),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	log := logging.Named(g.log, "consumer")
	ready := false
	for {
		if !ready && h.ready() {
			ready = true
			g.SetReady()
			log.Info("caught up: serving streams", logging.Topic(g.topic))
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(topic string, p int32, err error) {
			log.Warn("fetch failed", logging.Topic(topic), logging.Partition(p), logging.Error(err))
		})
		var evs []*event
		var skips []skip
		fs.EachRecord(func(r *kgo.Record) {
			if r.Attrs.IsControl() {
				evs, skips = append(evs, nil), append(skips, skip{r.Partition, r.Offset})
				return
			}
			ev, err := g.toEvent(ctx, r)
			if err != nil {
				g.metrics.decodeErrors.Inc()
				if derr := g.dlq.Send(ctx, r, err); derr != nil {
					log.Error("record not decoded, and not dead-lettered", logging.Record(r), logging.Error(err), zap.NamedError("dlq_error", derr))
				} else {
					log.Warn("record not decoded: sent to the dead letter topic", logging.Record(r), logging.Error(err))
				}
				evs, skips = append(evs, nil), append(skips, skip{r.Partition, r.Offset})
				return
			}
			g.metrics.consumed.Inc()
			evs = append(evs, ev)
			if len(evs) >= publishChunk {
				h.publishBatch(evs, skips)
				evs, skips = evs[:0], skips[:0]
			}
		})
		if len(evs) > 0 {
			h.publishBatch(evs, skips)
		}
	}
}

// publishChunk is how many records the consumer hands to the hub at once:
// each stream is woken once per chunk and writes its part with one syscall
// (many deliveries to one channel), while the first record of a large fetch
// does not wait for the decoding of the whole fetch, nor wake every stream
// at the same instant (one delivery per user).
const publishChunk = 32

// delivery is what a stream's "delivery" event carries, as JSON.
type delivery struct {
	EventID     string           `json:"event_id"`
	Op          string           `json:"op"`
	Channel     string           `json:"channel,omitempty"`
	Content     deliveryContent  `json:"content"`
	Score       float64          `json:"score,omitempty"`
	Reasons     []deliveryReason `json:"reasons,omitempty"`
	CommittedAt int64            `json:"committed_at,omitempty"` // ms since the epoch
	Deadline    int64            `json:"deadline,omitempty"`     // ms since the epoch
}

type deliveryContent struct {
	ID          string   `json:"id"`
	Kind        string   `json:"kind,omitempty"`
	Title       string   `json:"title,omitempty"`
	Summary     string   `json:"summary,omitempty"`
	URL         string   `json:"url,omitempty"`
	Locale      string   `json:"locale,omitempty"`
	Section     string   `json:"section,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	PublishedAt int64    `json:"published_at,omitempty"`
	Version     int64    `json:"version,omitempty"`
}

type deliveryReason struct {
	Rule  string  `json:"rule"`
	Match string  `json:"match,omitempty"`
	Score float64 `json:"score,omitempty"`
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// toEvent decodes a Delivery record and renders its JSON once for every
// stream it goes to.
func (g *Gateway) toEvent(ctx context.Context, r *kgo.Record) (*event, error) {
	ev, _, err := g.codec.DecodeTyped(ctx, r.Value)
	if err != nil {
		if !codec.IsDataError(err) {
			// A registry outage is not the record's fault, but the stream
			// cannot wait for it either: the record is dead-lettered
			// with the reason and can be replayed from there.
			return nil, fmt.Errorf("decode (transient): %w", err)
		}
		return nil, err
	}
	d, ok := ev.(*events.Delivery)
	if !ok {
		return nil, fmt.Errorf("want a %s, got a %s", events.DeliverySchema, ev.Schema())
	}
	var key string
	switch {
	case d.UserID != "" && d.Channel == "":
		key = userKey(d.UserID)
	case d.Channel != "" && d.UserID == "":
		key = channelKey(d.Channel)
	default:
		return nil, errors.New("a delivery needs exactly one of user_id and channel")
	}
	out := delivery{
		EventID: d.EventID, Op: string(d.Op), Channel: d.Channel, Score: d.Score,
		CommittedAt: millis(d.Trace.CommittedAt), Deadline: millis(d.Deadline),
		Content: deliveryContent{
			ID: d.Content.ID, Kind: d.Content.Kind, Title: d.Content.Title, Summary: d.Content.Summary,
			URL: d.Content.URLPath, Locale: d.Content.Locale, Section: d.Content.Section, Tags: d.Content.Tags,
			PublishedAt: millis(d.Content.PublishedAt), Version: d.Content.Version,
		},
	}
	if out.CommittedAt == 0 {
		out.CommittedAt = millis(d.Source.CommitTime)
	}
	for _, rs := range d.Reasons {
		out.Reasons = append(out.Reasons, deliveryReason{Rule: rs.Rule, Match: rs.Match, Score: rs.Score})
	}
	data, err := json.Marshal(out) // one line: JSON escapes newlines
	if err != nil {
		return nil, fmt.Errorf("render delivery %s: %w", d.EventID, err)
	}
	return &event{
		partition: r.Partition, offset: r.Offset, key: key, contentID: d.Content.ID, eventID: d.EventID,
		deadline: d.Deadline, committed: time.UnixMilli(out.CommittedAt), received: time.Now(), data: data,
	}, nil
}
