package httpconn

// Redaction: the values of auth and of headers that come from ${VAR}s are secrets; every error
// the connector returns has them replaced with ***, in every form they could take in a message
// (as written, URL-escaped, JSON-escaped, Go-quoted, and the base64 of basic credentials), including
// messages a server echoes back.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

const mask = "***"

// redactor replaces secrets in text.
type redactor struct {
	r *strings.Replacer // nil when there are no secrets
}

// newRedactor returns a redactor of the given secrets; pairs are basic credentials whose base64
// form ("user:password") is a secret too.
func newRedactor(secrets []string, pairs [][2]string) *redactor {
	var forms []string
	add := func(s string) {
		if s != "" && !slices.Contains(forms, s) {
			forms = append(forms, s)
		}
	}
	for _, s := range secrets {
		add(s)
		add(url.QueryEscape(s))
		add(url.PathEscape(s))
		if j, err := json.Marshal(s); err == nil {
			add(strings.Trim(string(j), `"`))
		}
		add(strings.Trim(strconv.Quote(s), `"`)) // as %q shows it
	}
	for _, p := range pairs {
		add(base64.StdEncoding.EncodeToString([]byte(p[0] + ":" + p[1])))
	}
	if len(forms) == 0 {
		return &redactor{}
	}
	// Longest first: at a position where two forms start, the longer one is replaced whole.
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	args := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		args = append(args, f, mask)
	}
	return &redactor{r: strings.NewReplacer(args...)}
}

// text returns s with secrets masked.
func (r *redactor) text(s string) string {
	if r == nil || r.r == nil {
		return s
	}
	return r.r.Replace(s)
}

// err returns err with secrets masked from its message. The result unwraps only to the
// context's errors, so that callers can tell a cancelled run, and never to an error whose
// message holds a secret.
func (r *redactor) err(err error) error {
	if err == nil {
		return nil
	}
	re := &redactedError{msg: r.text(err.Error())}
	switch {
	case errors.Is(err, context.Canceled):
		re.cause = context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		re.cause = context.DeadlineExceeded
	}
	return re
}

// redactedError is an error whose message has been redacted.
type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }
