package pipeline

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/config"
)

const repoPipeline = "../../pipelines/freshet.yaml"

func TestRepoPipelineLoads(t *testing.T) {
	p, err := Load(repoPipeline)
	if err != nil {
		t.Fatalf("the default pipeline does not load:\n%v", err)
	}
	content := p.Table("public.content")
	if content == nil || content.Event != EventContent || content.Topic != TopicContentChanges ||
		!reflect.DeepEqual(content.Key, []string{"id"}) || content.Columns[FieldURL] != "url" {
		t.Errorf("public.content: %+v", content)
	}
	profiles := p.ProfileTable()
	if profiles == nil || profiles.Name != "public.user_profiles" || profiles.Topic != TopicUserProfiles {
		t.Errorf("profile table: %+v", profiles)
	}
	if len(p.Invalidation.Targets) != 1 {
		t.Fatalf("targets: %+v", p.Invalidation.Targets)
	}
	v := p.Invalidation.Targets[0]
	if v.Type != TargetVarnish || v.Address != "http://127.0.0.1:6081" || v.Host != "127.0.0.1:6081" || !v.PurgesKeys() || !v.PurgesURLs() {
		t.Errorf("varnish target: %+v", v)
	}
	if got := p.Channels(); !reflect.DeepEqual(got, []string{"breaking"}) {
		t.Errorf("channels: %v", got)
	}
	if p.Capture.Outbox.Prefix != "freshet.outbox" {
		t.Errorf("outbox: %+v", p.Capture.Outbox)
	}
	if got := p.ContentTopics(); !reflect.DeepEqual(got, []string{TopicContentChanges}) {
		t.Errorf("content topics: %v", got)
	}
	if up := p.Topics[TopicUserProfiles]; up.Cleanup != CleanupCompact || up.Retention != Forever {
		t.Errorf("user.profiles: %+v", up)
	}
}

// The example SQL must create every column the default pipeline maps.
func TestRepoSQLHasMappedColumns(t *testing.T) {
	p, err := Load(repoPipeline)
	if err != nil {
		t.Fatal(err)
	}
	sql, err := os.ReadFile("../../pipelines/freshet.sql")
	if err != nil {
		t.Fatal(err)
	}
	tables := sqlTableColumns(t, string(sql))
	for _, tbl := range p.Capture.Tables {
		cols, ok := tables[tbl.Name]
		if !ok {
			t.Errorf("freshet.sql does not create %s", tbl.Name)
			continue
		}
		for _, m := range []map[string]string{tbl.Columns, tbl.Attributes} {
			for field, col := range m {
				if !cols[col] {
					t.Errorf("%s: %s maps to column %q, which freshet.sql does not create", tbl.Name, field, col)
				}
			}
		}
	}
}

// sqlTableColumns extracts the column names of every CREATE TABLE.
func sqlTableColumns(t *testing.T, sql string) map[string]map[string]bool {
	t.Helper()
	createRE := regexp.MustCompile(`(?s)CREATE TABLE IF NOT EXISTS ([a-z_.]+) \((.*?)\n\);`)
	colRE := regexp.MustCompile(`^\s*([a-z_]+)\s`)
	out := map[string]map[string]bool{}
	for _, m := range createRE.FindAllStringSubmatch(sql, -1) {
		cols := map[string]bool{}
		for _, line := range strings.Split(m[2], "\n") {
			if c := colRE.FindStringSubmatch(line); c != nil {
				cols[c[1]] = true
			}
		}
		out[m[1]] = cols
	}
	if len(out) == 0 {
		t.Fatal("no CREATE TABLE found in freshet.sql")
	}
	return out
}

func TestEmptyFileIsTheDefault(t *testing.T) {
	for _, data := range []string{"", "# nothing\n", "---\n", "~\n", "{}\n"} {
		p, err := Parse("empty.yaml", []byte(data))
		if err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		want := Default()
		want.setDefaults()
		if !samePipeline(p, want) {
			t.Errorf("%q: parsed pipeline differs from Default()", data)
		}
	}
	if err := Default().Validate(); err != nil {
		t.Errorf("Default() is invalid: %v", err)
	}
}

// allTargetsYAML has a target of every type and a few defaults to fill.
const allTargetsYAML = `
topics:
  content.changes: {partitions: 3}
  custom.events: {}
capture:
  tables:
    - table: articles
      event: content
      columns: {id: article_id}
invalidation:
  targets:
    - {name: v, type: varnish, address: "http://cache:6081/"}
    - {name: f, type: fastly, service_id: S, token_env: FASTLY_TOKEN, base_url: "https://www.example.com"}
    - {name: c, type: cloudflare, zone_id: Z, token_env: CF_TOKEN, base_url: "https://www.example.com", plan: business}
    - {name: h, type: http, address: "https://purger.internal/purge", rate: 2.5}
personalization:
  interest: {weight: 0}
`

