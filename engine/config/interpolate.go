package config

import (
	"strings"
)

// Lookup returns an environment variable; os.LookupEnv fits. It is a parameter, never read
// from the process directly, so that tests and embedders control the environment.
type Lookup func(name string) (string, bool)

// Expand replaces ${VAR} and ${VAR:-default} in s. $$ is a literal $. Names of variables that
// are unset and have no default are returned in missing: an unset secret is not a validation
// error, only a run that needs it fails. bad reports a malformed reference.
func Expand(s string, env Lookup) (out string, missing []string, bad string) {
	if !strings.Contains(s, "$") {
		return s, nil, ""
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '{':
		default:
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return s, missing, s[i:]
		}
		ref := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validVarName(name) {
			return s, missing, s[i : i+end+1]
		}
		if v, ok := env(name); ok && (v != "" || !hasDef) {
			b.WriteString(v)
		} else if hasDef {
			b.WriteString(def)
		} else {
			missing = append(missing, name)
		}
		i += end
	}
	return b.String(), missing, ""
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}
