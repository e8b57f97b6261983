package kafka

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

func headerMap(t *testing.T, hs []kgo.RecordHeader) map[string]string {
	t.Helper()
	m := make(map[string]string, len(hs))
	for _, h := range hs {
		if _, dup := m[h.Key]; dup {
			t.Errorf("header %q appears twice", h.Key)
		}
		m[h.Key] = string(h.Value)
	}
	return m
}

func TestDLQKeepsRecordAndAddsHeaders(t *testing.T) {
	ctx := testCtx(t)
	spec := TopicSpec{Name: topicName(t, ""), Partitions: 3}
	if _, err := EnsureTopics(ctx, newTestAdmin(t), spec, spec.DLQ()); err != nil {
		t.Fatalf("EnsureTopics: %v", err)
	}
	cl := newTestClient(t)

	// The original record, as a consumer would see it: read back from Kafka,
	// so that it has a real partition and offset.
	ts := time.Date(2026, 3, 1, 12, 30, 15, 123_000_000, time.UTC)
	orig := &kgo.Record{
		Topic:     spec.Name,
		Key:       []byte("content-42"),
		Value:     []byte{0xC3, 0x01, 0xFF, 0x00, 'b', 'a', 'd'},
		Timestamp: ts,
		Headers: []kgo.RecordHeader{
			{Key: "traceparent", Value: []byte("00-abc-def-01")},
			{Key: HeaderError, Value: []byte("an older failure")}, // from an earlier trip through a DLQ
		},
	}
	for range 3 { // put the record at a non-zero offset
		if err := cl.ProduceSync(ctx, orig).FirstErr(); err != nil {
			t.Fatalf("produce original: %v", err)
		}
	}
	read := consume(t, spec.Name, 3)[2]

	dlq := NewDLQ(cl, DLQOptions{Component: "invalidator/decode"})
	before := time.Now().UTC()
	reason := errors.New("decode content change: unknown fingerprint c30100ff")
	if err := dlq.Send(ctx, read, reason); err != nil {
		t.Fatalf("Send: %v", err)
	}
	after := time.Now().UTC()

	dead := consume(t, DLQTopic(spec.Name), 1)[0]
	if dead.Topic != spec.Name+".dlq" {
		t.Errorf("DLQ topic = %q", dead.Topic)
	}
	if string(dead.Key) != string(orig.Key) || string(dead.Value) != string(orig.Value) {
		t.Errorf("DLQ key/value = %q/%x, want %q/%x", dead.Key, dead.Value, orig.Key, orig.Value)
	}
	if !dead.Timestamp.Equal(ts) {
		t.Errorf("DLQ timestamp = %v, want the original %v", dead.Timestamp, ts)
	}
	h := headerMap(t, dead.Headers)
	want := map[string]string{
		"traceparent":   "00-abc-def-01",
		HeaderError:     reason.Error(),
		HeaderTopic:     spec.Name,
		HeaderPartition: strconv.Itoa(int(read.Partition)),
		HeaderOffset:    strconv.FormatInt(read.Offset, 10),
		HeaderComponent: "invalidator/decode",
	}
	if read.Offset != 2 {
		t.Fatalf("original offset = %d, want 2", read.Offset)
	}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("header %s = %q, want %q", k, h[k], v)
		}
	}
	sent, err := time.Parse(time.RFC3339Nano, h[HeaderTime])
	if err != nil {
		t.Fatalf("header %s = %q: %v", HeaderTime, h[HeaderTime], err)
	}
	if sent.Before(before) || sent.After(after) {
		t.Errorf("header %s = %v, not between %v and %v", HeaderTime, sent, before, after)
	}
	if len(h) != len(want)+1 {
		t.Errorf("headers = %v, want exactly %d", h, len(want)+1)
	}
}

func TestDLQSendErrors(t *testing.T) {
	cl := newTestClient(t)
	missing := topicName(t, "")
	tests := []struct {
		name    string
		rec     *kgo.Record
		wantErr string
	}{
		{name: "nil record", rec: nil, wantErr: "nil record"},
		{name: "no topic", rec: &kgo.Record{Value: []byte("x")}, wantErr: "no topic"},
		{name: "DLQ topic missing", rec: &kgo.Record{Topic: missing, Partition: 1, Offset: 7}, wantErr: missing + ".dlq"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := NewDLQ(cl, DLQOptions{}).Send(ctx, tt.rec, errors.New("bad"))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Send = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDLQRecordOptions(t *testing.T) {
	d := NewDLQ(nil, DLQOptions{Topic: func(s string) string { return "dead." + s }, MaxErrorBytes: 10})
	rec := d.Record(&kgo.Record{Topic: "content.changes"}, errors.New(strings.Repeat("é", 20)), time.Unix(0, 0))
	if rec.Topic != "dead.content.changes" {
		t.Errorf("topic = %q, want the custom mapping", rec.Topic)
	}
	h := map[string]string{}
	for _, hd := range rec.Headers {
		h[hd.Key] = string(hd.Value)
	}
	if e := h[HeaderError]; len(e) > 10 || !utf8.ValidString(e) || !strings.HasSuffix(e, "…") {
		t.Errorf("error header = %q, want at most 10 bytes of valid UTF-8 ending in …", e)
	}
	if _, ok := h[HeaderComponent]; ok {
		t.Errorf("component header set without a component")
	}
	if got := NewDLQ(nil, DLQOptions{}).Record(&kgo.Record{Topic: "t"}, nil, time.Unix(0, 0)); string(got.Headers[0].Value) != "unknown error" {
		t.Errorf("nil reason header = %q", got.Headers[0].Value)
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"abcdefghijkl", 10, "abcdefg…"},
		{"ééééé", 6, "é…"},
		{"abc", 1, "…"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := truncate(tt.in, tt.max); got != tt.want {
				t.Fatalf("truncate(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
		})
	}
}

// FuzzTruncate checks that error text of any shape fits the header bound and
// stays valid UTF-8.
func FuzzTruncate(f *testing.F) {
	f.Add("decode: unexpected EOF", 8)
	f.Add("ééééé", 6)
	f.Add("", 0)
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 4 || max > 1<<16 {
			t.Skip()
		}
		got := truncate(s, max)
		if len(got) > max {
			t.Fatalf("truncate(%q, %d) = %q: %d bytes", s, max, got, len(got))
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("truncate(%q, %d) = %q: invalid UTF-8", s, max, got)
		}
		if len(s) <= max && got != s {
			t.Fatalf("truncate changed a short string: %q -> %q", s, got)
		}
	})
}