func TestDefaults(t *testing.T) {
	p, err := Parse("d.yaml", []byte(allTargetsYAML))
	if err != nil {
		t.Fatal(err)
	}
	if cc := p.Topics[TopicContentChanges]; cc.Partitions != 3 || cc.Retention != Retention(7*24*time.Hour) || cc.Cleanup != CleanupDelete {
		t.Errorf("content.changes keeps its other defaults: %+v", cc)
	}
	if ce := p.Topics["custom.events"]; ce.Name != "custom.events" || ce.Partitions != 12 || ce.Cleanup != CleanupDelete {
		t.Errorf("custom topic defaults: %+v", ce)
	}
	tbl := p.Capture.Tables[0]
	if tbl.Name != "public.articles" || tbl.Topic != TopicContentChanges || !reflect.DeepEqual(tbl.Key, []string{"article_id"}) {
		t.Errorf("table defaults: %+v", tbl)
	}
	byName := map[string]Target{}
	for _, tg := range p.Invalidation.Targets {
		byName[tg.Name] = tg
	}
	tests := []struct {
		target                   string
		maxKeys, maxURLs, burst  int
		rate                     float64
		address, host, method    string
		coalesce, timeout        time.Duration
		attempts, failures, conc int
	}{
		{"v", 100, 1, 0, 0, "http://cache:6081/", "cache:6081", "", 20 * time.Millisecond, 5 * time.Second, 8, 5, 4},
		{"f", 256, 1, 0, 0, "https://api.fastly.com", "", "", 20 * time.Millisecond, 5 * time.Second, 8, 5, 4},
		{"c", 100, 100, 50, 10, "https://api.cloudflare.com/client/v4", "", "", 20 * time.Millisecond, 5 * time.Second, 8, 5, 4},
		{"h", 100, 100, 3, 2.5, "https://purger.internal/purge", "", "POST", 20 * time.Millisecond, 5 * time.Second, 8, 5, 4},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			g := byName[tt.target]
			if g.MaxKeys != tt.maxKeys || g.MaxURLs != tt.maxURLs || g.Burst != tt.burst || g.Rate != tt.rate ||
				g.Address != tt.address || g.Host != tt.host || g.Method != tt.method || g.Coalesce != tt.coalesce ||
				g.Timeout != tt.timeout || g.Retry.Attempts != tt.attempts || g.Breaker.Failures != tt.failures ||
				g.Concurrency != tt.conc || !g.PurgesKeys() || !g.PurgesURLs() {
				t.Errorf("got %+v", g)
			}
		})
	}
	if p.Personalization.Interest.Weight != 0 || len(p.Personalization.Interest.Keys) != 1 {
		t.Errorf("an explicit weight 0 must stay 0 and keep the default keys: %+v", p.Personalization.Interest)
	}
	if p.Personalization.Follow.Weight != 2 || p.Personalization.Threshold != 1 || p.Personalization.Deadline != 15*time.Minute {
		t.Errorf("personalization defaults: %+v", p.Personalization)
	}
}

// badCase is a pipeline file with one problem and the error it must give.
type badCase struct {
	name string
	yaml string
	want string // the error must contain this: "bad.yaml:LINE: field: message"
}

