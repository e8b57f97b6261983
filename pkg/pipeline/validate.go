package pipeline

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Validate checks the pipeline and returns every problem found, each an
// [*Error] with the file, line and field (line 0 for a pipeline built in
// code), joined with errors.Join. Parse and Load call it; code that builds
// or changes a Pipeline calls it before use. It does not fill defaults:
// start from [Default].
func (p *Pipeline) Validate() error {
	v := &validator{p: p}
	v.validate()
	return v.err()
}

type validator struct {
	p    *Pipeline
	errs []*Error
}

func (v *validator) errorf(path, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.p.file, Line: v.line(path), Field: path, Msg: fmt.Sprintf(format, args...)})
}

// line returns the line of path, or of its closest parent found in the
// file (a default value has no line of its own).
func (v *validator) line(path string) int {
	for path != "" {
		if l, ok := v.p.lines[path]; ok {
			return l
		}
		path = parentPath(path)
	}
	return 0
}

func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

func (v *validator) err() error {
	if len(v.errs) == 0 {
		return nil
	}
	sortErrors(v.errs)
	errs := make([]error, len(v.errs))
	for i, e := range v.errs {
		errs[i] = e
	}
	return joinErrors(errs)
}

func (v *validator) validate() {
	p := v.p
	if p.Version != Version {
		v.errorf("version", "unsupported version %d (this build reads version %d)", p.Version, Version)
	}
	v.topics()
	v.capture()
	v.invalidation()
	v.personalization()
}

var topicNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)

func (v *validator) topics() {
	p := v.p
	for _, name := range sortedKeys(p.Topics) {
		t := p.Topics[name]
		path := mapField("topics", name)
		switch {
		case !topicNameRE.MatchString(name) || name == "." || name == "..":
			v.errorf(path, "invalid topic name %q: use 1 to 249 letters, digits, '.', '_' or '-'", name)
		case strings.HasSuffix(name, DLQSuffix):
			v.errorf(path, "topic names ending in %s are the dead-letter topics, named after their topic; configure them under dlq", DLQSuffix)
		}
		if t.Partitions < 1 {
			v.errorf(path+".partitions", "must be at least 1, got %d", t.Partitions)
		}
		if t.ReplicationFactor < 0 {
			v.errorf(path+".replication_factor", "must not be negative (0 means the broker's default), got %d", t.ReplicationFactor)
		}
		v.retention(path+".retention", t.Retention)
		switch t.Cleanup {
		case CleanupDelete, CleanupCompact, CleanupCompactDelete:
		default:
			v.errorf(path+".cleanup", "want delete, compact or \"compact,delete\", got %q", t.Cleanup)
		}
		for _, k := range sortedKeys(t.Configs) {
			switch k {
			case "cleanup.policy":
				v.errorf(mapField(path+".configs", k), "set it with cleanup")
			case "retention.ms":
				v.errorf(mapField(path+".configs", k), "set it with retention")
			}
		}
	}
	if t, ok := p.Topics[TopicUserProfiles]; ok && !strings.Contains(t.Cleanup, CleanupCompact) {
		v.errorf(mapField("topics", TopicUserProfiles)+".cleanup", "must be compact: the personalizer restores every profile from it")
	}
	prof, okP := p.Topics[TopicUserProfiles]
	del, okD := p.Topics[TopicContentDeliveries]
	if okP && okD && prof.Partitions != del.Partitions {
		v.errorf(mapField("topics", TopicContentDeliveries)+".partitions",
			"must equal the partitions of %s (%d): both are keyed by user id and co-partitioned", TopicUserProfiles, prof.Partitions)
	}
	if p.DLQ.Partitions < 1 {
		v.errorf("dlq.partitions", "must be at least 1, got %d", p.DLQ.Partitions)
	}
	if p.DLQ.ReplicationFactor < 0 {
		v.errorf("dlq.replication_factor", "must not be negative (0 means the broker's default), got %d", p.DLQ.ReplicationFactor)
	}
	v.retention("dlq.retention", p.DLQ.Retention)
}

