package rum

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/freshet/freshet/pkg/events"
)

// Limits of one beacon.
const (
	MaxMetrics = 32
	MaxLags    = 128
	maxRoute   = 256
	maxID      = 128
	maxValue   = 1e9 // ms: eleven days; anything larger is a bug or a lie
)

// ErrInvalid is wrapped by every error of Decode.
var ErrInvalid = errors.New("invalid beacon")

var (
	sessionRe    = regexp.MustCompile(`^[A-Za-z0-9_-]{8,64}$`)
	connectionRe = regexp.MustCompile(`^(slow-2g|2g|3g|4g)?$`)
)

// Beacon is the JSON the Freshet client sends.
type Beacon struct {
	SessionID  string   `json:"session_id"`
	Seq        uint32   `json:"seq"`
	Route      string   `json:"route"`
	ClientTime int64    `json:"client_time"` // ms since the epoch; 0: not sent
	Connection string   `json:"connection"`
	Metrics    []Metric `json:"metrics"`
	Lags       []Lag    `json:"lags"`
}

// Metric is one web-vitals report, as the web-vitals library gives it.
type Metric struct {
	Name           string  `json:"name"`
	Value          float64 `json:"value"`
	Delta          float64 `json:"delta"`
	Rating         string  `json:"rating"`
	NavigationType string  `json:"navigation_type"`
	ID             string  `json:"id"`
}

// Lag is how late one delivery reached the page.
type Lag struct {
	EventID string  `json:"event_id"`
	LagMS   float64 `json:"lag_ms"`
}

// Decode reads and validates one beacon. The error wraps ErrInvalid and
// names the field.
func Decode(data []byte) (Beacon, error) {
	var b Beacon
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return Beacon{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Beacon{}, fmt.Errorf("%w: data after the JSON object", ErrInvalid)
	}
	if err := b.validate(); err != nil {
		return Beacon{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return b, nil
}

func (b *Beacon) validate() error {
	if !sessionRe.MatchString(b.SessionID) {
		return errors.New("session_id: want 8 to 64 of A-Z a-z 0-9 _ -")
	}
	if len(b.Route) > maxRoute || strings.ContainsAny(b.Route, "?#") || !printable(b.Route) {
		return errors.New("route: want a route template of at most 256 printable characters, without query or fragment")
	}
	if !connectionRe.MatchString(b.Connection) {
		return errors.New("connection: want slow-2g, 2g, 3g, 4g or empty")
	}
	if b.ClientTime < 0 {
		return errors.New("client_time: negative")
	}
	if len(b.Metrics) == 0 && len(b.Lags) == 0 {
		return errors.New("no metrics and no lags")
	}
	if len(b.Metrics) > MaxMetrics {
		return fmt.Errorf("metrics: %d, at most %d", len(b.Metrics), MaxMetrics)
	}
	if len(b.Lags) > MaxLags {
		return fmt.Errorf("lags: %d, at most %d", len(b.Lags), MaxLags)
	}
	for i := range b.Metrics {
		m := &b.Metrics[i]
		switch events.VitalName(m.Name) {
		case events.VitalLCP, events.VitalINP, events.VitalCLS, events.VitalTTFB, events.VitalFCP:
		default:
			return fmt.Errorf("metrics[%d].name: %q is not LCP, INP, CLS, TTFB or FCP", i, m.Name)
		}
		m.Rating = strings.ReplaceAll(m.Rating, "-", "_")
		switch events.VitalRating(m.Rating) {
		case events.RatingGood, events.RatingNeedsImprovement, events.RatingPoor:
		default:
			return fmt.Errorf("metrics[%d].rating: %q is not good, needs-improvement or poor", i, m.Rating)
		}
		m.NavigationType = strings.ReplaceAll(m.NavigationType, "-", "_")
		switch events.NavigationType(m.NavigationType) {
		case "":
			m.NavigationType = string(events.NavUnknown)
		case events.NavUnknown, events.NavNavigate, events.NavReload, events.NavBackForward,
			events.NavBackForwardCache, events.NavPrerender, events.NavRestore:
		default:
			return fmt.Errorf("metrics[%d].navigation_type: %q unknown", i, m.NavigationType)
		}
		if !finite(m.Value) || m.Value < 0 || m.Value > maxValue || !finite(m.Delta) || math.Abs(m.Delta) > maxValue {
			return fmt.Errorf("metrics[%d].value: want a finite number between 0 and %g", i, float64(maxValue))
		}
		if len(m.ID) > maxID || !printable(m.ID) {
			return fmt.Errorf("metrics[%d].id: at most %d printable characters", i, maxID)
		}
	}
	for i, l := range b.Lags {
		if l.EventID == "" || len(l.EventID) > maxID || !printable(l.EventID) {
			return fmt.Errorf("lags[%d].event_id: want 1 to %d printable characters", i, maxID)
		}
		if !finite(l.LagMS) || math.Abs(l.LagMS) > maxValue {
			return fmt.Errorf("lags[%d].lag_ms: want a finite number of milliseconds", i)
		}
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\uFFFD' {
			return false
		}
	}
	return true
}

// Event returns the RumBeacon record of b, received at now from a user
// whose keyed hash is userHash ("" for anonymous sessions).
func (b Beacon) Event(now time.Time, userHash string, device events.DeviceClass, region string) events.RumBeacon {
	ev := events.RumBeacon{
		EventID:         events.ID(b.SessionID, fmt.Sprint(b.Seq)),
		Source:          &events.Source{Origin: events.OriginBrowser, CommitTime: now},
		Trace:           &events.Trace{CommittedAt: now, ProducedAt: now},
		ReceivedAt:      now,
		SessionID:       b.SessionID,
		UserHash:        userHash,
		Route:           b.Route,
		DeviceClass:     device,
		ConnectionClass: b.Connection,
		Region:          region,
	}
	if b.ClientTime > 0 {
		ev.ClientTime = time.UnixMilli(b.ClientTime)
	}
	for _, m := range b.Metrics {
		ev.Metrics = append(ev.Metrics, events.WebVital{
			Name: events.VitalName(m.Name), Value: m.Value, Delta: m.Delta, Rating: events.VitalRating(m.Rating),
			NavigationType: events.NavigationType(m.NavigationType), ID: m.ID,
		})
	}
	for _, l := range b.Lags {
		ev.SSELags = append(ev.SSELags, events.SSELag{EventID: l.EventID, LagMS: l.LagMS})
	}
	return ev
}

// DeviceClass guesses the device class from a User-Agent.
func DeviceClass(ua string) events.DeviceClass {
	switch {
	case ua == "":
		return events.DeviceUnknown
	case strings.Contains(ua, "iPad") || strings.Contains(ua, "Tablet") ||
		(strings.Contains(ua, "Android") && !strings.Contains(ua, "Mobile")):
		return events.DeviceTablet
	case strings.Contains(ua, "Mobi") || strings.Contains(ua, "iPhone"):
		return events.DeviceMobile
	}
	return events.DeviceDesktop
}