var badCases = []badCase{
	{"unknown top-level key", "versoin: 1\n", `bad.yaml:1: versoin: unknown key "versoin" (did you mean "version"?)`},
	{"unknown nested key", "capture:\n  publicaton: x\n", `bad.yaml:2: capture.publicaton: unknown key "publicaton" (did you mean "publication"?)`},
	{"unknown key in a table", "capture:\n  tables:\n    - table: t\n      event: content\n      columns: {id: id}\n      colums: {}\n", `bad.yaml:6: capture.tables[0].colums: unknown key "colums" (did you mean "columns"?)`},
	{"inline secret", "invalidation:\n  targets:\n    - name: f\n      type: fastly\n      token: abc\n", `bad.yaml:5: invalidation.targets[0].token: unknown key "token": secrets never go in the pipeline file`},
	{"duplicate key", "capture:\n  slot: a\n  slot: b\n", `bad.yaml:3: capture.slot: duplicate key (first at line 2)`},
	{"wrong type int", "capture:\n  snapshot:\n    chunk_size: lots\n", `bad.yaml:3: capture.snapshot.chunk_size: want an integer, got the string "lots"`},
	{"wrong type quoted int", "dlq:\n  partitions: \"3\"\n", `bad.yaml:2: dlq.partitions: want an integer, got the string "3"`},
	{"int out of range", "topics:\n  content.changes:\n    replication_factor: 40000\n", `bad.yaml:3: topics[content.changes].replication_factor: integer 40000 out of range`},
	{"wrong type bool", "invalidation:\n  targets:\n    - {name: v, type: varnish, address: 'http://v:1', soft: maybe}\n", `bad.yaml:3: invalidation.targets[0].soft: want true or false, got the string "maybe"`},
	{"wrong type float", "personalization:\n  threshold: high\n", `bad.yaml:2: personalization.threshold: want a number, got the string "high"`},
	{"wrong type duration", "capture:\n  heartbeat: 10\n", `bad.yaml:2: capture.heartbeat: want a duration (500ms, 10s, 1h30m), got "10"`},
	{"wrong type mapping", "capture: [a, b]\n", `bad.yaml:1: capture: want a mapping, got a list`},
	{"wrong type list", "capture:\n  tables: {table: t}\n", `bad.yaml:2: capture.tables: want a list, got a mapping`},
	{"root not a mapping", "- a\n- b\n", `bad.yaml:1: want a mapping, got a list`},
	{"bad retention", "topics:\n  rum.beacons: {retention: soon}\n", `bad.yaml:2: topics[rum.beacons].retention: retention "soon"`},
	{"bad byte size", "capture:\n  slot_lag_warning: 1 gallon\n", `bad.yaml:2: capture.slot_lag_warning: want a number and a unit`},
	{"yaml syntax", "capture:\n  slot: [\n", `bad.yaml:2: invalid YAML: did not find expected node content`},
	{"tabs", "capture:\n\tslot: x\n", `bad.yaml:2: invalid YAML:`},
	{"two documents", "version: 1\n---\nversion: 1\n", `bad.yaml:3: more than one YAML document`},
	{"merge key", "capture:\n  <<: {slot: x}\n", `bad.yaml:2: capture: merge keys (<<) are not supported`},
	{"unsupported version", "version: 2\n", `bad.yaml:1: version: unsupported version 2`},

	// Templates.
	{"template unknown field", "invalidation:\n  keys:\n    - \"content:{id}\"\n    - \"tag:{tagz[*]}\"\n", `bad.yaml:4: invalidation.keys[1]: template "tag:{tagz[*]}": unknown field "tagz[*]"`},
	{"template list without [*]", "invalidation:\n  keys: [\"tag:{tags}\"]\n", `bad.yaml:2: invalidation.keys[0]: template "tag:{tags}": field "tags" is a list: write {tags[*]}`},
	{"template [*] on scalar", "invalidation:\n  urls: [\"{url[*]}\"]\n", `bad.yaml:2: invalidation.urls[0]: template "{url[*]}": field "url" is a single value`},
	{"template unclosed", "invalidation:\n  urls:\n    - \"{old.url\"\n", `bad.yaml:3: invalidation.urls[0]: template "{old.url": unclosed {`},
	{"template stray brace", "invalidation:\n  keys: [\"a}b\"]\n", `bad.yaml:2: invalidation.keys[0]: template "a}b": unmatched }`},
	{"template two lists", "invalidation:\n  keys: [\"{tags[*]}-{surrogate_keys[*]}\"]\n", `more than one list placeholder`},
	{"template empty placeholder", "personalization:\n  follow:\n    keys: [\"x:{}\"]\n", `bad.yaml:3: personalization.follow.keys[0]: template "x:{}": empty placeholder {}`},
	{"template with a space", "invalidation:\n  keys: [\"tag: {tags[*]}\"]\n", `bad.yaml:2: invalidation.keys[0]: template "tag: {tags[*]}": keys travel space-separated in headers and cannot hold spaces`},
	{"template control character", "invalidation:\n  keys: [\"\\r\\r\"]\n", `bad.yaml:2: invalidation.keys[0]: template "\r\r": control character at offset 0`},
	{"template empty", "invalidation:\n  keys: [\"\"]\n", `bad.yaml:2: invalidation.keys[0]: empty template`},
	{"template undeclared attribute", contentTable + "invalidation:\n  keys: [\"author:{attributes.writer}\"]\n", `bad.yaml:10: invalidation.keys[0]: template "author:{attributes.writer}": attribute "writer" is not mapped by any content table (mapped: author)`},
	{"template op with prefix", "invalidation:\n  keys: [\"{old.op}\"]\n", `field "op" takes no old. or new. prefix`},

	// Topics.
	{"negative partitions", "topics:\n  content.changes:\n    partitions: -1\n", `bad.yaml:3: topics[content.changes].partitions: must be at least 1, got -1`},
	{"profiles not compacted", "topics:\n  user.profiles:\n    cleanup: delete\n", `bad.yaml:3: topics[user.profiles].cleanup: must be compact`},
	{"co-partitioning", "topics:\n  content.deliveries:\n    partitions: 6\n", `bad.yaml:3: topics[content.deliveries].partitions: must equal the partitions of user.profiles (12)`},
	{"bad cleanup", "topics:\n  x: {cleanup: shred}\n", `bad.yaml:2: topics.x.cleanup: want delete, compact or "compact,delete", got "shred"`},
	{"dlq topic declared", "topics:\n  content.changes.dlq: {}\n", `bad.yaml:2: topics[content.changes.dlq]: topic names ending in .dlq are the dead-letter topics`},
	{"bad topic name", "topics:\n  \"a b\": {}\n", `bad.yaml:2: topics[a b]: invalid topic name "a b"`},
	{"retention config", "topics:\n  x:\n    configs: {retention.ms: \"1\"}\n", `bad.yaml:3: topics.x.configs[retention.ms]: set it with retention`},
	{"negative retention", "dlq:\n  retention: -5h\n", `bad.yaml:2: dlq.retention: must not be negative`},

	// Capture.
	{"bad slot name", "capture:\n  slot: Freshet-Slot\n", `bad.yaml:2: capture.slot: want a replication slot name`},
	{"zero heartbeat", "capture:\n  heartbeat: 0s\n", `bad.yaml:2: capture.heartbeat: must be positive, got 0s`},
	{"snapshot mode", "capture:\n  snapshot: {mode: sometimes}\n", `bad.yaml:2: capture.snapshot.mode: want initial or never, got "sometimes"`},
	{"chunk size negative", "capture:\n  snapshot:\n    chunk_size: -5\n", `bad.yaml:3: capture.snapshot.chunk_size: must be from 1 to 1000000 rows, got -5`},
	{"outbox topic undeclared", "capture:\n  outbox:\n    topic: nowhere\n", `bad.yaml:3: capture.outbox.topic: topic "nowhere" is not declared in topics`},
	{"table missing", "capture:\n  tables:\n    - event: content\n      columns: {id: id}\n", `bad.yaml:3: capture.tables[0].table: required: the captured table, schema.table`},
	{"event missing", "capture:\n  tables:\n    - table: t\n      columns: {id: id}\n", `bad.yaml:3: capture.tables[0].event: required: content or profile`},
	{"event unknown", "capture:\n  tables:\n    - table: t\n      event: comment\n      columns: {id: id}\n", `bad.yaml:4: capture.tables[0].event: want content or profile, got "comment"`},
	{"columns missing", "capture:\n  tables:\n    - table: t\n      event: content\n", `bad.yaml:3: capture.tables[0].columns: required`},
	{"id not mapped", "capture:\n  tables:\n    - table: t\n      event: content\n      columns:\n        title: headline\n", `bad.yaml:5: capture.tables[0].columns: id is required`},
	{"unknown column field", "capture:\n  tables:\n    - table: t\n      event: content\n      columns:\n        id: id\n        headline: title\n", `bad.yaml:7: capture.tables[0].columns.headline: unknown field "headline" for a content table`},
	{"bad column name", "capture:\n  tables:\n    - table: t\n      event: content\n      columns:\n        id: \"id; drop table\"\n", `bad.yaml:6: capture.tables[0].columns.id: want a column name`},
	{"key column not in columns", "capture:\n  tables:\n    - table: public.content\n      event: content\n      columns: {id: id}\n    - table: public.user_profiles\n      event: profile\n      key: [uid]\n      columns: {user_id: user_id}\n", `bad.yaml:8: capture.tables[1].key: column "uid" is not in columns`},
	{"duplicate table", "capture:\n  tables:\n    - {table: public.content, event: content, columns: {id: id}}\n    - {table: content, event: content, columns: {id: id}}\n", `bad.yaml:4: capture.tables[1].table: table public.content is already captured by capture.tables[0]`},
	{"two profile tables", "capture:\n  tables:\n    - {table: a, event: profile, columns: {user_id: id}}\n    - {table: b, event: profile, columns: {user_id: id}}\n", `bad.yaml:4: capture.tables[1].event: capture.tables[0] already holds the user profiles`},
	{"profile to uncompacted topic", "capture:\n  tables:\n    - {table: a, event: profile, topic: content.changes, columns: {user_id: id}}\n", `bad.yaml:3: capture.tables[0].topic: topic "content.changes" holds profiles and must be compacted`},
	{"table topic undeclared", "capture:\n  tables:\n    - {table: a, event: content, topic: articles, columns: {id: id}}\n", `bad.yaml:3: capture.tables[0].topic: topic "articles" is not declared in topics`},
	{"profile attributes", "capture:\n  tables:\n    - table: a\n      event: profile\n      columns: {user_id: id}\n      attributes: {x: y}\n", `bad.yaml:6: capture.tables[0].attributes: attributes apply to content tables only`},
	{"bad table name", "capture:\n  tables:\n    - {table: \"a.b.c\", event: content, columns: {id: id}}\n", `bad.yaml:3: capture.tables[0].table: want schema.table with Postgres identifiers, got "a.b.c"`},

	// Targets.
	{"target type unknown", "invalidation:\n  targets:\n    - {name: x, type: akamai}\n", `bad.yaml:3: invalidation.targets[0].type: want varnish, fastly, cloudflare or http, got "akamai"`},
	{"target type missing", "invalidation:\n  targets:\n    - {name: x}\n", `bad.yaml:3: invalidation.targets[0].type: required`},
	{"target name", "invalidation:\n  targets:\n    - {name: \"My Cache\", type: varnish, address: \"http://v:1\"}\n", `bad.yaml:3: invalidation.targets[0].name: want a name of lower-case letters`},
	{"target duplicate", "invalidation:\n  targets:\n    - {name: v, type: varnish, address: \"http://v:1\"}\n    - {name: v, type: varnish, address: \"http://w:1\"}\n", `bad.yaml:4: invalidation.targets[1].name: target "v" is already declared by invalidation.targets[0]`},
	{"varnish without address", "invalidation:\n  targets:\n    - name: v\n      type: varnish\n", `bad.yaml:3: invalidation.targets[0].address: required: an http or https URL`},
	{"address not a url", "invalidation:\n  targets:\n    - name: v\n      type: varnish\n      address: \"127.0.0.1:6081\"\n", `bad.yaml:5: invalidation.targets[0].address: want an http or https URL`},
	{"address with credentials", "invalidation:\n  targets:\n    - name: h\n      type: http\n      address: \"https://u:p@h/purge\"\n", `bad.yaml:5: invalidation.targets[0].address: secrets never go in the pipeline file`},
	{"fastly without service", "invalidation:\n  urls: []\n  targets:\n    - {name: f, type: fastly, token_env: T}\n", `bad.yaml:4: invalidation.targets[0].service_id: required for fastly targets`},
	{"fastly without token", "invalidation:\n  urls: []\n  targets:\n    - {name: f, type: fastly, service_id: S}\n", `bad.yaml:4: invalidation.targets[0].token_env: required for fastly targets`},
	{"fastly too many keys", "invalidation:\n  urls: []\n  targets:\n    - name: f\n      type: fastly\n      service_id: S\n      token_env: T\n      max_keys: 300\n", `bad.yaml:8: invalidation.targets[0].max_keys: fastly accepts at most 256 a request, got 300`},
	{"cloudflare too many urls", "invalidation:\n  targets:\n    - {name: c, type: cloudflare, zone_id: Z, token_env: T, base_url: \"https://e.com\", max_urls: 101}\n", `bad.yaml:3: invalidation.targets[0].max_urls: cloudflare accepts at most 100 a request, got 101`},
	{"cloudflare soft", "invalidation:\n  targets:\n    - {name: c, type: cloudflare, zone_id: Z, token_env: T, base_url: \"https://e.com\", soft: true}\n", `bad.yaml:3: invalidation.targets[0].soft: cloudflare has no soft purge`},
	{"cloudflare needs base url", "invalidation:\n  targets:\n    - {name: c, type: cloudflare, zone_id: Z, token_env: T}\n", `bad.yaml:3: invalidation.targets[0].base_url: required for cloudflare targets that purge urls`},
	{"cloudflare plan", "invalidation:\n  targets:\n    - {name: c, type: cloudflare, zone_id: Z, token_env: T, base_url: \"https://e.com\", plan: gold}\n", `bad.yaml:3: invalidation.targets[0].plan: want free, pro, business or enterprise, got "gold"`},
	{"url keys on fastly", "invalidation:\n  targets:\n    - {name: f, type: fastly, service_id: S, token_env: T, base_url: \"https://s\", url_keys: true}\n", `bad.yaml:3: invalidation.targets[0].url_keys: does not apply to fastly targets (only varnish)`},
	{"url keys without urls", "invalidation:\n  targets:\n    - {name: v, type: varnish, address: \"http://v:1\", purge: [keys], url_keys: true}\n", `bad.yaml:3: invalidation.targets[0].url_keys: this target purges no urls`},
	{"key of another type", "invalidation:\n  targets:\n    - name: v\n      type: varnish\n      address: \"http://v:1\"\n      zone_id: Z\n", `bad.yaml:6: invalidation.targets[0].zone_id: does not apply to varnish targets (only cloudflare)`},
	{"token env not a name", "invalidation:\n  targets:\n    - {name: h, type: http, address: \"http://h\", token_env: \"s3cr3t-value!\"}\n", `bad.yaml:3: invalidation.targets[0].token_env: want the name of an environment variable`},
	{"authorization header", "invalidation:\n  targets:\n    - name: h\n      type: http\n      address: \"http://h\"\n      headers:\n        Authorization: Bearer x\n", `bad.yaml:7: invalidation.targets[0].headers.Authorization: secrets never go in the pipeline file`},
	{"header injection", "invalidation:\n  targets:\n    - name: h\n      type: http\n      address: \"http://h\"\n      headers:\n        X-A: \"a\\r\\nX-B: b\"\n", `bad.yaml:7: invalidation.targets[0].headers[X-A]: control character at offset 1 of "a\r\nX-B: b"`},
	{"fastly prefixes", "invalidation:\n  targets:\n    - name: f\n      type: fastly\n      service_id: S\n      token_env: T\n      base_url: \"https://s\"\n      purge: [keys, prefixes]\n", `bad.yaml:8: invalidation.targets[0].purge[1]: fastly has no prefix purge`},
	{"dead letter time", "invalidation:\n  targets:\n    - name: v\n      type: varnish\n      address: \"http://v:1\"\n      dead_letter_after: -1s\n", `bad.yaml:6: invalidation.targets[0].dead_letter_after: must be positive`},
	{"unset address variable", "invalidation:\n  targets:\n    - name: v\n      type: varnish\n      address: ${FRESHET_TEST_SURELY_UNSET_VAR}\n", `bad.yaml:5: invalidation.targets[0].address: environment variable FRESHET_TEST_SURELY_UNSET_VAR is not set`},
	{"purge what", "invalidation:\n  targets:\n    - name: v\n      type: varnish\n      address: \"http://v:1\"\n      purge: [keys, pages]\n", `bad.yaml:6: invalidation.targets[0].purge[1]: want keys, urls or prefixes, got "pages"`},
	{"varnish urls per request", "invalidation:\n  targets:\n    - {name: v, type: varnish, address: \"http://v:1\", max_urls: 2}\n", `bad.yaml:3: invalidation.targets[0].max_urls: varnish accepts at most 1 a request, got 2`},
	{"negative rate", "invalidation:\n  targets:\n    - {name: v, type: varnish, address: \"http://v:1\", rate: -1}\n", `bad.yaml:3: invalidation.targets[0].rate: must be a non-negative number`},
	{"negative coalesce", "invalidation:\n  targets:\n    - {name: v, type: varnish, address: \"http://v:1\", coalesce: -1s}\n", `bad.yaml:3: invalidation.targets[0].coalesce: must be positive, got -1s`},
	{"backoff order", "invalidation:\n  targets:\n    - name: v\n      type: varnish\n      address: \"http://v:1\"\n      retry:\n        initial_backoff: 10s\n        max_backoff: 1s\n", `bad.yaml:8: invalidation.targets[0].retry.max_backoff: must not be less than initial_backoff (10s)`},
	{"breaker failures", "invalidation:\n  targets:\n    - name: v\n      type: varnish\n      address: \"http://v:1\"\n      breaker: {failures: -2}\n", `bad.yaml:6: invalidation.targets[0].breaker.failures: must be at least 1, got -2`},

	// Personalization.
	{"negative threshold", "personalization:\n  threshold: -0.5\n", `bad.yaml:2: personalization.threshold: must be a non-negative number, got -0.5`},
	{"nan threshold", "personalization:\n  threshold: .nan\n", `bad.yaml:2: personalization.threshold: must be a non-negative number, got NaN`},
	{"negative weight", "personalization:\n  follow:\n    weight: -2\n", `bad.yaml:3: personalization.follow.weight: must be a non-negative number`},
	{"infinite weight", "personalization:\n  region: {weight: .inf}\n", `bad.yaml:2: personalization.region.weight: must be a non-negative number`},
	{"negative cap", "personalization:\n  max_deliveries_per_change: -1\n", `bad.yaml:2: personalization.max_deliveries_per_change: must not be negative`},
	{"zero deadline", "personalization:\n  deadline: 0s\n", `bad.yaml:2: personalization.deadline: must be positive`},
	{"negative half-life", "personalization:\n  recency_half_life: -1h\n", `bad.yaml:2: personalization.recency_half_life: must not be negative`},
	{"bad op", "personalization:\n  ops: [create, upsert]\n", `bad.yaml:2: personalization.ops[1]: want create, update or delete, got "upsert"`},
	{"no ops", "personalization:\n  ops: []\n", `bad.yaml:2: personalization.ops: required`},
	{"channel without when", "personalization:\n  broadcast:\n    - channel: all\n", `bad.yaml:3: personalization.broadcast[0].when: required`},
	{"channel bad field", "personalization:\n  broadcast:\n    - channel: x\n      when: {sektion: [news]}\n", `bad.yaml:4: personalization.broadcast[0].when.sektion: unknown field "sektion"`},
	{"channel duplicate", "personalization:\n  broadcast:\n    - {channel: x, when: {section: a}}\n    - {channel: x, when: {section: b}}\n", `bad.yaml:4: personalization.broadcast[1].channel: channel "x" is already declared`},
	{"channel name", "personalization:\n  broadcast:\n    - {channel: \"Breaking News\", when: {section: a}}\n", `bad.yaml:3: personalization.broadcast[0].channel: want a channel name`},
	{"channel no values", "personalization:\n  broadcast:\n    - channel: x\n      when:\n        section: []\n", `bad.yaml:5: personalization.broadcast[0].when.section: list the accepted values`},
}

