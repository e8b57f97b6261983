package events

import (
	"fmt"
	"math"
	"time"
)

// Union branch keys of goavro's native form.
const (
	keyString    = "string"
	keyTimestamp = "long.timestamp-micros"
	keySource    = Namespace + ".Source"
	keyTrace     = Namespace + ".Trace"
	keyBefore    = Namespace + ".ContentBefore"
)

// ---- to native ----

func optTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return map[string]any{keyTimestamp: t}
}

func optString(s *string) any {
	if s == nil {
		return nil
	}
	return map[string]any{keyString: *s}
}

func strings2(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func stringMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func orDefault[T ~string](v, def T) string {
	if v == "" {
		return string(def)
	}
	return string(v)
}

// Native returns s in goavro's native form.
func (s Source) Native() map[string]any {
	return map[string]any{
		"origin":      orDefault(s.Origin, OriginUnknown),
		"db":          s.DB,
		"table":       s.Table,
		"lsn":         int64(s.LSN),
		"commit_lsn":  int64(s.CommitLSN),
		"txid":        int64(s.TxID),
		"seq":         s.Seq,
		"commit_time": s.CommitTime,
	}
}

// Native returns t in goavro's native form.
func (t Trace) Native() map[string]any {
	stages := make([]any, len(t.Stages))
	for i, s := range t.Stages {
		stages[i] = map[string]any{"name": s.Name, "at": s.At}
	}
	return map[string]any{"committed_at": t.CommittedAt, "produced_at": t.ProducedAt, "stages": stages}
}

// Native returns p in goavro's native form.
func (p ContentProjection) Native() map[string]any {
	return map[string]any{
		"id": p.ID, "kind": p.Kind, "title": p.Title, "summary": p.Summary,
		"url_path": p.URLPath, "locale": p.Locale, "section": p.Section,
		"tags": strings2(p.Tags), "published_at": optTime(p.PublishedAt), "version": p.Version,
	}
}

// Native implements Event.
func (c ContentChange) Native() map[string]any {
	var before any
	if b := c.Before; b != nil {
		before = map[string]any{keyBefore: map[string]any{
			"kind": b.Kind, "title": b.Title, "tags": strings2(b.Tags), "section": b.Section,
			"locale": b.Locale, "url_path": b.URLPath, "surrogate_keys": strings2(b.SurrogateKeys),
			"version": b.Version, "attributes": stringMap(b.Attributes),
		}}
	}
	return map[string]any{
		"event_id":       c.EventID,
		"source":         c.Source.Native(),
		"trace":          c.Trace.Native(),
		"op":             string(c.Op),
		"content_id":     c.ContentID,
		"kind":           c.Kind,
		"title":          c.Title,
		"summary":        c.Summary,
		"body":           optString(c.Body),
		"tags":           strings2(c.Tags),
		"section":        c.Section,
		"locale":         c.Locale,
		"authors":        strings2(c.Authors),
		"regions":        strings2(c.Regions),
		"url_path":       c.URLPath,
		"surrogate_keys": strings2(c.SurrogateKeys),
		"version":        c.Version,
		"published_at":   optTime(c.PublishedAt),
		"broadcast":      c.Broadcast,
		"channels":       strings2(c.Channels),
		"attributes":     stringMap(c.Attributes),
		"before":         before,
		"missing_fields": strings2(c.MissingFields),
	}
}

// Native implements Event.
func (u UserProfile) Native() map[string]any {
	interests := make([]any, len(u.Interests))
	for i, in := range u.Interests {
		interests[i] = map[string]any{"tag": in.Tag, "weight": in.Weight}
	}
	return map[string]any{
		"event_id":       u.EventID,
		"source":         u.Source.Native(),
		"trace":          u.Trace.Native(),
		"user_id":        u.UserID,
		"deleted":        u.Deleted,
		"locale":         u.Locale,
		"region":         u.Region,
		"interests":      interests,
		"follows":        strings2(u.Follows),
		"segments":       strings2(u.Segments),
		"updated_at":     u.UpdatedAt,
		"attributes":     stringMap(u.Attributes),
		"missing_fields": strings2(u.MissingFields),
	}
}

// Native implements Event.
func (d Delivery) Native() map[string]any {
	reasons := make([]any, len(d.Reasons))
	for i, r := range d.Reasons {
		reasons[i] = map[string]any{"rule": r.Rule, "match": r.Match, "score": r.Score}
	}
	return map[string]any{
		"event_id":        d.EventID,
		"change_event_id": d.ChangeEventID,
		"source":          d.Source.Native(),
		"trace":           d.Trace.Native(),
		"op":              string(d.Op),
		"user_id":         d.UserID,
		"channel":         d.Channel,
		"content":         d.Content.Native(),
		"score":           d.Score,
		"reasons":         reasons,
		"deadline":        optTime(d.Deadline),
	}
}

// Native implements Event.
func (p PurgeAudit) Native() map[string]any {
	var errText any
	if p.Error != "" {
		errText = map[string]any{keyString: p.Error}
	}
	return map[string]any{
		"event_id":               p.EventID,
		"source":                 p.Source.Native(),
		"trace":                  p.Trace.Native(),
		"purge_id":               p.PurgeID,
		"target":                 p.Target,
		"provider":               p.Provider,
		"change_event_ids":       strings2(p.ChangeEventIDs),
		"keys":                   strings2(p.Keys),
		"urls":                   strings2(p.URLs),
		"soft":                   p.Soft,
		"attempts":               int32(p.Attempts),
		"outcome":                orDefault(p.Outcome, OutcomeUnknown),
		"status_code":            int32(p.StatusCode),
		"error":                  errText,
		"started_at":             p.StartedAt,
		"finished_at":            p.FinishedAt,
		"latency_from_commit_us": p.LatencyFromCommit.Microseconds(),
		"part":                   orOne(p.Part),
		"parts":                  orOne(p.Parts),
	}
}

// orOne returns n as an Avro int, 1 for 0: a count from 1 that was not set.
func orOne(n int) int32 {
	if n == 0 {
		return 1
	}
	return int32(n)
}

func optSource(s *Source) any {
	if s == nil {
		return nil
	}
	return map[string]any{keySource: s.Native()}
}

func optTrace(t *Trace) any {
	if t == nil {
		return nil
	}
	return map[string]any{keyTrace: t.Native()}
}

// Native implements Event.
func (r RumBeacon) Native() map[string]any {
	metrics := make([]any, len(r.Metrics))
	for i, m := range r.Metrics {
		metrics[i] = map[string]any{
			"name": string(m.Name), "value": m.Value, "delta": m.Delta, "rating": string(m.Rating),
			"navigation_type": orDefault(m.NavigationType, NavUnknown), "id": m.ID,
		}
	}
	lags := make([]any, len(r.SSELags))
	for i, l := range r.SSELags {
		lags[i] = map[string]any{"event_id": l.EventID, "lag_ms": l.LagMS}
	}
	return map[string]any{
		"event_id":         r.EventID,
		"source":           optSource(r.Source),
		"trace":            optTrace(r.Trace),
		"received_at":      r.ReceivedAt,
		"client_time":      optTime(r.ClientTime),
		"session_id":       r.SessionID,
		"user_hash":        r.UserHash,
		"route":            r.Route,
		"device_class":     orDefault(r.DeviceClass, DeviceUnknown),
		"connection_class": r.ConnectionClass,
		"region":           r.Region,
		"metrics":          metrics,
		"sse_lags":         lags,
	}
}

// Native implements Event.
func (l LatencySample) Native() map[string]any {
	return map[string]any{
		"event_id":         l.EventID,
		"source":           optSource(l.Source),
		"trace":            optTrace(l.Trace),
		"subject_event_id": l.SubjectEventID,
		"service":          l.Service,
		"instance":         l.Instance,
		"stage":            l.Stage,
		"duration_us":      l.Duration.Microseconds(),
		"at":               l.At,
		"labels":           stringMap(l.Labels),
	}
}

// ---- from native ----

// FromNative converts a decoded record of the named schema into its typed
// event, returned as a pointer (*ContentChange, *Delivery, ...). The record
// must hold every field of the current schema, as pkg/codec's Decode
// returns it; union values may be wrapped (goavro's form) or bare.
func FromNative(schema string, m map[string]any) (Event, error) {
	switch schema {
	case ContentChangeSchema:
		v, err := ContentChangeFromNative(m)
		return &v, err
	case UserProfileSchema:
		v, err := UserProfileFromNative(m)
		return &v, err
	case DeliverySchema:
		v, err := DeliveryFromNative(m)
		return &v, err
	case PurgeAuditSchema:
		v, err := PurgeAuditFromNative(m)
		return &v, err
	case RumBeaconSchema:
		v, err := RumBeaconFromNative(m)
		return &v, err
	case LatencySampleSchema:
		v, err := LatencySampleFromNative(m)
		return &v, err
	}
	return nil, fmt.Errorf("events: no type for schema %q", schema)
}

// nat reads fields of a native record, keeping the first error.
type nat struct {
	m    map[string]any
	path string
	err  *error
}

func newNat(m map[string]any, what string) nat {
	return nat{m: m, path: what, err: new(error)}
}

func (n nat) fail(k, format string, args ...any) {
	if *n.err == nil {
		*n.err = fmt.Errorf("events: %s.%s: %s", n.path, k, fmt.Sprintf(format, args...))
	}
}

func (n nat) get(k string) any {
	v, ok := n.m[k]
	if !ok {
		n.fail(k, "missing")
	}
	return v
}

// unwrap returns the value inside a goavro union map, or v itself.
func unwrap(v any, key string) any {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		if inner, ok := m[key]; ok {
			return inner
		}
	}
	return v
}

func (n nat) str(k string) string {
	switch v := n.get(k).(type) {
	case string:
		return v
	case nil:
		if _, ok := n.m[k]; !ok {
			return ""
		}
	}
	n.fail(k, "%T is not a string", n.m[k])
	return ""
}

func (n nat) optStr(k string) *string {
	v := unwrap(n.get(k), keyString)
	switch t := v.(type) {
	case nil:
		return nil
	case string:
		return &t
	}
	n.fail(k, "%T is not a string or null", v)
	return nil
}

func (n nat) i64(k string) int64 {
	switch v := n.get(k).(type) {
	case int64:
		return v
	case int32:
		return int64(v)
	case int:
		return int64(v)
	case nil:
		if _, ok := n.m[k]; !ok {
			return 0
		}
	}
	n.fail(k, "%T is not an integer", n.m[k])
	return 0
}

func (n nat) f64(k string) float64 {
	switch v := n.get(k).(type) {
	case float64:
		return v
	case float32:
		return float64(v)
	case int64:
		return float64(v)
	case int32:
		return float64(v)
	case int:
		return float64(v)
	case nil:
		if _, ok := n.m[k]; !ok {
			return 0
		}
	}
	n.fail(k, "%T is not a number", n.m[k])
	return 0
}

func (n nat) boolean(k string) bool {
	switch v := n.get(k).(type) {
	case bool:
		return v
	case nil:
		if _, ok := n.m[k]; !ok {
			return false
		}
	}
	n.fail(k, "%T is not a boolean", n.m[k])
	return false
}

