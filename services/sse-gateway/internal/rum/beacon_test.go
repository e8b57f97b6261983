package rum

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/events"
)

const validBeacon = `{"session_id":"0123456789abcdef","seq":3,"route":"/articles/:id","client_time":1700000000000,"connection":"4g",
"metrics":[{"name":"LCP","value":1234.5,"delta":1234.5,"rating":"needs-improvement","navigation_type":"back-forward-cache","id":"v5-1"}],
"lags":[{"event_id":"abc","lag_ms":42.5}]}`

var decodeCases = []struct {
	name string
	in   string
	ok   bool
}{
	{"valid", validBeacon, true},
	{"lags only", `{"session_id":"0123456789abcdef","lags":[{"event_id":"e","lag_ms":-3}]}`, true},
	{"not JSON", `hello`, false},
	{"unknown field", `{"session_id":"0123456789abcdef","ip":"1.2.3.4","lags":[{"event_id":"e","lag_ms":1}]}`, false},
	{"trailing data", `{"session_id":"0123456789abcdef","lags":[{"event_id":"e","lag_ms":1}]} {}`, false},
	{"short session", `{"session_id":"abc","lags":[{"event_id":"e","lag_ms":1}]}`, false},
	{"empty", `{"session_id":"0123456789abcdef"}`, false},
	{"unknown metric", `{"session_id":"0123456789abcdef","metrics":[{"name":"FID","value":1,"rating":"good"}]}`, false},
	{"bad rating", `{"session_id":"0123456789abcdef","metrics":[{"name":"CLS","value":0.1,"rating":"great"}]}`, false},
	{"negative value", `{"session_id":"0123456789abcdef","metrics":[{"name":"CLS","value":-1,"rating":"good"}]}`, false},
	{"huge value", `{"session_id":"0123456789abcdef","metrics":[{"name":"LCP","value":1e300,"rating":"good"}]}`, false},
	{"route with query", `{"session_id":"0123456789abcdef","route":"/a?email=x","lags":[{"event_id":"e","lag_ms":1}]}`, false},
	{"bad connection", `{"session_id":"0123456789abcdef","connection":"5g","lags":[{"event_id":"e","lag_ms":1}]}`, false},
	{"lag without id", `{"session_id":"0123456789abcdef","lags":[{"event_id":"","lag_ms":1}]}`, false},
	{"too many lags", `{"session_id":"0123456789abcdef","lags":[` + strings.Repeat(`{"event_id":"e","lag_ms":1},`, MaxLags) + `{"event_id":"e","lag_ms":1}]}`, false},
}

func TestDecode(t *testing.T) {
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.in))
			if tc.ok && err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestBeaconEvent(t *testing.T) {
	b, err := Decode([]byte(validBeacon))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1700000001, 0).UTC()
	ev := b.Event(now, "hash", events.DeviceDesktop, "eu")
	if ev.EventID != events.ID("0123456789abcdef", "3") || ev.SessionID != "0123456789abcdef" || ev.UserHash != "hash" {
		t.Fatalf("event: %+v", ev)
	}
	m := ev.Metrics[0]
	if m.Rating != events.RatingNeedsImprovement || m.NavigationType != events.NavBackForwardCache || m.Value != 1234.5 {
		t.Fatalf("metric: %+v", m)
	}
	if len(ev.SSELags) != 1 || ev.SSELags[0].LagMS != 42.5 || !ev.ClientTime.Equal(time.UnixMilli(1700000000000)) {
		t.Fatalf("lags or client time: %+v", ev)
	}
}

func TestDeviceClass(t *testing.T) {
	cases := map[string]events.DeviceClass{
		"": events.DeviceUnknown,
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148":   events.DeviceMobile,
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari/537.36":          events.DeviceMobile,
		"Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)":                          events.DeviceTablet,
		"Mozilla/5.0 (Linux; Android 13; SM-X200) Safari/537.36":                 events.DeviceTablet,
		"Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0.0.0 Safari/537.36": events.DeviceDesktop,
	}
	for ua, want := range cases {
		if got := DeviceClass(ua); got != want {
			t.Errorf("DeviceClass(%q) = %s, want %s", ua, got, want)
		}
	}
}

// FuzzDecode: no input makes Decode panic; what it accepts is valid and
// converts to an event.
func FuzzDecode(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		if err := b.validate(); err != nil {
			t.Fatalf("accepted an invalid beacon: %v", err)
		}
		ev := b.Event(time.Now(), "", DeviceClass(""), "")
		if ev.SessionID != b.SessionID || len(ev.Metrics) != len(b.Metrics) {
			t.Fatal("event differs from the beacon")
		}
	})
}
