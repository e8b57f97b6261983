package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/r3labs/sse/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/config"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/pipeline"
	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/services/sse-gateway/internal/auth"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.NeedKafka) }

const (
	testSecret  = "test-secret-test-secret-test-secret-0123"
	testHashKey = "rum-hash-key-for-tests"
)

// env is one test's broker, topics and codec.
type env struct {
	t          *testing.T
	kt         testenv.KafkaTest
	deliveries string
	beacons    string
	codec      *codec.Codec
	producer   *kgo.Client
	pipe       *pipeline.Pipeline
}

func newEnv(t *testing.T) *env {
	t.Helper()
	kt := testenv.Kafka(t)
	c, err := codec.New()
	if err != nil {
		t.Fatal(err)
	}
	p := pipeline.Default()
	topic := p.Topics[pipeline.TopicContentDeliveries]
	topic.Partitions = 4 // few partitions: resumes read a few, and tests start fast
	p.Topics[pipeline.TopicContentDeliveries] = topic
	cl, err := kgo.NewClient(kgo.SeedBrokers(kt.Seeds...), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &env{t: t, kt: kt, deliveries: kt.Topic(pipeline.TopicContentDeliveries), beacons: kt.Topic(pipeline.TopicRUMBeacons), codec: c, producer: cl, pipe: p}
}

// config returns a gateway config for the test: defaults, the test's
// broker, a free port, and short timers.
func (e *env) config() Config {
	e.t.Helper()
	var cfg Config
	err := config.Load(&cfg, config.WithLookup(config.MapLookup(map[string]string{
		"FRESHET_KAFKA_BROKERS":        strings.Join(e.kt.Seeds, ","),
		"FRESHET_GATEWAY_ADDR":         "127.0.0.1:0",
		"FRESHET_AUTH_HS256_SECRET":    testSecret,
		"FRESHET_RUM_HASH_KEY":         testHashKey,
		"FRESHET_GATEWAY_RETRY":        "100ms",
		"FRESHET_SHUTDOWN_TIMEOUT":     "5s",
		"FRESHET_GATEWAY_HEARTBEAT":    "1s",
		"FRESHET_GATEWAY_CONNECT_RATE": "0",
	})))
	if err != nil {
		e.t.Fatal(err)
	}
	return cfg
}

// gw is a running gateway of a test.
type gw struct {
	*Gateway
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned, with err set
	err    error
}

// start runs a gateway until the test ends (or stop/kill), and waits until
// it serves streams.
func (e *env) start(cfg Config) *gw {
	e.t.Helper()
	g, err := New(cfg, zaptest.NewLogger(e.t).Named(e.t.Name()), WithTopics(e.deliveries, e.beacons), WithPipeline(e.pipe))
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &gw{Gateway: g, cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = g.Run(ctx)
		close(r.done)
	}()
	e.t.Cleanup(func() { r.stop(e.t) })
	deadline := time.Now().Add(20 * time.Second)
	for g.Ready() != nil {
		if time.Now().After(deadline) {
			e.t.Fatalf("gateway not ready: %v", g.Ready())
		}
		select {
		case <-r.done:
			e.t.Fatalf("gateway stopped: %v", r.err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return r
}

// stop shuts the gateway down gracefully and checks Run returned nil.
func (r *gw) stop(t *testing.T) {
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("Run: %v", r.err)
			r.err = nil
		}
	case <-time.After(15 * time.Second):
		t.Error("Run did not return within 15s of cancellation")
	}
	r.Close(context.Background())
}

func (e *env) token(user string, ttl time.Duration, channels ...string) string {
	e.t.Helper()
	tok, err := auth.Mint(auth.Config{HS256Secret: config.NewSecret(testSecret), Issuer: "freshet", Audience: "freshet-sse"}, user, channels, ttl)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// mkDelivery makes a Delivery for a user ("u:x") or a channel ("c:x").
func mkDelivery(to, contentID string, n int) *events.Delivery {
	now := time.Now().UTC().Truncate(time.Microsecond)
	d := &events.Delivery{
		EventID:       events.ID("test", to, contentID, fmt.Sprint(n)),
		ChangeEventID: events.ID("change", contentID, fmt.Sprint(n)),
		Source:        events.Source{Origin: events.OriginProducer, DB: "test", Table: "content", CommitTime: now},
		Trace:         events.Trace{CommittedAt: now, ProducedAt: now},
		Op:            events.OpUpdate,
		Content:       events.ContentProjection{ID: contentID, Title: fmt.Sprintf("%s v%d", contentID, n), Version: int64(n)},
		Score:         1.5,
	}
	if strings.HasPrefix(to, "c:") {
		d.Channel = to[2:]
	} else {
		d.UserID = strings.TrimPrefix(to, "u:")
	}
	return d
}

// produce writes deliveries keyed as the personalizer keys them, in order,
// and returns their event ids.
func (e *env) produce(ds ...*events.Delivery) []string {
	e.t.Helper()
	var ids []string
	for _, d := range ds {
		v, err := e.codec.EncodeEvent(context.Background(), e.deliveries, d)
		if err != nil {
			e.t.Fatal(err)
		}
		key := d.UserID
		if d.Channel != "" {
			key = "channel:" + d.Channel
		}
		if err := e.producer.ProduceSync(context.Background(), &kgo.Record{Topic: e.deliveries, Key: []byte(key), Value: v}).FirstErr(); err != nil {
			e.t.Fatal(err)
		}
		ids = append(ids, d.EventID)
	}
	return ids
}

// received is what one SSE client got.
type received struct {
	Type    string
	ID      string
	Data    string
	EventID string // event_id of a delivery
	At      time.Time
}

// sub is an r3labs/sse/v2 client subscribed in the background.
type sub struct {
	client *sse.Client
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	got    []received
	notify chan struct{}
}

func (e *env) subscribe(g *Gateway, url string, client *sse.Client) *sub {
	if client == nil {
		client = sse.NewClient(url)
		client.ReconnectStrategy = &noRetry{}
	}
	client.URL = url
	ctx, cancel := context.WithCancel(context.Background())
	s := &sub{client: client, cancel: cancel, done: make(chan error, 1), notify: make(chan struct{}, 1)}
	go func() {
		s.done <- client.SubscribeRawWithContext(ctx, func(msg *sse.Event) {
			r := received{Type: string(msg.Event), ID: string(msg.ID), Data: string(msg.Data), At: time.Now()}
			if r.Type == "delivery" {
				var d struct {
					EventID string `json:"event_id"`
				}
				json.Unmarshal(msg.Data, &d)
				r.EventID = d.EventID
			}
			s.mu.Lock()
			s.got = append(s.got, r)
			s.mu.Unlock()
			select {
			case s.notify <- struct{}{}:
			default:
			}
		})
	}()
	e.t.Cleanup(s.close)
	return s
}

func (s *sub) close() {
	s.cancel()
	<-s.done
	s.done <- nil // close is safe twice
}

// events returns a copy of what the client got.
func (s *sub) events() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.got...)
}

// deliveries returns the event ids of the deliveries received.
func (s *sub) deliveries() []string {
	var ids []string
	for _, r := range s.events() {
		if r.Type == "delivery" {
			ids = append(ids, r.EventID)
		}
	}
	return ids
}

// waitFor waits until cond holds on what the client got.
func (s *sub) waitFor(t *testing.T, what string, cond func([]received) bool) []received {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		got := s.events()
		if cond(got) {
			return got
		}
		select {
		case <-s.notify:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s; got %d events: %+v", what, len(got), tail(got))
		}
	}
}