func toTime(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, true
	case int64:
		return time.UnixMicro(t).UTC(), true
	}
	return time.Time{}, false
}

func (n nat) time(k string) time.Time {
	v := n.get(k)
	if t, ok := toTime(v); ok {
		return t
	}
	if _, ok := n.m[k]; ok {
		n.fail(k, "%T is not a timestamp", v)
	}
	return time.Time{}
}

func (n nat) optTime(k string) time.Time {
	v := unwrap(n.get(k), keyTimestamp)
	if v == nil {
		return time.Time{}
	}
	if t, ok := toTime(v); ok {
		return t
	}
	n.fail(k, "%T is not a timestamp or null", v)
	return time.Time{}
}

func (n nat) strs(k string) []string {
	switch v := n.get(k).(type) {
	case []any:
		if len(v) == 0 {
			return nil
		}
		out := make([]string, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				n.fail(k, "item %d: %T is not a string", i, e)
				return nil
			}
			out[i] = s
		}
		return out
	case []string:
		if len(v) == 0 {
			return nil
		}
		return append([]string(nil), v...)
	case nil:
		return nil
	}
	n.fail(k, "%T is not an array of strings", n.m[k])
	return nil
}

func (n nat) strMap(k string) map[string]string {
	switch v := n.get(k).(type) {
	case map[string]any:
		if len(v) == 0 {
			return nil
		}
		out := make(map[string]string, len(v))
		for key, e := range v {
			s, ok := e.(string)
			if !ok {
				n.fail(k, "value of %q: %T is not a string", key, e)
				return nil
			}
			out[key] = s
		}
		return out
	case map[string]string:
		if len(v) == 0 {
			return nil
		}
		out := make(map[string]string, len(v))
		for key, e := range v {
			out[key] = e
		}
		return out
	case nil:
		return nil
	}
	n.fail(k, "%T is not a map of strings", n.m[k])
	return nil
}

func (n nat) sub(m map[string]any, what string) nat {
	return nat{m: m, path: n.path + "." + what, err: n.err}
}

func (n nat) rec(k string) nat {
	m, ok := n.get(k).(map[string]any)
	if !ok {
		if _, present := n.m[k]; present {
			n.fail(k, "%T is not a record", n.m[k])
		}
		m = map[string]any{}
	}
	return n.sub(m, k)
}

