package pipeline

import (
	"fmt"
	"strings"

	"github.com/freshet/freshet/pkg/config"
)

// expandEnv replaces ${VAR} and ${VAR:-default} in s with values read
// through lookup, for the fields that take them (a target's address,
// host and base_url), so that one file serves deployments whose caches
// live at different addresses. "$$" is a literal "$"; a "$" not followed
// by "{" or "$" stays as it is. ${VAR} with VAR unset (or empty) is an
// error; ${VAR:-default} then takes default, which holds no "}".
func expandEnv(s string, lookup config.LookupFunc) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
			continue
		case '{':
		default:
			b.WriteByte(c)
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", fmt.Errorf("unclosed ${ at offset %d of %q", i, s)
		}
		expr := s[i+2 : i+2+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !envNameRE.MatchString(name) {
			return "", fmt.Errorf("${%s}: want ${VAR} or ${VAR:-default} with VAR a variable name", expr)
		}
		v, ok := lookup(name)
		switch {
		case ok && v != "":
			b.WriteString(v)
		case hasDef:
			b.WriteString(def)
		default:
			return "", fmt.Errorf("environment variable %s is not set (write ${%s:-default} to give a default)", name, name)
		}
		i += end + 3
	}
	return b.String(), nil
}