func tail(r []received) []received {
	if len(r) > 5 {
		r = r[len(r)-5:]
	}
	out := append([]received(nil), r...)
	for i := range out {
		if len(out[i].Data) > 200 {
			out[i].Data = out[i].Data[:200] + "..."
		}
	}
	return out
}

func countType(r []received, typ string) int {
	n := 0
	for _, x := range r {
		if x.Type == typ {
			n++
		}
	}
	return n
}

// noRetry makes the r3labs client return instead of reconnecting, so that
// a test decides when and where to resume.
type noRetry struct{}

func (*noRetry) NextBackOff() time.Duration { return -1 }
func (*noRetry) Reset()                     {}

func streamURL(g *Gateway, token string, channels ...string) string {
	u := g.URL() + "/v1/stream?token=" + token
	if len(channels) > 0 {
		u += "&channels=" + strings.Join(channels, ",")
	}
	return u
}

// rawGet does a GET and returns the status and JSON error body.
func rawGet(t *testing.T, url string, hdr http.Header) (int, map[string]string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := map[string]string{}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("error body is not JSON: %v", err)
		}
	} else if resp.StatusCode == 200 {
		// a stream: read its first event to be sure it opened
		line, _ := bufio.NewReader(resp.Body).ReadString('\n')
		body["first_line"] = line
	}
	return resp.StatusCode, body, resp.Header
}
