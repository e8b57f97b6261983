package gateway

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/freshet/freshet/pkg/events"
)

func beaconBody(session string, seq int) string {
	return `{"session_id":"` + session + `","seq":` + string(rune('0'+seq)) + `,"route":"/articles/:id",` +
		`"metrics":[{"name":"TTFB","value":12.5,"delta":12.5,"rating":"good","navigation_type":"navigate","id":"v5-1"}],` +
		`"lags":[{"event_id":"abc","lag_ms":7.5}]}`
}

func post(t *testing.T, url, ctype, body string, hdr http.Header) (int, map[string]string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148")
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]string{}
	if resp.StatusCode >= 400 {
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatalf("%d without a JSON body: %v", resp.StatusCode, err)
		}
	}
	return resp.StatusCode, out
}

// readBeacons reads n RumBeacon records from the test's beacons topic.
func (e *env) readBeacons(n int) ([]*events.RumBeacon, []*kgo.Record) {
	e.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kt.Seeds...), kgo.ConsumeTopics(e.beacons), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*events.RumBeacon
	var recs []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			e.t.Fatalf("read %d of %d beacons", len(out), n)
		}
		for _, r := range fs.Records() {
			ev, _, err := e.codec.DecodeEvent(ctx, r.Value)
			if err != nil {
				e.t.Fatalf("beacon record does not decode: %v", err)
			}
			out = append(out, ev.(*events.RumBeacon))
			recs = append(recs, r)
		}
	}
	return out, recs
}

// A beacon becomes a RumBeacon on rum.beacons, keyed by session, with the
// keyed hash of the user instead of the id and nothing of the client's IP.
// Bad beacons get their 4xx with a JSON body.
func TestRUMBeacons(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.RUM.RatePerSession = 0.001
	cfg.RUM.BurstPerSession = 2
	cfg.RUM.RegionHeader = "X-Edge-Region"
	g := e.start(cfg)
	url := g.URL() + "/v1/rum"

	status, body := post(t, url+"?token="+e.token("mia", time.Hour), "text/plain;charset=UTF-8", beaconBody("session-aaaa", 1), http.Header{"X-Edge-Region": {"eu-west"}})
	if status != http.StatusAccepted {
		t.Fatalf("beacon: %d %v", status, body)
	}
	status, body = post(t, url, "application/json", beaconBody("session-bbbb", 1), nil) // anonymous
	if status != http.StatusAccepted {
		t.Fatalf("anonymous beacon: %d %v", status, body)
	}

	cases := []struct {
		name, ctype, body, query string
		status                   int
		code                     string
	}{
		{"not JSON", "text/plain", "hello", "", 400, "invalid_beacon"},
		{"unknown field", "text/plain", `{"session_id":"session-cccc","ip":"1.2.3.4","lags":[{"event_id":"e","lag_ms":1}]}`, "", 400, "invalid_beacon"},
		{"too large", "text/plain", `{"session_id":"session-cccc","route":"` + strings.Repeat("a", 17<<10) + `"}`, "", 413, "too_large"},
		{"wrong type", "application/xml", beaconBody("session-cccc", 1), "", 415, "unsupported_media_type"},
		{"bad token", "text/plain", beaconBody("session-cccc", 1), "?token=abc", 401, "malformed_token"},
		{"session rate", "text/plain", beaconBody("session-aaaa", 2), "", 429, "rate_limited"},
	}
	// session-aaaa has used 1 of its burst of 2: use the second, so that
	// the "session rate" case is over the limit.
	if status, body := post(t, url, "text/plain", beaconBody("session-aaaa", 3), nil); status != 202 {
		t.Fatalf("second beacon of a session: %d %v", status, body)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, url+tc.query, tc.ctype, tc.body, nil)
			if status != tc.status || body["error"] != tc.code {
				t.Fatalf("got %d %v, want %d %s", status, body, tc.status, tc.code)
			}
		})
	}

	all, allRecs := e.readBeacons(3)
	bySession := map[string]int{}
	for i, b := range all {
		if _, ok := bySession[b.SessionID]; !ok {
			bySession[b.SessionID] = i
		}
	}
	a, bb := bySession["session-aaaa"], bySession["session-bbbb"]
	beacons := []*events.RumBeacon{all[a], all[bb]}
	recs := []*kgo.Record{allRecs[a], allRecs[bb]}
	mac := hmac.New(sha256.New, []byte(testHashKey))
	mac.Write([]byte("mia"))
	wantHash := hex.EncodeToString(mac.Sum(nil))
	b := beacons[0]
	if string(recs[0].Key) != "session-aaaa" || b.SessionID != "session-aaaa" || b.UserHash != wantHash {
		t.Fatalf("beacon key %q, session %q, user_hash %q (want %q)", recs[0].Key, b.SessionID, b.UserHash, wantHash)
	}
	if b.Region != "eu-west" || b.DeviceClass != events.DeviceMobile || b.Route != "/articles/:id" {
		t.Fatalf("beacon: region %q device %q route %q", b.Region, b.DeviceClass, b.Route)
	}
	if len(b.Metrics) != 1 || b.Metrics[0].Name != events.VitalTTFB || len(b.SSELags) != 1 || b.SSELags[0].LagMS != 7.5 {
		t.Fatalf("beacon metrics %+v lags %+v", b.Metrics, b.SSELags)
	}
	if beacons[1].UserHash != "" {
		t.Fatalf("anonymous beacon has user_hash %q", beacons[1].UserHash)
	}
	for _, r := range allRecs {
		if bytes.Contains(r.Value, []byte("127.0.0.1")) || bytes.Contains(r.Value, []byte("mia")) {
			t.Fatal("a beacon record holds the client's IP or the raw user id")
		}
	}
}

// Beacons are limited per client IP too (before the session's limit).
func TestRUMRatePerIP(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.RUM.RatePerIP = 0.001
	cfg.RUM.BurstPerIP = 1
	g := e.start(cfg)
	if status, body := post(t, g.URL()+"/v1/rum", "text/plain", beaconBody("session-one1", 1), nil); status != 202 {
		t.Fatalf("first beacon: %d %v", status, body)
	}
	status, body := post(t, g.URL()+"/v1/rum", "text/plain", beaconBody("session-two2", 1), nil)
	if status != 429 || body["error"] != "rate_limited" {
		t.Fatalf("second beacon from the address: %d %v", status, body)
	}
}