// optRec returns the record of a ["null", record] field, unwrapping goavro's
// union map keyed by the record's full name.
func (n nat) optRec(k, fullName string) (nat, bool) {
	v := unwrap(n.get(k), fullName)
	if v == nil {
		return nat{}, false
	}
	m, ok := v.(map[string]any)
	if !ok {
		n.fail(k, "%T is not a record or null", v)
		return nat{}, false
	}
	return n.sub(m, k), true
}

// recs calls fn for each record of an array field.
func (n nat) recs(k string, fn func(i int, r nat)) {
	v := n.get(k)
	list, ok := v.([]any)
	if !ok {
		if v != nil {
			n.fail(k, "%T is not an array", v)
		}
		return
	}
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			n.fail(k, "item %d: %T is not a record", i, e)
			return
		}
		fn(i, n.sub(m, fmt.Sprintf("%s[%d]", k, i)))
	}
}

func (n nat) source() Source {
	return Source{
		Origin:     Origin(n.str("origin")),
		DB:         n.str("db"),
		Table:      n.str("table"),
		LSN:        uint64(n.i64("lsn")),
		CommitLSN:  uint64(n.i64("commit_lsn")),
		TxID:       uint64(n.i64("txid")),
		Seq:        n.i64("seq"),
		CommitTime: n.time("commit_time"),
	}
}

func (n nat) trace() Trace {
	t := Trace{CommittedAt: n.time("committed_at"), ProducedAt: n.time("produced_at")}
	n.recs("stages", func(_ int, r nat) {
		t.Stages = append(t.Stages, Stage{Name: r.str("name"), At: r.time("at")})
	})
	return t
}

func (n nat) projection() ContentProjection {
	return ContentProjection{
		ID: n.str("id"), Kind: n.str("kind"), Title: n.str("title"), Summary: n.str("summary"),
		URLPath: n.str("url_path"), Locale: n.str("locale"), Section: n.str("section"),
		Tags: n.strs("tags"), PublishedAt: n.optTime("published_at"), Version: n.i64("version"),
	}
}

// MicrosDuration converts a count of microseconds, as the schemas' *_us
// fields carry it, to a Duration, saturating at the largest whole number of
// microseconds a Duration holds. It is how decoding reads those fields.
func MicrosDuration(us int64) time.Duration {
	const limit = int64(math.MaxInt64 / int64(time.Microsecond))
	switch {
	case us > limit:
		us = limit
	case us < -limit:
		us = -limit
	}
	return time.Duration(us) * time.Microsecond
}

// ContentChangeFromNative converts a native ContentChange record.
func ContentChangeFromNative(m map[string]any) (ContentChange, error) {
	n := newNat(m, "ContentChange")
	c := ContentChange{
		EventID:       n.str("event_id"),
		Source:        n.rec("source").source(),
		Trace:         n.rec("trace").trace(),
		Op:            Op(n.str("op")),
		ContentID:     n.str("content_id"),
		Kind:          n.str("kind"),
		Title:         n.str("title"),
		Summary:       n.str("summary"),
		Body:          n.optStr("body"),
		Tags:          n.strs("tags"),
		Section:       n.str("section"),
		Locale:        n.str("locale"),
		Authors:       n.strs("authors"),
		Regions:       n.strs("regions"),
		URLPath:       n.str("url_path"),
		SurrogateKeys: n.strs("surrogate_keys"),
		Version:       n.i64("version"),
		PublishedAt:   n.optTime("published_at"),
		Broadcast:     n.boolean("broadcast"),
		Channels:      n.strs("channels"),
		Attributes:    n.strMap("attributes"),
		MissingFields: n.strs("missing_fields"),
	}
	if b, ok := n.optRec("before", keyBefore); ok {
		c.Before = &ContentBefore{
			Kind: b.str("kind"), Title: b.str("title"), Tags: b.strs("tags"), Section: b.str("section"),
			Locale: b.str("locale"), URLPath: b.str("url_path"), SurrogateKeys: b.strs("surrogate_keys"),
			Version: b.i64("version"), Attributes: b.strMap("attributes"),
		}
	}
	return c, *n.err
}

// UserProfileFromNative converts a native UserProfile record.
func UserProfileFromNative(m map[string]any) (UserProfile, error) {
	n := newNat(m, "UserProfile")
	u := UserProfile{
		EventID:       n.str("event_id"),
		Source:        n.rec("source").source(),
		Trace:         n.rec("trace").trace(),
		UserID:        n.str("user_id"),
		Deleted:       n.boolean("deleted"),
		Locale:        n.str("locale"),
		Region:        n.str("region"),
		Follows:       n.strs("follows"),
		Segments:      n.strs("segments"),
		UpdatedAt:     n.time("updated_at"),
		Attributes:    n.strMap("attributes"),
		MissingFields: n.strs("missing_fields"),
	}
	n.recs("interests", func(_ int, r nat) {
		u.Interests = append(u.Interests, Interest{Tag: r.str("tag"), Weight: r.f64("weight")})
	})
	return u, *n.err
}

