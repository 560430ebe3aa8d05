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
	"sync"
	"unicode/utf8"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

const mask = "***"

// redactor replaces secrets in text. Secrets learnt during a run (a login's session token, an
// OAuth2 access or refresh token) are added with add, so that they are masked like the ones of
// the system file from then on.
type redactor struct {
	mu      sync.RWMutex
	r       *strings.Replacer // nil when there are no secrets
	secrets []string
	pairs   [][2]string
}

// minPrefix is the shortest start of a secret that is masked on its own: a server that echoes
// a token's first 10 characters ("token abcdef1234... is invalid") leaks most of a short one.
const minPrefix = 10

// minEncoded is the shortest part of a secret's base64 form that is masked inside a longer
// base64 text: shorter runs could be any text's.
const minEncoded = 8

// newRedactor returns a redactor of the given secrets; pairs are basic credentials whose base64
// form ("user:password") is a secret too. Each secret is masked in the forms a server or a
// message echoes it: as written, lowercased and uppercased, URL-, JSON- and Go-escaped, its
// first 10 or more characters, and base64-encoded (standard and URL alphabets, with and without
// padding, alone or inside the base64 of a longer text).
func newRedactor(secrets []string, pairs [][2]string) *redactor {
	return &redactor{r: replacer(secrets, pairs), secrets: secrets, pairs: pairs}
}

// add masks more secrets from now on.
func (r *redactor) add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.secrets)
	for _, s := range secrets {
		if s != "" && !slices.Contains(r.secrets, s) {
			r.secrets = append(r.secrets, s)
		}
	}
	if len(r.secrets) > n {
		r.r = replacer(r.secrets, r.pairs)
	}
}

// replacer masks the forms of secrets and of basic credentials; nil when there are none.
func replacer(secrets []string, pairs [][2]string) *strings.Replacer {
	var forms []string
	add := func(s string) {
		if s != "" && !slices.Contains(forms, s) {
			forms = append(forms, s)
		}
	}
	plain := func(s string) {
		for _, c := range []string{s, strings.ToLower(s), strings.ToUpper(s)} {
			add(c)
			for n := minPrefix; n < len(c); n++ {
				if utf8.RuneStart(c[n]) {
					add(c[:n])
				}
			}
		}
	}
	for _, s := range secrets {
		plain(s)
		add(url.QueryEscape(s))
		add(url.PathEscape(s))
		if j, err := json.Marshal(s); err == nil {
			add(strings.Trim(string(j), `"`))
		}
		add(strings.Trim(strconv.Quote(s), `"`)) // as %q shows it
		base64Forms(s, add)
	}
	for _, p := range pairs {
		b := base64.StdEncoding.EncodeToString([]byte(p[0] + ":" + p[1]))
		plain(b)
		base64Forms(b, add)
		base64Forms(p[0]+":"+p[1], add)
	}
	if len(forms) == 0 {
		return nil
	}
	// Longest first: at a position where two forms start, the longer one is replaced whole.
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	args := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		args = append(args, f, mask)
	}
	return strings.NewReplacer(args...)
}

// base64Forms adds the base64 forms of s: whole, in both alphabets with and without padding,
// and the characters that encode s alone when s sits at any of the three byte offsets of a
// longer encoded text (a server that base64-encodes "token=<secret>").
func base64Forms(s string, add func(string)) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		add(enc.EncodeToString([]byte(s)))
		raw := enc.WithPadding(base64.NoPadding)
		add(raw.EncodeToString([]byte(s)))
		for k := range 3 {
			e := raw.EncodeToString([]byte(strings.Repeat("\x00", k) + s))
			// Characters [from, to) hold bits of s only: from the first whole sextet after the
			// k bytes of padding, to the last whole one before the end.
			from, to := (8*k+5)/6, 8*(k+len(s))/6
			if to-from >= minEncoded {
				add(e[from:to])
			}
		}
	}
}

// text returns s with secrets masked.
func (r *redactor) text(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	rep := r.r
	r.mu.RUnlock()
	if rep == nil {
		return s
	}
	return rep.Replace(s)
}

// err returns err with secrets masked from its message. The result is a *connector.RecordError
// when err is one, and otherwise unwraps only to the context's errors, so that callers can tell
// a cancelled run, and never to an error whose message holds a secret.
func (r *redactor) err(err error) error {
	if err == nil {
		return nil
	}
	if rec, ok := err.(*connector.RecordError); ok {
		// The engine tells the records the server refused by this type: it stays, its
		// reason redacted.
		return &connector.RecordError{Index: rec.Index, Err: r.err(rec.Err)}
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
