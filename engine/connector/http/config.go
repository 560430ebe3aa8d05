package httpconn

// The system settings: base_url, auth, headers, ca_file, timeout, retry and concurrency, read
// from the system file with their positions so that validation points at the offending value.
// The format schema has checked their shapes; this file checks what it cannot: URLs, header
// names, durations, and which ${VAR}s a run will need.

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/diag"
)

// Defaults of the system settings.
const (
	defaultTimeout     = 30 * time.Second
	defaultAttempts    = 6
	defaultMaxWait     = 2 * time.Minute
	defaultBaseDelay   = 500 * time.Millisecond
	defaultConcurrency = 4
	maxConcurrency     = 64
	maxAttempts        = 100
)

// settings are a system's connection settings.
type settings struct {
	system  string   // the system id, for messages
	base    *url.URL // nil when base_url is unusable
	header  http.Header
	secrets []string
	basic   [][2]string // basic credentials: their base64 form is a secret too
	caFile  string
	// vars are the system's vars by name, expanded: every expression sees them as vars.<name>.
	vars map[string]any

	// Credentials obtained during a run (auth.go, oauth.go), at most one of them; and the
	// request that proves the credentials are someone's (check.go).
	login    *loginSettings
	oauth    *oauthSettings
	queryKey *queryKey
	check    *checkSettings

	rate      rateSettings  // rate_limit (budget.go); zero: none
	retryFor  time.Duration // retry.retry_for: retries bounded by time instead of count; 0: off
	errorExpr *respProgram  // error: the server's message in a failure's body

	timeout     time.Duration
	attempts    int
	maxWait     time.Duration
	baseDelay   time.Duration
	concurrency int

	// unset lists the settings that need environment variables that are not set: validation
	// accepts them (a secret is only needed by a run), a run refuses them.
	unset []unsetVar
}

type unsetVar struct {
	key  string
	vars []string
}

// reader reads a system's settings, reporting problems to ds.
type reader struct {
	sys *config.System
	ds  *diag.Diagnostics
	s   *settings
}

// readSettings reads a system's connector settings.
func readSettings(sys *config.System, ds *diag.Diagnostics) *settings {
	r := &reader{sys: sys, ds: ds, s: &settings{
		system: sys.ID.Value, header: http.Header{},
		timeout: defaultTimeout, attempts: defaultAttempts, maxWait: defaultMaxWait,
		baseDelay: defaultBaseDelay, concurrency: defaultConcurrency, vars: map[string]any{},
	}}
	r.baseURL()
	r.auth()
	r.headers()
	r.vars()
	if st, ok := r.top("ca_file"); ok {
		r.s.caFile = st.Value
	}
	if st, ok := r.top("timeout"); ok {
		if d, ok := r.duration(st.Node, st.Value, "timeout", false); ok {
			r.s.timeout = d
		}
	}
	if st, ok := r.top("concurrency"); ok {
		if n, ok := intValue(st.Node, 1, maxConcurrency); ok {
			r.s.concurrency = n
		}
	}
	r.retry()
	r.rateLimit()
	r.errorExpression()
	return r.s
}

// rateLimit reads rate_limit: {requests: 20, per: 2s}.
func (r *reader) rateLimit() {
	n := r.sys.Nodes["rate_limit"]
	if n == nil || n.Kind != config.Map {
		return
	}
	req, ok := intValue(n.Get("requests"), 1, 1_000_000)
	per := n.Get("per")
	if !ok || per == nil {
		return // the format schema reports it
	}
	s, _, ok := r.expand(per, "rate_limit.per")
	if !ok {
		return
	}
	if d, ok := r.duration(per, s, "rate_limit.per", false); ok {
		r.s.rate = rateSettings{requests: req, per: d}
	}
}

// errorExpression reads error: an expression over a failure's body that gives the server's
// message, for shapes the common ones (retry.go) miss.
func (r *reader) errorExpression() {
	st, ok := r.top("error")
	if !ok {
		return
	}
	r.s.errorExpr = respExpr(r.ds, st.Node, "error", `Write an expression over the error response's body that gives its message, like fault.text or map(problems, .field + ": " + .text).`)
}

