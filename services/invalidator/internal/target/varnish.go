package target

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// Varnish purges a Varnish with the VCL of deploy/varnish/default.vcl:
// keys with PURGE / and an xkey (or xkey-softpurge) header, a url with
// PURGE <path> and the Host of the cached request, a url prefix with BAN /
// and X-Ban-Url: ^<prefix> (X-Ban-Host narrows it to the host).
type Varnish struct {
	base
	address string // http://host:port, no trailing slash
	host    string // Host header of url purges and bans
}

var _ Target = (*Varnish)(nil)

// Purge implements Target. A request holds keys, or one url, or one
// prefix; what else it holds is an error.
func (v *Varnish) Purge(ctx context.Context, r Request) (Result, error) {
	var req *http.Request
	var err error
	switch {
	case len(r.Keys) > 0 && len(r.URLs)+len(r.Prefixes) == 0:
		req, err = http.NewRequest("PURGE", v.address+"/", nil)
		if err == nil {
			h := "xkey"
			if r.Soft {
				h = "xkey-softpurge"
			}
			req.Header.Set(h, strings.Join(r.Keys, " "))
		}
	case len(r.URLs) == 1 && len(r.Keys)+len(r.Prefixes) == 0:
		if !strings.HasPrefix(r.URLs[0], "/") {
			return Result{}, &Error{Target: v.name, Permanent: true, Msg: fmt.Sprintf("url %q is not a path", r.URLs[0])}
		}
		req, err = http.NewRequest("PURGE", v.address+r.URLs[0], nil)
		if err == nil {
			req.Host = v.host
		}
	case len(r.Prefixes) == 1 && len(r.Keys)+len(r.URLs) == 0:
		req, err = http.NewRequest("BAN", v.address+"/", nil)
		if err == nil {
			req.Host = v.host
			req.Header.Set("X-Ban-Url", "^"+banQuote(r.Prefixes[0]))
			if v.host != "" {
				req.Header.Set("X-Ban-Host", "^"+banQuote(v.host)+"$")
			}
		}
	default:
		return Result{}, &Error{Target: v.name, Permanent: true, Msg: fmt.Sprintf("varnish takes keys, one url or one prefix a request; got %d keys, %d urls, %d prefixes", len(r.Keys), len(r.URLs), len(r.Prefixes))}
	}
	if err != nil {
		return Result{}, &Error{Target: v.name, Permanent: true, Msg: "build request", Err: err}
	}
	status, _, err := v.do(ctx, req)
	return Result{Status: status}, err
}

// banQuote quotes s for a ban regex: regex metacharacters escaped, and
// whitespace and double quotes (which the VCL refuses, and a url holds only
// percent-encoded) written as \x escapes.
func banQuote(s string) string {
	q := regexp.QuoteMeta(s)
	return strings.NewReplacer(" ", `\x20`, "\t", `\x09`, `"`, `\x22`).Replace(q)
}
