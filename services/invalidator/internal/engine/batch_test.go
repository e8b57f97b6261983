package engine

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/pipeline"
)

// req is what a test compares of a request.
type req struct {
	keys, urls, prefixes, keyURLs []string
	soft                          bool
	units                         []int
}

func views(b *batch) []req {
	var out []req
	for _, r := range b.reqs {
		out = append(out, req{r.req.Keys, r.req.URLs, r.req.Prefixes, r.urls, r.req.Soft, r.units})
	}
	return out
}

// newBatch deduplicates what the units purge, splits it into requests of
// one kind within the target's limits, and knows which units each request
// serves (those a failure sends to the DLQ).
func TestNewBatchSplitsWithinLimits(t *testing.T) {
	tg := &pipeline.Target{Type: pipeline.TargetVarnish, MaxKeys: 2, MaxURLs: 1, Soft: true}
	now := time.Now()
	units := []*unit{
		{purge: pipeline.Purge{Keys: []string{"a", "b"}, URLs: []string{"/x"}}, queuedAt: now},
		{purge: pipeline.Purge{Keys: []string{"b", "c"}, Prefixes: []string{"/p/"}}, queuedAt: now.Add(-time.Second)},
		{purge: pipeline.Purge{Keys: []string{"a"}, URLs: []string{"/x"}}, queuedAt: now},
	}
	b := newBatch(tg, units)
	got := views(b)
	want := []req{
		{keys: []string{"a", "b"}, soft: true, units: []int{0, 2, 1}},
		{keys: []string{"c"}, soft: true, units: []int{1}},
		{urls: []string{"/x"}, units: []int{0, 2}},
		{prefixes: []string{"/p/"}, units: []int{1}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("requests\n%+v\nwant\n%+v", got, want)
	}
	if !b.oldest.Equal(now.Add(-time.Second)) {
		t.Errorf("oldest = %v", b.oldest)
	}
	if u := union([]pipeline.Purge{units[0].purge, units[1].purge, units[2].purge}); !reflect.DeepEqual(u.Keys, []string{"a", "b", "c"}) || !reflect.DeepEqual(u.URLs, []string{"/x"}) {
		t.Errorf("union = %+v", u)
	}
}

// With url_keys, a varnish target's urls go as "url:" keys, many a request
// (within max_keys), in requests of their own that know their urls (the
// audit lists them as urls); a url holding whitespace keeps its own PURGE.
func TestNewBatchURLKeys(t *testing.T) {
	tg := &pipeline.Target{Type: pipeline.TargetVarnish, MaxKeys: 2, MaxURLs: 1, URLKeys: true, Soft: true}
	now := time.Now()
	units := []*unit{
		{purge: pipeline.Purge{Keys: []string{"a"}, URLs: []string{"/x", "/y"}}, queuedAt: now},
		{purge: pipeline.Purge{URLs: []string{"/y", "/z", "/with space"}}, queuedAt: now},
	}
	b := newBatch(tg, units)
	got := views(b)
	want := []req{
		{keys: []string{"a"}, soft: true, units: []int{0}},
		{keys: []string{"url:/x", "url:/y"}, keyURLs: []string{"/x", "/y"}, soft: true, units: []int{0, 1}},
		{keys: []string{"url:/z"}, keyURLs: []string{"/z"}, soft: true, units: []int{1}},
		{urls: []string{"/with space"}, units: []int{1}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("requests\n%+v\nwant\n%+v", got, want)
	}
}

// The breaker opens after its threshold of failures, makes requests wait
// for the cooldown, lets one probe through, and closes on its success or
// opens again on its failure.
func TestBreaker(t *testing.T) {
	var states []int
	b := &breaker{threshold: 2, cooldown: time.Second, onChange: func(s int) { states = append(states, s) }}
	t0 := time.Now()
	for range 2 {
		if ok, _ := b.allow(t0); !ok {
			t.Fatal("closed breaker refused")
		}
		b.record(false, t0)
	}
	if ok, wait := b.allow(t0.Add(100 * time.Millisecond)); ok || wait != 900*time.Millisecond {
		t.Fatalf("open breaker: %v, wait %s", ok, wait)
	}
	if ok, _ := b.allow(t0.Add(time.Second)); !ok {
		t.Fatal("no probe after the cooldown")
	}
	if ok, _ := b.allow(t0.Add(time.Second)); ok {
		t.Fatal("a second request while the probe is out")
	}
	b.record(false, t0.Add(time.Second)) // the probe failed: open again
	if ok, _ := b.allow(t0.Add(1500 * time.Millisecond)); ok {
		t.Fatal("reopened breaker let a request through")
	}
	if ok, _ := b.allow(t0.Add(2 * time.Second)); !ok {
		t.Fatal("no second probe")
	}
	b.record(true, t0.Add(2*time.Second))
	if ok, _ := b.allow(t0.Add(2 * time.Second)); !ok {
		t.Fatal("closed again, yet refused")
	}
	if want := []int{breakerOpen, breakerHalfOpen, breakerOpen, breakerHalfOpen, breakerClosed}; !reflect.DeepEqual(states, want) {
		t.Errorf("states %v, want %v", states, want)
	}
}

// The gate spends its burst, then grants at its rate; a pause holds every
// request until its end.
func TestGate(t *testing.T) {
	g := newGate(10, 2)
	t0 := time.Now()
	if g.reserve(t0) != 0 || g.reserve(t0) != 0 {
		t.Fatal("the burst of 2 was not granted")
	}
	if d := g.reserve(t0); d != 100*time.Millisecond {
		t.Fatalf("third request waits %s, want 100ms at 10/s", d)
	}
	if d := g.reserve(t0.Add(100 * time.Millisecond)); d != 0 {
		t.Fatalf("after 100ms: wait %s", d)
	}
	g.pause(t0.Add(5 * time.Second))
	if d := g.reserve(t0.Add(time.Second)); d != 4*time.Second {
		t.Fatalf("paused: wait %s, want 4s", d)
	}
	if d := newGate(0, 0).reserve(t0); d != 0 {
		t.Fatalf("no rate: wait %s", d)
	}
}

// A webhook's requests carry keys, urls and prefixes together, each within
// its limit.
func TestNewBatchMixesForWebhooks(t *testing.T) {
	tg := &pipeline.Target{Type: pipeline.TargetHTTP, MaxKeys: 2, MaxURLs: 2}
	units := []*unit{
		{purge: pipeline.Purge{Keys: []string{"a", "b", "c"}, URLs: []string{"/x"}}},
		{purge: pipeline.Purge{Prefixes: []string{"/p/"}}},
	}
	b := newBatch(tg, units)
	if len(b.reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(b.reqs))
	}
	r0, r1 := b.reqs[0], b.reqs[1]
	if !reflect.DeepEqual(r0.req.Keys, []string{"a", "b"}) || !reflect.DeepEqual(r0.req.URLs, []string{"/x"}) || !reflect.DeepEqual(r0.req.Prefixes, []string{"/p/"}) || !reflect.DeepEqual(r0.units, []int{0, 1}) {
		t.Errorf("first request %+v, units %v", r0.req, r0.units)
	}
	if !reflect.DeepEqual(r1.req.Keys, []string{"c"}) || len(r1.req.URLs)+len(r1.req.Prefixes) != 0 || !reflect.DeepEqual(r1.units, []int{0}) {
		t.Errorf("second request %+v, units %v", r1.req, r1.units)
	}
}

// splitAudit keeps a small audit whole and cuts a large one into parts
// within the budget, in order, each string in exactly one part, the same
// way every time (a replay's audit gets the same event ids).
func TestSplitAudit(t *testing.T) {
	if got := splitAudit(100, []string{"a"}, nil, []string{"/u"}); !reflect.DeepEqual(got, [][3][]string{{{"a"}, nil, {"/u"}}}) {
		t.Errorf("small audit: %q", got)
	}
	if got := splitAudit(100, nil, nil, nil); len(got) != 1 {
		t.Errorf("empty audit: %d parts, want 1", len(got))
	}
	var ids, keys, urls []string
	for i := range 50 {
		ids = append(ids, fmt.Sprintf("%032d", i))
		keys = append(keys, fmt.Sprint("content:", i))
		urls = append(urls, fmt.Sprint("/p/", i))
	}
	const budget = 200
	parts := splitAudit(budget, ids, keys, urls)
	var flat [3][]string
	for i, p := range parts {
		used := 0
		for l := range p {
			for _, s := range p[l] {
				used += len(s) + 5
			}
			flat[l] = append(flat[l], p[l]...)
		}
		if used > budget || used == 0 {
			t.Errorf("part %d: %d bytes of lists, budget %d", i, used, budget)
		}
	}
	if !reflect.DeepEqual(flat, [3][]string{ids, keys, urls}) {
		t.Errorf("parts joined again differ from the lists:\n%q", flat)
	}
	if again := splitAudit(budget, ids, keys, urls); !reflect.DeepEqual(again, parts) {
		t.Error("a second split differs from the first")
	}
	if got := splitAudit(10, []string{strings.Repeat("x", 20), "a"}, nil, nil); len(got) != 2 || len(got[0][0]) != 1 {
		t.Errorf("a string over the budget is not a part of its own: %q", got)
	}
}