// top returns a top-level scalar setting, expanded; ok is false when it is absent, not a
// plain value of the right kind (the format schema reports that), or needs unset variables.
func (r *reader) top(key string) (config.Setting, bool) {
	st, ok := r.sys.Settings[key]
	if !ok || st.Node == nil {
		return st, false
	}
	if len(st.Missing) > 0 {
		r.s.unset = append(r.s.unset, unsetVar{key: key, vars: st.Missing})
		return st, false
	}
	return st, true
}

// expand expands a nested scalar's ${VAR}s. fromEnv tells whether the value came from the
// environment (a secret, for headers); ok is false when the value cannot be used.
func (r *reader) expand(n *config.Node, key string) (val string, fromEnv, ok bool) {
	if n == nil || n.Kind != config.Scalar {
		return "", false, false
	}
	v, missing, bad := config.Expand(n.Value, r.sys.Env)
	if bad != "" {
		rng := n.Range
		if i := strings.Index(n.Value, bad); i >= 0 {
			off := len([]rune(n.Value[:i]))
			rng = rangeIn(n, off, off+len([]rune(bad)))
		}
		r.ds.Errorf(rng, "malformed variable reference %q in %q", bad, key).
			WithDetail("Write ${NAME} or ${NAME:-default}, with a name of letters, digits and underscores not starting with a digit; write $$ for a literal $.")
		return "", false, false
	}
	if len(missing) > 0 {
		r.s.unset = append(r.s.unset, unsetVar{key: key, vars: missing})
		return "", true, false
	}
	return v, strings.Contains(n.Value, "${"), true
}

func (r *reader) baseURL() {
	st, ok := r.top("base_url")
	if !ok || st.Node.Tag != "!!str" {
		return
	}
	rng := st.Range
	fix := "Write the API's address, like https://api.example.com or https://example.com/api/v1."
	u, err := url.Parse(st.Value)
	if err != nil {
		r.ds.Errorf(rng, "base_url %q is not a URL", st.Value).WithDetail("%s", fix)
		return
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http" || u.Host == "":
		r.ds.Errorf(rng, "base_url %q must start with https://", st.Value).WithDetail("%s", fix)
		return
	case u.User != nil:
		r.ds.Errorf(rng, "base_url must not hold credentials").
			WithDetail("Put them in auth, from the environment: auth: {basic: {username: ${API_USER}, password: ${API_PASSWORD}}}.")
		return
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		r.ds.Errorf(rng, "base_url must not have a query or a fragment").
			WithDetail("Give query parameters with each operation's query: key.")
		return
	case u.Scheme == "http" && !loopback(u.Hostname()):
		r.ds.Errorf(rng, "base_url uses http:// for %s: use https://", u.Hostname()).
			WithDetail("Requests carry credentials and records; plain http is allowed only for a server on this machine (127.0.0.1, localhost, ::1).")
		return
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	r.s.base = u
}

// loopback reports whether host is this machine.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (r *reader) auth() {
	n := r.sys.Nodes["auth"]
	if n == nil || n.Kind != config.Map {
		return
	}
	var first *config.Node
	for i, k := range n.Keys {
		v := n.Vals[i]
		if k.Value == "check" {
			r.readCheck(v)
			continue
		}
		if first != nil {
			r.ds.Errorf(k.Range, "auth takes one way to authenticate, not %s and %s", first.Value, k.Value).
				WithDetail("Keep one of bearer, basic, header, query, login or oauth2; send other credentials with headers.")
			return
		}
		first = k
		switch k.Value {
		case "login":
			r.readLogin(v)
		case "query":
			r.readQueryKey(v)
		case "oauth2":
			r.readOAuth(v)
		case "bearer":
			tok, _, ok := r.expand(v, "auth.bearer")
			if ok && r.headerValue(v, "auth.bearer", tok) {
				r.s.secrets = append(r.s.secrets, tok)
				r.s.header.Set("Authorization", "Bearer "+tok)
			}
		case "basic":
			user, _, ok1 := r.expand(v.Get("username"), "auth.basic.username")
			pass, _, ok2 := r.expand(v.Get("password"), "auth.basic.password")
			if ok1 && ok2 {
				r.s.secrets = append(r.s.secrets, user, pass)
				r.s.basic = append(r.s.basic, [2]string{user, pass})
				r.s.header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
			}
		case "header":
			name := v.Get("name")
			if name == nil || name.Kind != config.Scalar || !r.headerName(name, "auth.header.name") {
				return
			}
			val, _, ok := r.expand(v.Get("value"), "auth.header.value")
			if ok && r.headerValue(v.Get("value"), "auth.header.value", val) {
				r.s.secrets = append(r.s.secrets, val)
				r.s.header.Set(name.Value, val)
			}
		}
	}
}