// contentTable is 8 lines declaring one content table with an author
// attribute.
const contentTable = `capture:
  tables:
    - table: public.content
      event: content
      columns:
        id: id
      attributes:
        author: author_name
`

func TestParseBadFiles(t *testing.T) {
	for _, tt := range badCases {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("bad.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("no error; parsed %+v", p)
			}
			if p != nil {
				t.Error("Parse returned a pipeline with an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
			var pe *Error
			if !errors.As(err, &pe) || pe.File != "bad.yaml" {
				t.Errorf("errors.As(*Error): %+v", pe)
			}
		})
	}
}

func TestParseCollectsEveryError(t *testing.T) {
	data := `capture:
  slot: "Bad Slot"
  heartbeat: -1s
personalization:
  threshold: -1
  broadcast:
    - channel: x
`
	_, err := Parse("multi.yaml", []byte(data))
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		"multi.yaml:2: capture.slot:",
		"multi.yaml:3: capture.heartbeat:",
		"multi.yaml:5: personalization.threshold:",
		"multi.yaml:7: personalization.broadcast[0].when:",
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("error %d = %q, want prefix %q (sorted by line)", i, lines[i], w)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
}

func TestValidateBuiltInCode(t *testing.T) {
	p := Default()
	p.Personalization.Threshold = -1
	p.Capture.Tables = append(p.Capture.Tables, Table{Name: "public.t", Event: EventContent, Columns: map[string]string{"id": "id"}, Key: []string{"uid"}})
	err := p.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"personalization.threshold: must be a non-negative number", `capture.tables[0].key: column "uid" is not in columns`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

// samePipeline compares the exported contents of two pipelines.
func samePipeline(a, b *Pipeline) bool {
	ca, cb := *a, *b
	ca.file, cb.file, ca.lines, cb.lines = "", "", nil, nil
	return reflect.DeepEqual(ca, cb)
}

func TestMarshalRoundTrip(t *testing.T) {
	p, err := Load(repoPipeline)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("marshalled.yaml", out)
	if err != nil {
		t.Fatalf("the marshalled pipeline does not parse:\n%v\n%s", err, out)
	}
	if !samePipeline(p, back) {
		t.Errorf("round trip differs:\n%s", out)
	}
}

func TestCheck(t *testing.T) {
	var buf bytes.Buffer
	if err := Check(&buf, repoPipeline, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"freshet.yaml: ok", "public.content (content) -> content.changes", "varnish (varnish) http://127.0.0.1:6081", "channels [breaking]"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, buf.String())
		}
	}
	buf.Reset()
	if err := Check(&buf, repoPipeline, true); err != nil || !strings.Contains(buf.String(), "\n---\nversion: 1\n") {
		t.Errorf("verbose check: %v\n%s", err, buf.String())
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("capture:\n  tables:\n    - {table: t, event: content, columns: {id: id}, key: [uid]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	err := Check(&buf, bad, false)
	if err == nil || err.Error() != bad+`:3: capture.tables[0].key: column "uid" is not in columns` {
		t.Errorf("check of a bad file: %v", err)
	}
	if buf.Len() != 0 {
		t.Errorf("check of a bad file wrote a summary: %s", buf.String())
	}
}

func TestDLQTopic(t *testing.T) {
	p := Default()
	dlq, ok := p.Topic("content.changes.dlq")
	if !ok || dlq.Name != "content.changes.dlq" || dlq.Partitions != 1 || dlq.Retention != Retention(14*24*time.Hour) {
		t.Errorf("DLQ topic: %+v, %v", dlq, ok)
	}
	if _, ok := p.Topic("nope.dlq"); ok {
		t.Error("the DLQ of an undeclared topic was found")
	}
}

func TestRetention(t *testing.T) {
	tests := []struct {
		in   string
		want Retention
		err  bool
	}{
		{"forever", Forever, false},
		{"7d", Retention(7 * 24 * time.Hour), false},
		{"72h", Retention(72 * time.Hour), false},
		{"90m", Retention(90 * time.Minute), false},
		{"0", 0, false},
		{"-1d", 0, true},
		{"1.5d", 0, true},
		{"week", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var r Retention
			err := r.UnmarshalText([]byte(tt.in))
			if (err != nil) != tt.err || (!tt.err && r != tt.want) {
				t.Fatalf("got %v, %v", r, err)
			}
			if tt.err {
				return
			}
			text, _ := r.MarshalText()
			var back Retention
			if err := back.UnmarshalText(text); err != nil || back != r {
				t.Errorf("round trip %q -> %q -> %v, %v", tt.in, text, back, err)
			}
		})
	}
}