func (v *validator) retention(path string, r Retention) {
	if r < 0 && r != Forever {
		v.errorf(path, "must not be negative (write forever to keep records for good), got %s", time.Duration(r))
	}
}

// topicRef checks that a topic named by another section is declared.
func (v *validator) topicRef(path, name string) (Topic, bool) {
	if name == "" {
		v.errorf(path, "required")
		return Topic{}, false
	}
	t, ok := v.p.Topics[name]
	if !ok {
		v.errorf(path, "topic %q is not declared in topics (declared: %s)", name, strings.Join(v.p.TopicNames(), ", "))
	}
	return t, ok
}

var (
	slotRE    = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)
	pgIdentRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,62}$`)
)

func (v *validator) capture() {
	c := &v.p.Capture
	if !pgIdentRE.MatchString(c.Publication) {
		v.errorf("capture.publication", "want a Postgres identifier (letters, digits, _; at most 63), got %q", c.Publication)
	}
	if !slotRE.MatchString(c.Slot) {
		v.errorf("capture.slot", "want a replication slot name (lower-case letters, digits, _; at most 63), got %q", c.Slot)
	}
	if c.Heartbeat <= 0 {
		v.errorf("capture.heartbeat", "must be positive, got %s", c.Heartbeat)
	}
	if c.SlotLagWarning < 0 {
		v.errorf("capture.slot_lag_warning", "must not be negative (0 disables the warning)")
	}
	switch c.Snapshot.Mode {
	case SnapshotInitial, SnapshotNever:
	default:
		v.errorf("capture.snapshot.mode", "want initial or never, got %q", c.Snapshot.Mode)
	}
	if c.Snapshot.ChunkSize < 1 || c.Snapshot.ChunkSize > 1_000_000 {
		v.errorf("capture.snapshot.chunk_size", "must be from 1 to 1000000 rows, got %d", c.Snapshot.ChunkSize)
	}
	if c.Outbox.Prefix != "" {
		if strings.TrimSpace(c.Outbox.Prefix) != c.Outbox.Prefix || strings.ContainsAny(c.Outbox.Prefix, "\x00") {
			v.errorf("capture.outbox.prefix", "must not have surrounding spaces or NUL bytes")
		}
		v.topicRef("capture.outbox.topic", c.Outbox.Topic)
	}

	seen := map[string]int{}
	profile := -1
	for i := range c.Tables {
		v.table(i, &c.Tables[i], seen, &profile)
	}
}

func (v *validator) table(i int, t *Table, seen map[string]int, profile *int) {
	path := fmt.Sprintf("capture.tables[%d]", i)
	schema, rel, ok := strings.Cut(t.Name, ".")
	switch {
	case t.Name == "":
		v.errorf(path+".table", "required: the captured table, schema.table")
	case !ok || !pgIdentRE.MatchString(schema) || !pgIdentRE.MatchString(rel):
		v.errorf(path+".table", "want schema.table with Postgres identifiers, got %q", t.Name)
	default:
		if prev, dup := seen[t.Name]; dup {
			v.errorf(path+".table", "table %s is already captured by capture.tables[%d]", t.Name, prev)
		} else {
			seen[t.Name] = i
		}
	}

	var required string
	switch t.Event {
	case EventContent:
		required = FieldID
	case EventProfile:
		required = FieldUserID
		if *profile >= 0 {
			v.errorf(path+".event", "capture.tables[%d] already holds the user profiles; there is one profile table", *profile)
		} else {
			*profile = i
		}
		if len(t.Attributes) > 0 {
			v.errorf(path+".attributes", "attributes apply to content tables only")
		}
		if t.DefaultKind != "" {
			v.errorf(path+".default_kind", "applies to content tables only")
		}
	case "":
		v.errorf(path+".event", "required: content or profile")
	default:
		v.errorf(path+".event", "want content or profile, got %q", t.Event)
	}

	mapped := map[string]bool{}
	if len(t.Columns) == 0 {
		v.errorf(path+".columns", "required: map event fields to columns (field: column)")
	}
	for _, field := range sortedKeys(t.Columns) {
		col := t.Columns[field]
		fpath := mapField(path+".columns", field)
		if known := ColumnFields(t.Event); known != nil && !contains(known, field) {
			v.errorf(fpath, "unknown field %q for a %s table (known: %s)", field, t.Event, strings.Join(known, ", "))
		}
		if !pgIdentRE.MatchString(col) {
			v.errorf(fpath, "want a column name, got %q", col)
		}
		mapped[col] = true
	}
	if required != "" && len(t.Columns) > 0 {
		if _, ok := t.Columns[required]; !ok {
			v.errorf(path+".columns", "%s is required: the column that identifies the %s", required, t.Event)
		}
	}
	for _, name := range sortedKeys(t.Attributes) {
		col := t.Attributes[name]
		fpath := mapField(path+".attributes", name)
		if !isIdent(name) {
			v.errorf(fpath, "attribute name %q is not an identifier", name)
		}
		if !pgIdentRE.MatchString(col) {
			v.errorf(fpath, "want a column name, got %q", col)
		}
		mapped[col] = true
	}
	keys := map[string]bool{}
	for _, k := range t.Key {
		switch {
		case keys[k]:
			v.errorf(path+".key", "column %q is listed twice", k)
		case !mapped[k]:
			v.errorf(path+".key", "column %q is not in columns", k)
		}
		keys[k] = true
	}

	if t.Event == EventContent || t.Event == EventProfile {
		if topic, ok := v.topicRef(path+".topic", t.Topic); ok && t.Event == EventProfile && !strings.Contains(topic.Cleanup, CleanupCompact) {
			v.errorf(path+".topic", "topic %q holds profiles and must be compacted (cleanup: compact)", t.Topic)
		}
	}
}

// attributes returns the attribute names declared by content tables, or nil
// when there are no content tables (then any attribute is accepted, since
// events come from apps).
func (v *validator) attributes() map[string]bool {
	tables := v.p.ContentTables()
	if len(tables) == 0 {
		return nil
	}
	out := map[string]bool{}
	for _, t := range tables {
		for a := range t.Attributes {
			out[a] = true
		}
	}
	return out
}

// templates checks a list of templates: none empty, attributes declared.
func (v *validator) templates(path string, ts []Template, attrs map[string]bool) {
	for i, t := range ts {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		if t.IsZero() {
			v.errorf(ipath, "empty template")
			continue
		}
		for _, r := range t.Refs() {
			v.attribute(ipath, r, attrs, fmt.Sprintf("template %q", t.String()))
		}
	}
}

func (v *validator) attribute(path string, r Ref, attrs map[string]bool, where string) {
	a := r.Attribute()
	if a == "" || attrs == nil || attrs[a] {
		return
	}
	v.errorf(path, "%s: attribute %q is not mapped by any content table (mapped: %s)", where, a, strings.Join(sortedKeys(attrs), ", "))
}

var (
	targetNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	envNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

func (v *validator) invalidation() {
	inv := &v.p.Invalidation
	attrs := v.attributes()
	v.templates("invalidation.keys", inv.Keys, attrs)
	for i, t := range inv.Keys {
		if strings.ContainsAny(t.Literal(), " \u00a0") {
			v.errorf(fmt.Sprintf("invalidation.keys[%d]", i), "template %q: keys travel space-separated in headers and cannot hold spaces", t.String())
		}
	}
	v.templates("invalidation.urls", inv.URLs, attrs)
	v.templates("invalidation.prefixes", inv.Prefixes, attrs)
	seen := map[string]int{}
	for i := range inv.Targets {
		t := &inv.Targets[i]
		path := fmt.Sprintf("invalidation.targets[%d]", i)
		if !targetNameRE.MatchString(t.Name) {
			v.errorf(path+".name", "want a name of lower-case letters, digits, '_' or '-', got %q", t.Name)
		} else if prev, dup := seen[t.Name]; dup {
			v.errorf(path+".name", "target %q is already declared by invalidation.targets[%d]", t.Name, prev)
		} else {
			seen[t.Name] = i
		}
		v.target(path, t)
	}
}

func (v *validator) target(path string, t *Target) {
	lim, ok := targetTypes[t.Type]
	if !ok {
		if t.Type == "" {
			v.errorf(path+".type", "required: varnish, fastly, cloudflare or http")
		} else {
			v.errorf(path+".type", "want varnish, fastly, cloudflare or http, got %q", t.Type)
		}
		return
	}
	// Keys of other types.
	only := func(key string, set bool, types ...string) {
		if set && !contains(types, t.Type) {
			v.errorf(path+"."+key, "does not apply to %s targets (only %s)", t.Type, strings.Join(types, ", "))
		}
	}
	only("host", t.Host != "", TargetVarnish)
	only("url_keys", t.URLKeys, TargetVarnish)
	only("service_id", t.ServiceID != "", TargetFastly)
	only("zone_id", t.ZoneID != "", TargetCloudflare)
	only("plan", t.Plan != "", TargetCloudflare)
	only("token_env", t.TokenEnv != "", TargetFastly, TargetCloudflare, TargetHTTP)
	only("method", t.Method != "", TargetHTTP)
	only("headers", len(t.Headers) > 0, TargetHTTP)
	only("header_env", len(t.HeaderEnv) > 0, TargetHTTP)
	only("base_url", t.BaseURL != "", TargetFastly, TargetCloudflare, TargetHTTP)
	only("body", !t.Body.IsZero(), TargetHTTP)

	v.httpURL(path+".address", t.Address, true)
	if t.BaseURL != "" {
		v.httpURL(path+".base_url", t.BaseURL, false)
	}
	switch t.Type {
	case TargetFastly:
		if t.ServiceID == "" {
			v.errorf(path+".service_id", "required for fastly targets")
		}
	case TargetCloudflare:
		if t.ZoneID == "" {
			v.errorf(path+".zone_id", "required for cloudflare targets")
		}
		if _, ok := cloudflarePlans[t.Plan]; !ok {
			v.errorf(path+".plan", "want free, pro, business or enterprise, got %q", t.Plan)
		}
		if t.Soft {
			v.errorf(path+".soft", "cloudflare has no soft purge")
		}
	case TargetHTTP:
		switch t.Method {
		case "POST", "PUT", "PATCH", "PURGE", "DELETE":
		default:
			v.errorf(path+".method", "want POST, PUT, PATCH, PURGE or DELETE, got %q", t.Method)
		}
	}
	if lim.needsToken && t.TokenEnv == "" {
		v.errorf(path+".token_env", "required for %s targets: the environment variable that holds the API token", t.Type)
	}
	if t.TokenEnv != "" && !envNameRE.MatchString(t.TokenEnv) {
		v.errorf(path+".token_env", "want the name of an environment variable, got %q", t.TokenEnv)
	}
	for _, h := range sortedKeys(t.Headers) {
		hpath := mapField(path+".headers", h)
		if !headerNameRE.MatchString(h) {
			v.errorf(hpath, "invalid header name %q", h)
		}
		if strings.ContainsFunc(t.Headers[h], isControl) {
			v.errorf(hpath, "control character in the header value")
		}
		if l := strings.ToLower(h); l == "authorization" || l == "proxy-authorization" || l == "cookie" {
			v.errorf(hpath, "secrets never go in the pipeline file: use token_env (sent as a bearer token) or header_env")
		}
	}
	for _, h := range sortedKeys(t.HeaderEnv) {
		hpath := mapField(path+".header_env", h)
		if !headerNameRE.MatchString(h) {
			v.errorf(hpath, "invalid header name %q", h)
		}
		if !envNameRE.MatchString(t.HeaderEnv[h]) {
			v.errorf(hpath, "want the name of an environment variable, got %q", t.HeaderEnv[h])
		}
	}

	if len(t.Purge) == 0 {
		v.errorf(path+".purge", "required: keys, urls and/or prefixes")
	}
	for i, what := range t.Purge {
		ipath := fmt.Sprintf("%s.purge[%d]", path, i)
		switch {
		case what != PurgeKeys && what != PurgeURLs && what != PurgePrefixes:
			v.errorf(ipath, "want keys, urls or prefixes, got %q", what)
		case contains(t.Purge[:i], what):
			v.errorf(ipath, "%s is listed twice", what)
		case what == PurgePrefixes && !lim.prefixes:
			v.errorf(ipath, "%s has no prefix purge", t.Type)
		}
	}
	urlsPurged := t.PurgesURLs() && len(v.p.Invalidation.URLs) > 0 || t.PurgesPrefixes() && len(v.p.Invalidation.Prefixes) > 0
	if urlsPurged && lim.needsBaseURL && t.BaseURL == "" {
		v.errorf(path+".base_url", "required for %s targets that purge urls or prefixes: the site's origin, e.g. https://www.example.com", t.Type)
	}
	if t.Soft && t.Type == TargetVarnish && !t.PurgesKeys() && !(t.URLKeys && t.PurgesURLs()) {
		v.errorf(path+".soft", "varnish soft purges keys only; this target purges no keys")
	}
	if t.URLKeys && !t.PurgesURLs() {
		v.errorf(path+".url_keys", "this target purges no urls")
	}

	v.limit(path+".max_keys", t.MaxKeys, lim.maxKeysLimit, t.Type)
	urlsLimit := lim.urlsLimit
	if t.Type == TargetCloudflare && t.Plan == "enterprise" {
		urlsLimit = 500
	}
	v.limit(path+".max_urls", t.MaxURLs, urlsLimit, t.Type)
	if math.IsNaN(t.Rate) || math.IsInf(t.Rate, 0) || t.Rate < 0 {
		v.errorf(path+".rate", "must be a non-negative number of requests per second (0 means unlimited), got %v", t.Rate)
	}
	if t.Burst < 0 {
		v.errorf(path+".burst", "must not be negative, got %d", t.Burst)
	}
	if t.Concurrency < 1 {
		v.errorf(path+".concurrency", "must be at least 1, got %d", t.Concurrency)
	}
	v.positive(path+".coalesce", t.Coalesce)
	v.positive(path+".timeout", t.Timeout)
	if t.Retry.Attempts < 1 {
		v.errorf(path+".retry.attempts", "must be at least 1 (1 disables retries), got %d", t.Retry.Attempts)
	}
	v.positive(path+".retry.initial_backoff", t.Retry.InitialBackoff)
	v.positive(path+".retry.max_backoff", t.Retry.MaxBackoff)
	if t.Retry.InitialBackoff > 0 && t.Retry.MaxBackoff > 0 && t.Retry.InitialBackoff > t.Retry.MaxBackoff {
		v.errorf(path+".retry.max_backoff", "must not be less than initial_backoff (%s)", t.Retry.InitialBackoff)
	}
	if t.Breaker.Failures < 1 {
		v.errorf(path+".breaker.failures", "must be at least 1, got %d", t.Breaker.Failures)
	}
	v.positive(path+".breaker.cooldown", t.Breaker.Cooldown)
	v.positive(path+".dead_letter_after", t.DeadLetterAfter)
}

func (v *validator) limit(path string, n, limit int, typ string) {
	switch {
	case n < 1:
		v.errorf(path, "must be at least 1, got %d", n)
	case limit > 0 && n > limit:
		v.errorf(path, "%s accepts at most %d a request, got %d", typ, limit, n)
	}
}

func (v *validator) positive(path string, d time.Duration) {
	if d <= 0 {
		v.errorf(path, "must be positive, got %s", d)
	}
}

func (v *validator) httpURL(path, raw string, allowPath bool) {
	if raw == "" {
		v.errorf(path, "required: an http or https URL")
		return
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https"):
		v.errorf(path, "want an http or https URL (http://host:port), got %q", raw)
	case u.Host == "":
		v.errorf(path, "URL %q has no host", raw)
	case u.User != nil:
		v.errorf(path, "secrets never go in the pipeline file: remove the credentials from the URL and use token_env")
	case u.RawQuery != "" || u.Fragment != "":
		v.errorf(path, "URL %q must not have a query or fragment", raw)
	case !allowPath && u.Path != "" && u.Path != "/":
		v.errorf(path, "want the site's origin without a path (https://www.example.com), got %q", raw)
	}
}

var channelRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

func (v *validator) personalization() {
	p := &v.p.Personalization
	attrs := v.attributes()
	rules := []struct {
		name string
		rule *Rule
	}{{"interest", &p.Interest}, {"follow", &p.Follow}, {"segment", &p.Segment}, {"region", &p.Region}, {"locale", &p.Locale}}
	for _, r := range rules {
		path := "personalization." + r.name
		v.weight(path+".weight", r.rule.Weight)
		v.templates(path+".keys", r.rule.Keys, attrs)
	}
	if p.RecencyHalfLife < 0 {
		v.errorf("personalization.recency_half_life", "must not be negative (0 disables the decay), got %s", p.RecencyHalfLife)
	}
	if math.IsNaN(p.Threshold) || math.IsInf(p.Threshold, 0) || p.Threshold < 0 {
		v.errorf("personalization.threshold", "must be a non-negative number, got %v", p.Threshold)
	}
	if p.MaxDeliveriesPerChange < 0 {
		v.errorf("personalization.max_deliveries_per_change", "must not be negative (0 means no cap), got %d", p.MaxDeliveriesPerChange)
	}
	v.positive("personalization.deadline", p.Deadline)
	if len(p.Ops) == 0 {
		v.errorf("personalization.ops", "required: create, update and/or delete")
	}
	for i, op := range p.Ops {
		path := fmt.Sprintf("personalization.ops[%d]", i)
		switch {
		case op != OpCreate && op != OpUpdate && op != OpDelete:
			v.errorf(path, "want create, update or delete, got %q", op)
		case contains(p.Ops[:i], op):
			v.errorf(path, "%s is listed twice", op)
		}
	}
	seen := map[string]int{}
	for i := range p.Broadcast {
		c := &p.Broadcast[i]
		path := fmt.Sprintf("personalization.broadcast[%d]", i)
		if !channelRE.MatchString(c.Name) {
			v.errorf(path+".channel", "want a channel name of lower-case letters, digits, '.', '_' or '-', got %q", c.Name)
		} else if prev, dup := seen[c.Name]; dup {
			v.errorf(path+".channel", "channel %q is already declared by personalization.broadcast[%d]", c.Name, prev)
		} else {
			seen[c.Name] = i
		}
		if len(c.When) == 0 {
			v.errorf(path+".when", "required: the fields and values that make content broadcast (e.g. section: [breaking])")
		}
		for _, field := range sortedKeys(c.When) {
			fpath := mapField(path+".when", field)
			r, err := parseConditionField(field)
			if err != nil {
				v.errorf(fpath, "%v", err)
				continue
			}
			v.attribute(fpath, r, attrs, "condition")
			if len(c.When[field]) == 0 {
				v.errorf(fpath, "list the accepted values")
			}
		}
	}
}

func (v *validator) weight(path string, w float64) {
	if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
		v.errorf(path, "must be a non-negative number (0 disables the rule), got %v", w)
	}
}

// parseConditionField parses a broadcast condition's field: like a template
// reference, but a list field is written without [*] (any element matches).
func parseConditionField(field string) (Ref, error) {
	if strings.HasSuffix(field, "[*]") {
		return Ref{}, fmt.Errorf("write the field without [*]: a list matches when any element does")
	}
	name := field
	for _, p := range []string{"old.", "new."} {
		name = strings.TrimPrefix(name, p)
	}
	if kind, ok := contentTemplateFields[name]; ok && kind == listField {
		field += "[*]"
	}
	r, err := ParseRef(field)
	if err != nil {
		return Ref{}, err
	}
	return r, nil
}
