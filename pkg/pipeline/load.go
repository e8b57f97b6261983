package pipeline

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/freshet/freshet/pkg/config"
	"gopkg.in/yaml.v3"
)

// Load reads, parses and validates the pipeline file at path. Errors name
// the path, line and field: see [Parse].
func Load(path string) (*Pipeline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	return Parse(path, data)
}

// Parse parses a pipeline file's contents; name is the file name used in
// errors. The file is applied on top of [Default], defaults are filled in,
// then the whole pipeline is validated. A bad file yields every problem
// found, each an [*Error] ("pipelines/freshet.yaml:14:
// capture.tables[1].key: column "uid" is not in columns"), joined with
// errors.Join; unknown keys are errors. The result is nil on error.
func Parse(name string, data []byte) (*Pipeline, error) {
	return ParseEnv(name, data, os.LookupEnv)
}

// ParseEnv is Parse reading the variables of ${VAR} and ${VAR:-default}
// (in a target's address, host and base_url) through lookup instead of
// the process environment. An unset variable without a default is an
// error naming the file, line and field.
func ParseEnv(name string, data []byte, lookup config.LookupFunc) (*Pipeline, error) {
	p := Default()
	p.file = name
	p.lines = map[string]int{}
	d := &decoder{file: name, lines: p.lines, lookup: lookup}

	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, syntaxError(name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		line := extra.Line
		if len(extra.Content) > 0 {
			line = extra.Content[0].Line
		}
		return nil, &Error{File: name, Line: line, Msg: "more than one YAML document; a pipeline file holds one"}
	} else if !errors.Is(err, io.EOF) {
		return nil, syntaxError(name, err)
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root := doc.Content[0]
		if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
			// An empty document: the defaults.
		} else {
			d.decode(root, reflect.ValueOf(p).Elem(), "", 0)
		}
	}
	if len(d.errs) > 0 {
		// Semantic checks on a half-decoded file would mostly repeat them.
		sortErrors(d.errs)
		errs := make([]error, len(d.errs))
		for i, e := range d.errs {
			errs[i] = e
		}
		return nil, joinErrors(errs)
	}
	p.setDefaults()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a yaml.v3 parse error into an *Error with its line.
func syntaxError(name string, err error) error {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: name, Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return &Error{File: name, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// Marshal returns p as a pipeline file with every setting explicit,
// defaults included. Parse reads it back to an equal Pipeline.
func (p *Pipeline) Marshal() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(p); err != nil {
		return nil, fmt.Errorf("pipeline: encode: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("pipeline: encode: %w", err)
	}
	return b.Bytes(), nil
}

// Check loads the pipeline file at path and writes a short summary of it to
// w, for a service's check command: the error, when there is one, lists
// every problem with file, line and field (write it to stderr and exit 1).
// With verbose, the summary is followed by the whole pipeline, defaults
// included.
func Check(w io.Writer, path string, verbose bool) error {
	p, err := Load(path)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, p.Summary()); err != nil {
		return fmt.Errorf("pipeline: write summary: %w", err)
	}
	if !verbose {
		return nil
	}
	out, err := p.Marshal()
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "---\n%s", out); err != nil {
		return fmt.Errorf("pipeline: write pipeline: %w", err)
	}
	return nil
}

// DefaultPath is the pipeline file a service reads when FRESHET_PIPELINE
// is not set.
const DefaultPath = "pipelines/freshet.yaml"

// CheckCommand runs a service's check command: args are "[-v] [file]",
// the file defaulting to $FRESHET_PIPELINE, then DefaultPath. It writes
// Check's summary to stdout and returns the loaded pipeline, for a service
// that checks more (the invalidator checks its targets' variables).
func CheckCommand(args []string, stdout io.Writer) (*Pipeline, error) {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stdout)
	verbose := fs.Bool("v", false, "print the whole pipeline, defaults included")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	path := os.Getenv(config.Prefix + "PIPELINE")
	if path == "" {
		path = DefaultPath
	}
	if fs.NArg() > 0 {
		path = fs.Arg(0)
	}
	if err := Check(stdout, path, *verbose); err != nil {
		return nil, err
	}
	return Load(path)
}

// Summary describes the pipeline in a few lines: tables, targets, channels,
// topics.
func (p *Pipeline) Summary() string {
	var b strings.Builder
	name := p.file
	if name == "" {
		name = "pipeline"
	}
	fmt.Fprintf(&b, "%s: ok\n", name)
	fmt.Fprintf(&b, "  capture: publication %s, slot %s, %d table(s)\n", p.Capture.Publication, p.Capture.Slot, len(p.Capture.Tables))
	for _, t := range p.Capture.Tables {
		fmt.Fprintf(&b, "    %s (%s) -> %s, key %s\n", t.Name, t.Event, t.Topic, strings.Join(t.Key, ","))
	}
	if p.Capture.Outbox.Prefix != "" {
		fmt.Fprintf(&b, "    outbox %q -> %s\n", p.Capture.Outbox.Prefix, p.Capture.Outbox.Topic)
	}
	fmt.Fprintf(&b, "  invalidation: %d key template(s), %d url template(s), %d prefix template(s), %d target(s)\n",
		len(p.Invalidation.Keys), len(p.Invalidation.URLs), len(p.Invalidation.Prefixes), len(p.Invalidation.Targets))
	for _, t := range p.Invalidation.Targets {
		fmt.Fprintf(&b, "    %s (%s) %s\n", t.Name, t.Type, t.Address)
	}
	fmt.Fprintf(&b, "  personalization: threshold %g, deadline %s, channels [%s]\n",
		p.Personalization.Threshold, p.Personalization.Deadline, strings.Join(p.Channels(), ", "))
	fmt.Fprintf(&b, "  topics: %s\n", strings.Join(p.TopicNames(), ", "))
	return b.String()
}