// reserved are headers the connector or Go's client sets; headers cannot set them.
var reserved = map[string]string{
	"Host": "the host of base_url", "Content-Length": "the body", "Transfer-Encoding": "the body",
	"Connection": "the HTTP client",
}

func (r *reader) headers() {
	n := r.sys.Nodes["headers"]
	if n == nil || n.Kind != config.Map {
		return
	}
	for i, k := range n.Keys {
		if !r.headerName(k, "headers") {
			continue
		}
		canon := http.CanonicalHeaderKey(k.Value)
		if by, ok := reserved[canon]; ok {
			r.ds.Errorf(k.Range, "headers cannot set %s: it is set from %s", k.Value, by)
			continue
		}
		if r.s.header.Get(canon) != "" || r.authSets(canon) {
			r.ds.Errorf(k.Range, "header %s is set twice", k.Value).
				WithDetail("auth sets its header; headers must not repeat it (names are compared without case).")
			continue
		}
		key := "headers." + k.Value
		v, fromEnv, ok := r.expand(n.Vals[i], key)
		if !ok || !r.headerValue(n.Vals[i], key, v) {
			continue
		}
		if fromEnv {
			r.s.secrets = append(r.s.secrets, v)
		}
		r.s.header.Set(canon, v)
	}
}

// authSets reports whether auth sets the header canon, even when its value is unset.
func (r *reader) authSets(canon string) bool {
	a := r.sys.Nodes["auth"]
	if a == nil || a.Kind != config.Map || len(a.Keys) == 0 {
		return false
	}
	for i, k := range a.Keys {
		switch k.Value {
		case "bearer", "basic", "oauth2":
			return canon == "Authorization"
		case "header":
			if name := a.Vals[i].Get("name"); name != nil {
				return http.CanonicalHeaderKey(name.Value) == canon
			}
		case "login":
			name := "Authorization"
			if h := a.Vals[i].Get("header"); h != nil {
				name = h.Value
			}
			return http.CanonicalHeaderKey(name) == canon
		}
	}
	return false
}

// headerName checks a header name at n.
func (r *reader) headerName(n *config.Node, key string) bool {
	if validHeaderName(n.Value) {
		return true
	}
	r.ds.Errorf(n.Range, "%s: %q is not a header name", key, n.Value).
		WithDetail("A header name is letters, digits and - (like X-Api-Key), with no spaces or colons.")
	return false
}

// headerValue checks a header value; the message never shows it (it may be a secret).
func (r *reader) headerValue(n *config.Node, key, v string) bool {
	if strings.ContainsAny(v, "\r\n\x00") {
		r.ds.Errorf(n.Range, "%s holds a line break or a NUL character", key).
			WithDetail("Header values are one line; check the value (or the environment variable it comes from).")
		return false
	}
	return true
}

// validHeaderName reports whether s is an HTTP token (RFC 9110 section 5.6.2).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// varName is the form of a var's name: an identifier, so that expressions write vars.<name>.
var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// varNames lists the names of a system's vars, sorted, for compiling expressions.
func varNames(sys *config.System) []string {
	if sys == nil {
		return nil
	}
	n := sys.Nodes["vars"]
	if n == nil || n.Kind != config.Map {
		return nil
	}
	var names []string
	for _, k := range n.Keys {
		if varName.MatchString(k.Value) {
			names = append(names, k.Value)
		}
	}
	slices.Sort(names)
	return names
}

// vars reads the system's vars: settings that are not secret (a store page's id, a tenant's
// name) that expressions read as vars.<name>. Their values are text, ${VAR}s expanded. A var
// that uses a variable auth or a header also uses is refused: vars reach paths, bodies and
// messages, and are never masked.
func (r *reader) vars() {
	n := r.sys.Nodes["vars"]
	if n == nil || n.Kind != config.Map {
		return
	}
	secret := r.secretVariables()
	for i, k := range n.Keys {
		v := n.Vals[i]
		if !varName.MatchString(k.Value) || v.Kind != config.Scalar || v.Tag == "!!null" {
			continue // the format schema reports it
		}
		key := "vars." + k.Value
		if used := slices.DeleteFunc(variables(v.Value), func(name string) bool { return secret[name] == "" }); len(used) > 0 {
			r.ds.Errorf(v.Range, "%s uses ${%s}, which %s uses: vars are not for secrets", key, used[0], secret[used[0]]).
				WithDetail("A var reaches request paths and bodies, and messages show it as it is; a secret goes only in auth or headers, which are sent in headers and never shown.")
			continue
		}
		val, _, ok := r.expand(v, key)
		if ok {
			r.s.vars[k.Value] = val
		}
	}
}

// secretVariables returns the environment variables that auth and headers use (their values
// are secrets), each with the key that uses it.
func (r *reader) secretVariables() map[string]string {
	out := map[string]string{}
	var walk func(n *config.Node, key string)
	walk = func(n *config.Node, key string) {
		if n == nil {
			return
		}
		switch n.Kind {
		case config.Scalar:
			for _, name := range variables(n.Value) {
				if out[name] == "" {
					out[name] = key
				}
			}
		case config.Map:
			for i, k := range n.Keys {
				walk(n.Vals[i], key+"."+k.Value)
			}
		}
	}
	walk(r.sys.Nodes["auth"], "auth")
	if h := r.sys.Nodes["headers"]; h != nil && h.Kind == config.Map {
		for i, k := range h.Keys {
			walk(h.Vals[i], "headers."+k.Value)
		}
	}
	return out
}

// variables lists the environment variables a value refers to with ${VAR} or ${VAR:-default}.
func variables(s string) []string {
	var names []string
	config.Expand(s, func(name string) (string, bool) {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
		return "", false
	})
	return names
}

func (r *reader) retry() {
	n := r.sys.Nodes["retry"]
	if n == nil || n.Kind != config.Map {
		return
	}
	if v := n.Get("attempts"); v != nil {
		if i, ok := intValue(v, 1, maxAttempts); ok {
			r.s.attempts = i
		}
	}
	for _, k := range []string{"max_wait", "base_delay", "retry_for"} {
		v := n.Get(k)
		if v == nil || v.Tag != "!!str" {
			continue
		}
		s, _, ok := r.expand(v, "retry."+k)
		if !ok {
			continue
		}
		if d, ok := r.duration(v, s, "retry."+k, true); ok {
			switch k {
			case "max_wait":
				r.s.maxWait = d
			case "base_delay":
				r.s.baseDelay = d
			default:
				r.s.retryFor = d
			}
		}
	}
}

// duration parses a Go duration; zero is allowed when zeroOK.
func (r *reader) duration(n *config.Node, s, key string, zeroOK bool) (time.Duration, bool) {
	if n.Tag != "!!str" {
		return 0, false // the format schema reports a number without a unit
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		r.ds.Errorf(n.Range, "%s: %q is not a duration", key, s).
			WithDetail("Write a number with a unit: 30s, 1m30s, 500ms, 2m.")
		return 0, false
	case d < 0 || d == 0 && !zeroOK:
		r.ds.Errorf(n.Range, "%s must be more than 0", key)
		return 0, false
	}
	return d, true
}

// intValue reads an integer setting within [lo, hi]; the format schema reports the others.
func intValue(n *config.Node, lo, hi int) (int, bool) {
	if n == nil || n.Kind != config.Scalar || n.Tag != "!!int" {
		return 0, false
	}
	i, err := strconv.Atoi(strings.ReplaceAll(n.Value, "_", ""))
	if err != nil || i < lo || i > hi {
		return 0, false
	}
	return i, true
}

// unsetError is the error of a run that needs unset variables.
func (s *settings) unsetError() error {
	if len(s.unset) == 0 {
		return nil
	}
	u := s.unset[0]
	vars, verb := "variable "+u.vars[0], "is"
	if len(u.vars) > 1 {
		vars, verb = "variables "+strings.Join(u.vars, ", "), "are"
	}
	key, _, _ := strings.Cut(u.key, ".")
	return &settingErr{key: key, msg: fmt.Sprintf("%s needs the environment %s, which %s not set", u.key, vars, verb),
		fix: "Set the variable, or give it a default: ${NAME:-default}."}
}

// settingErr becomes a connector.SettingError at Open.
type settingErr struct {
	key, msg, fix string
}

func (e *settingErr) Error() string { return e.msg }
