package origin

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/url"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// render returns the body and content type of pg in format.
func render(pg *page, format string) ([]byte, string, error) {
	if format == formatJSON {
		b, err := json.Marshal(pg)
		return append(b, '\n'), contentTypeJSON, err
	}
	var b bytes.Buffer
	err := pageTemplate.Execute(&b, pg)
	return b.Bytes(), contentTypeHTML, err
}

var funcs = template.FuncMap{
	// link is the path of a list page; the name is escaped as one segment.
	"link": func(kind, name string) string { return "/" + kind + "/" + url.PathEscape(name) },
}

// The HTML is deliberately plain: a reference of what is tagged, not a
// theme. data-* attributes let tests and scripts find the parts.
var pageTemplate = template.Must(template.New("page").Funcs(funcs).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{if .Item}}{{.Item.Title}}{{else}}{{.Kind}}: {{.Name}}{{end}} · Freshet origin</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#222}
a{color:#0b63c4}.meta{color:#666;font-size:.9em}.keys{font:12px monospace;color:#888}</style>
</head><body>
{{- with .Item}}
<article data-id="{{.ID}}" data-version="{{.Version}}">
<h1>{{.Title}}</h1>
{{if .Summary}}<p class="summary"><em>{{.Summary}}</em></p>{{end}}
{{if .Body}}<div class="body">{{.Body}}</div>{{end}}
<p class="meta">{{if .Kind}}{{.Kind}}{{end}}{{with .Section}} in <a href="{{link "section" .}}">{{.}}</a>{{end}}{{with index .Attributes "author"}} by <a href="{{link "author" .}}">{{.}}</a>{{end}}{{with .Version}} · version {{.}}{{end}}</p>
{{if .Tags}}<p class="tags">{{range .Tags}}<a href="{{link "tag" .}}">#{{.}}</a> {{end}}</p>{{end}}
</article>
{{- else}}
<h1>{{.Kind}}: {{.Name}}</h1>
{{if .Items}}<ul>{{range .Items}}
<li data-id="{{.ID}}"><a href="{{.URL}}">{{.Title}}</a>{{with .Summary}}: {{.}}{{end}}</li>{{end}}
</ul>{{else}}<p>Nothing here yet.</p>{{end}}
{{- end}}
<p class="keys">surrogate keys: {{range .Keys}}{{.}} {{end}}</p>
</body></html>
`))

var errorTemplate = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Code}} {{.Status}}</title></head>
<body><h1>{{.Code}} {{.Status}}</h1><p>{{.Message}}: {{.Path}}</p></body></html>
`))

// metrics of the handler.
type metrics struct {
	requests *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "freshet_origin_requests_total",
		Help: "Requests answered by the reference origin, by page kind (content, tag, section, author, none) and status code.",
	}, []string{"page", "code"})}
	if reg != nil {
		if err := reg.Register(m.requests); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(kind string, code int) {
	m.requests.WithLabelValues(kind, strconv.Itoa(code)).Inc()
}