// DeliveryFromNative converts a native Delivery record.
func DeliveryFromNative(m map[string]any) (Delivery, error) {
	n := newNat(m, "Delivery")
	d := Delivery{
		EventID:       n.str("event_id"),
		ChangeEventID: n.str("change_event_id"),
		Source:        n.rec("source").source(),
		Trace:         n.rec("trace").trace(),
		Op:            Op(n.str("op")),
		UserID:        n.str("user_id"),
		Channel:       n.str("channel"),
		Content:       n.rec("content").projection(),
		Score:         n.f64("score"),
		Deadline:      n.optTime("deadline"),
	}
	n.recs("reasons", func(_ int, r nat) {
		d.Reasons = append(d.Reasons, Reason{Rule: r.str("rule"), Match: r.str("match"), Score: r.f64("score")})
	})
	return d, *n.err
}

// PurgeAuditFromNative converts a native PurgeAudit record.
func PurgeAuditFromNative(m map[string]any) (PurgeAudit, error) {
	n := newNat(m, "PurgeAudit")
	p := PurgeAudit{
		EventID:           n.str("event_id"),
		Source:            n.rec("source").source(),
		Trace:             n.rec("trace").trace(),
		PurgeID:           n.str("purge_id"),
		Target:            n.str("target"),
		Provider:          n.str("provider"),
		ChangeEventIDs:    n.strs("change_event_ids"),
		Keys:              n.strs("keys"),
		URLs:              n.strs("urls"),
		Soft:              n.boolean("soft"),
		Attempts:          int(n.i64("attempts")),
		Outcome:           PurgeOutcome(n.str("outcome")),
		StatusCode:        int(n.i64("status_code")),
		StartedAt:         n.time("started_at"),
		FinishedAt:        n.time("finished_at"),
		LatencyFromCommit: MicrosDuration(n.i64("latency_from_commit_us")),
		Part:              int(n.i64("part")),
		Parts:             int(n.i64("parts")),
	}
	if e := n.optStr("error"); e != nil {
		p.Error = *e
	}
	return p, *n.err
}

// RumBeaconFromNative converts a native RumBeacon record.
func RumBeaconFromNative(m map[string]any) (RumBeacon, error) {
	n := newNat(m, "RumBeacon")
	r := RumBeacon{
		EventID:         n.str("event_id"),
		ReceivedAt:      n.time("received_at"),
		ClientTime:      n.optTime("client_time"),
		SessionID:       n.str("session_id"),
		UserHash:        n.str("user_hash"),
		Route:           n.str("route"),
		DeviceClass:     DeviceClass(n.str("device_class")),
		ConnectionClass: n.str("connection_class"),
		Region:          n.str("region"),
	}
	if s, ok := n.optRec("source", keySource); ok {
		src := s.source()
		r.Source = &src
	}
	if t, ok := n.optRec("trace", keyTrace); ok {
		tr := t.trace()
		r.Trace = &tr
	}
	n.recs("metrics", func(_ int, v nat) {
		r.Metrics = append(r.Metrics, WebVital{
			Name: VitalName(v.str("name")), Value: v.f64("value"), Delta: v.f64("delta"),
			Rating: VitalRating(v.str("rating")), NavigationType: NavigationType(v.str("navigation_type")),
			ID: v.str("id"),
		})
	})
	n.recs("sse_lags", func(_ int, v nat) {
		r.SSELags = append(r.SSELags, SSELag{EventID: v.str("event_id"), LagMS: v.f64("lag_ms")})
	})
	return r, *n.err
}

// LatencySampleFromNative converts a native LatencySample record.
func LatencySampleFromNative(m map[string]any) (LatencySample, error) {
	n := newNat(m, "LatencySample")
	l := LatencySample{
		EventID:        n.str("event_id"),
		SubjectEventID: n.str("subject_event_id"),
		Service:        n.str("service"),
		Instance:       n.str("instance"),
		Stage:          n.str("stage"),
		Duration:       MicrosDuration(n.i64("duration_us")),
		At:             n.time("at"),
		Labels:         n.strMap("labels"),
	}
	if s, ok := n.optRec("source", keySource); ok {
		src := s.source()
		l.Source = &src
	}
	if t, ok := n.optRec("trace", keyTrace); ok {
		tr := t.trace()
		l.Trace = &tr
	}
	return l, *n.err
}
