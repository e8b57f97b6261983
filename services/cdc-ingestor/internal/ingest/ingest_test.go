package ingest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"

	"github.com/freshet/freshet/pkg/codec"
	"github.com/freshet/freshet/pkg/events"
	"github.com/freshet/freshet/pkg/kafka"
	"github.com/freshet/freshet/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m, testenv.NeedKafka) }

const goodKey = "dev-key-0123456789abcdef"

type env struct {
	t     *testing.T
	srv   *Server
	http  *httptest.Server
	topic string
	kt    testenv.KafkaTest
	codec *codec.Codec
}

func newEnv(t *testing.T, edit func(*Options)) *env {
	kt := testenv.Kafka(t)
	cl, err := kafka.NewClient(kafka.Config{Brokers: kt.Seeds}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	topic := kt.Topic("content.changes")
	if _, err := kafka.EnsureTopics(context.Background(), kadm.NewClient(cl), kafka.TopicSpec{Name: topic, Partitions: 3}); err != nil {
		t.Fatal(err)
	}
	c, err := codec.New()
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Addr: "127.0.0.1:0", Keys: []APIKey{{Name: "app", Key: goodKey}}, Topic: topic, Client: cl, Codec: c, MaxBody: 4096}
	if edit != nil {
		edit(&opts)
	}
	s, err := New(opts, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return &env{t: t, srv: s, http: hs, topic: topic, kt: kt, codec: c}
}

func (e *env) post(key, body string) (int, apiError, map[string]any) {
	return e.postType(key, "application/json", body)
}

func (e *env) postType(key, contentType, body string) (int, apiError, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.http.URL+Path, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Fatalf("answer Content-Type %q, want application/json", ct)
	}
	var raw map[string]any
	var ae apiError
	dec := json.NewDecoder(resp.Body)
	if err := dec.Decode(&raw); err != nil {
		e.t.Fatalf("answer is not JSON: %v", err)
	}
	b, _ := json.Marshal(raw)
	_ = json.Unmarshal(b, &ae)
	return resp.StatusCode, ae, raw
}

// onTopic reads the topic until a record keyed marker and returns the
// content changes before it.
func (e *env) onTopic(marker string) []*events.ContentChange {
	e.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kt.Seeds...), kgo.ConsumeTopics(e.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*events.ContentChange
	found := false
	for !found {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			e.t.Fatalf("marker %s not found on the topic", marker)
		}
		fs.EachRecord(func(r *kgo.Record) {
			ev, _, err := e.codec.DecodeEvent(ctx, r.Value)
			if err != nil {
				e.t.Fatal(err)
			}
			c := ev.(*events.ContentChange)
			if c.ContentID == marker {
				found = true
				return
			}
			out = append(out, c)
		})
	}
	return out
}

func TestValidBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	code, _, raw := e.post(goodKey, `[{"op":"create","content_id":"1","title":"One","tags":["go"]},{"op":"update","content_id":"2","title":"Two","event_id":"req-2"}]`)
	if code != http.StatusAccepted || raw["accepted"].(float64) != 2 {
		t.Fatalf("valid batch: %d %v; want 202 accepted 2", code, raw)
	}
	e.post(goodKey, `{"op":"create","content_id":"marker"}`)
	got := e.onTopic("marker")
	if len(got) != 2 || got[0].ContentID == got[1].ContentID {
		t.Fatalf("topic holds %d events, want 2", len(got))
	}
	for _, c := range got {
		if c.Source.Origin != events.OriginHTTP || c.Source.DB != "app" {
			t.Fatalf("source = %+v; want origin http, db = the key's name", c.Source)
		}
		if c.ContentID == "2" && c.EventID != events.ID("http", "app", "req-2") {
			t.Fatalf("event id %s not derived from the idempotency key", c.EventID)
		}
	}
	ids := raw["event_ids"].([]any)
	if len(ids) != 2 || ids[1] != events.ID("http", "app", "req-2") {
		t.Fatalf("event_ids = %v", ids)
	}
}