func TestTargetSecretsFromEnvironment(t *testing.T) {
	p, err := Parse("t.yaml", []byte(`
invalidation:
  targets:
    - {name: v, type: varnish, address: "http://v:1"}
    - name: h
      type: http
      address: "https://h/purge"
      token_env: HOOK_TOKEN
      header_env: {X-Api-Key: HOOK_KEY}
`))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOOK_TOKEN": "tok"}
	err = p.CheckEnv(config.MapLookup(env))
	if err == nil || !strings.Contains(err.Error(), "target h: environment variable HOOK_KEY (header_env X-Api-Key) is not set") {
		t.Fatalf("CheckEnv: %v", err)
	}
	env["HOOK_KEY"] = "key"
	if err := p.CheckEnv(config.MapLookup(env)); err != nil {
		t.Fatal(err)
	}
	h := p.Invalidation.Targets[1]
	tok, err := h.Token(config.MapLookup(env))
	if err != nil || tok.Reveal() != "tok" || tok.String() == "tok" {
		t.Errorf("token: %v, %v", tok, err)
	}
	hdr, err := h.SecretHeaders(config.MapLookup(env))
	if err != nil || hdr["X-Api-Key"].Reveal() != "key" {
		t.Errorf("headers: %v, %v", hdr, err)
	}
	if tok, err := p.Invalidation.Targets[0].Token(config.MapLookup(nil)); err != nil || tok.IsSet() {
		t.Errorf("a target without token_env: %v, %v", tok, err)
	}
}