func TestRejections(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.Rate, o.Burst = 1, 3 })
	for _, tc := range []struct {
		name, key, body string
		code            int
		want            string
	}{
		{"missing key", goodKey, `{"op":"create","title":"no id"}`, 400, "content_id"},
		{"wrong type", goodKey, `{"op":"create","content_id":"1","version":"three"}`, 400, "version"},
		{"unknown field", goodKey, `{"op":"create","content_id":"1","colour":"red"}`, 400, "colour"},
		{"one bad event rejects the batch", goodKey, `[{"op":"create","content_id":"1"},{"op":"create"}]`, 400, "content_id"},
		{"oversized body", goodKey, `{"op":"create","content_id":"1","body":"` + strings.Repeat("x", 5000) + `"}`, 413, "larger than 4096"},
		{"bad API key", "not-the-key-at-all-000", `{"op":"create","content_id":"1"}`, 401, "unknown API key"},
		{"missing API key", "", `{"op":"create","content_id":"1"}`, 401, "missing API key"},
		{"not JSON", goodKey, `hello`, 400, "JSON"},
		{"over the rate", goodKey, `[{"op":"create","content_id":"a"},{"op":"create","content_id":"b"},{"op":"create","content_id":"c"},{"op":"create","content_id":"d"}]`, 429, "rate limit"},
	} {
		code, ae, _ := e.post(tc.key, tc.body)
		msg := ae.Error
		for _, d := range ae.Details {
			msg += " " + d.Error
		}
		if code != tc.code || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %d %q; want %d naming %q", tc.name, code, msg, tc.code, tc.want)
		}
	}
	if code, ae, _ := e.postType(goodKey, "multipart/form-data; boundary=x", `{"op":"create","content_id":"1"}`); code != 415 || !strings.Contains(ae.Error, "Content-Type") {
		t.Errorf("multipart body: %d %q; want 415 naming Content-Type", code, ae.Error)
	}
	// curl -d sends application/x-www-form-urlencoded: the JSON body is read.
	if code, _, _ := e.postType(goodKey, "application/x-www-form-urlencoded", `{"op":"create","content_id":"marker"}`); code != 202 {
		t.Fatalf("marker: %d", code)
	}
	if got := e.onTopic("marker"); len(got) != 0 {
		t.Fatalf("%d events of rejected requests reached Kafka: %+v", len(got), got[0])
	}
}

func TestParseKeys(t *testing.T) {
	keys, err := ParseKeys(" app:" + goodKey + ", ops:" + strings.Repeat("k", 16))
	if err != nil || len(keys) != 2 || keys[1].Name != "ops" {
		t.Fatalf("ParseKeys = %v, %v", keys, err)
	}
	for _, bad := range []string{"nokey", "app:short", "a b:" + goodKey, "x:" + goodKey + ",x:" + goodKey} {
		if _, err := ParseKeys(bad); err == nil {
			t.Errorf("ParseKeys(%q) accepted", bad)
		} else if strings.Contains(err.Error(), goodKey) {
			t.Errorf("ParseKeys error reveals the key: %v", err)
		}
	}
}

// FuzzSplit: the body splitter never panics and returns only objects.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[{"a":1},{"b":2}]`, `[]`, ` [ {} ] `, `[1]`, `"x"`, `[{"a":1}`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		objs, err := Split(body, 10)
		if err != nil {
			return
		}
		if len(objs) == 0 || len(objs) > 10 {
			t.Fatalf("%d objects", len(objs))
		}
		for _, o := range objs {
			var v any
			if json.Valid(o) {
				_ = json.Unmarshal(o, &v)
			} else if len(objs) > 1 {
				t.Fatalf("invalid JSON element %q in an array that parsed", o)
			}
		}
	})
}

// An event the body limit lets through but Kafka does not accept gets 413.
func TestEventLargerThanKafkaAccepts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.MaxBody = 4 << 20 })
	code, ae, _ := e.post(goodKey, `{"op":"create","content_id":"big","body":"`+strings.Repeat("x", 1_500_000)+`"}`)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(ae.Error, "larger than Kafka accepts") {
		t.Fatalf("%d %q; want 413", code, ae.Error)
	}
}

func TestRequireKey(t *testing.T) {
	h := RequireKey([]APIKey{{Name: "ops", Key: goodKey}}, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	for key, want := range map[string]int{goodKey: 202, "": 401, "wrong-key-0000000000": 401} {
		req := httptest.NewRequest(http.MethodPost, "/snapshot?table=content", nil)
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("key %q: %d, want %d", key, rec.Code, want)
		}
	}
}