func TestAliasesAndShorthand(t *testing.T) {
	p, err := Parse("a.yaml", []byte(`
x-retry: &retry {attempts: 3, initial_backoff: 1s, max_backoff: 2s}
invalidation:
  keys: "content:{id}"
  targets:
    - {name: a, type: varnish, address: "http://a:1", retry: *retry}
    - {name: b, type: varnish, address: "http://b:1", retry: *retry}
capture:
  tables:
    - {table: t, event: content, columns: {id: id}, key: id}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Invalidation.Keys) != 1 || p.Invalidation.Keys[0].String() != "content:{id}" {
		t.Errorf("a scalar stands for a list of one: %v", p.Invalidation.Keys)
	}
	for _, tg := range p.Invalidation.Targets {
		if tg.Retry.Attempts != 3 || tg.Retry.MaxBackoff != 2*time.Second {
			t.Errorf("alias: %+v", tg.Retry)
		}
	}
	if !reflect.DeepEqual(p.Capture.Tables[0].Key, []string{"id"}) {
		t.Errorf("key shorthand: %v", p.Capture.Tables[0].Key)
	}
	// Only top-level keys may be extensions.
	_, err = Parse("a.yaml", []byte("capture:\n  x-slot: a\n"))
	if err == nil || !strings.Contains(err.Error(), `a.yaml:2: capture.x-slot: unknown key "x-slot"`) {
		t.Errorf("nested x- key: %v", err)
	}
}

// A small file whose aliases expand to a huge tree is refused without
// building it.
func TestAliasBomb(t *testing.T) {
	values := strings.TrimSuffix(strings.Repeat("v, ", 2000), ", ")
	aliases := strings.TrimSuffix(strings.Repeat("*c, ", 2000), ", ")
	data := "x-c: &c {channel: c, when: {section: [" + values + "]}}\npersonalization:\n  broadcast: [" + aliases + "]\n"
	_, err := Parse("bomb.yaml", []byte(data))
	if err == nil || !strings.Contains(err.Error(), ": personalization.broadcast[") ||
		!strings.Contains(err.Error(), "the file expands to more than 100000 nodes") {
		t.Fatalf("got %v", err)
	}
}

func TestCheckCommand(t *testing.T) {
	var buf bytes.Buffer
	p, err := CheckCommand([]string{"-v", repoPipeline}, &buf)
	if err != nil || p == nil || !strings.Contains(buf.String(), "ok") || !strings.Contains(buf.String(), "invalidation:") {
		t.Fatalf("CheckCommand: %v\n%s", err, buf.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("versoin: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckCommand([]string{bad}, &buf); err == nil || !strings.Contains(err.Error(), "bad.yaml:1") {
		t.Errorf("a bad file: %v", err)
	}
}

func TestCloudflarePlan(t *testing.T) {
	if r, b, ok := CloudflarePlan("business"); !ok || r != 10 || b != 50 {
		t.Errorf("business: %v %v %v", r, b, ok)
	}
	if _, _, ok := CloudflarePlan("gold"); ok {
		t.Error("an unknown plan is known")
	}
}

// The default pipeline broadcasts breaking content whether the flag comes
// from Postgres (pgoutput sends a boolean as t) or from an app (true), and
// not otherwise.
func TestRepoPipelineBreakingChannel(t *testing.T) {
	p, err := Load(repoPipeline)
	if err != nil {
		t.Fatal(err)
	}
	for v, want := range map[string]bool{"t": true, "true": true, "f": false, "false": false} {
		c := p.Personalization.Channel(Fields{"attributes.breaking": {v}})
		if got := c != nil && c.Name == "breaking"; got != want {
			t.Errorf("breaking = %q: broadcast %v, want %v", v, got, want)
		}
	}
}
