package httpconn

// Credentials that are obtained during a run: a session login (POST a path with secrets from
// the environment, take the token from the response), OAuth2 (client credentials, or a refresh
// token that the provider may rotate), and an API key in a query parameter. Each is an
// authenticator: the client asks it for the current credentials before every try, and tells it
// when the server refused them (401, 403), once per request, so that an expired session logs in
// again and the request goes on. Every token learnt is added to the redactor first.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// credential is what an authenticator puts on a request: headers and query parameters. gen
// identifies it, so that a refusal renews only the credentials it was sent with.
type credential struct {
	gen    uint64
	header http.Header
	query  url.Values
}

// authenticator gives the credentials of a request.
type authenticator interface {
	// current returns the credentials to send now, obtaining them first when there are none
	// yet or they are about to expire.
	current(ctx context.Context) (credential, error)
	// renew is told that the server refused credentials gen: it obtains new ones (unless newer
	// ones are there already) and reports whether the request should be sent again.
	renew(ctx context.Context, gen uint64) (bool, error)
}

// queryKey is an API key sent in a query parameter. The redactor masks it in every message,
// and messages show URLs without their query.
type queryKey struct {
	name, value string
}

func (k *queryKey) current(context.Context) (credential, error) {
	return credential{query: url.Values{k.name: {k.value}}}, nil
}

func (k *queryKey) renew(context.Context, uint64) (bool, error) { return false, nil }

// loginSettings are auth.login's.
type loginSettings struct {
	method, path string
	body         map[string]any // values from the environment: secrets
	token        *respProgram   // where the token is in the response
	header       string         // the header it goes in
	scheme       string         // what goes before it ("Bearer"), "" for none
	lifetime     time.Duration  // 0: from expires_in, else the token's JWT exp
}

// respProgram is an expression over a response body: the names are the body's top-level
// properties, and body is the whole body.
type respProgram struct {
	prog *vm.Program
	src  string
}

func compileResp(src string) (*respProgram, error) {
	prog, err := expr.Compile(src, expr.AllowUndefinedVariables(), expr.MaxNodes(maxExprNodes), expr.DisableBuiltin("repeat"))
	if err != nil {
		return nil, err
	}
	return &respProgram{prog: prog, src: src}, nil
}

// respExpr compiles the expression of the scalar n, for key; a problem is reported at its
// position in the value, worded as for the operations' expressions.
func respExpr(ds *diag.Diagnostics, n *config.Node, key, fix string) *respProgram {
	prog, err := compileResp(n.Value)
	if err == nil {
		return prog
	}
	r := rangeIn(n, 0, utf8.RuneCountInString(n.Value))
	msg := err.Error()
	var fe *file.Error
	if errors.As(err, &fe) {
		msg = fe.Message
		r = rangeIn(n, fe.From, max(fe.To, fe.From+1))
	}
	msg = strings.ReplaceAll(oneLine(msg), "unexpected token EOF", "unexpected end of the expression")
	msg = unexpectedToken.ReplaceAllString(msg, `unexpected "$1"`)
	d := ds.Errorf(r, "%s: %s", key, msg)
	if fix != "" {
		d.WithDetail("%s", fix)
	}
	return nil
}

func (p *respProgram) run(body any) (any, error) {
	env := map[string]any{}
	if m, ok := body.(map[string]any); ok {
		for k, v := range m {
			env[k] = v
		}
	}
	if _, ok := env["body"]; !ok {
		env["body"] = body
	}
	out, err := expr.Run(p.prog, env)
	if err != nil {
		return nil, fmt.Errorf("expression %s: %s", quoteExpr(p.src), oneLine(err.Error()))
	}
	return out, nil
}

// login logs in with a session request and keeps its token.
type login struct {
	s   *loginSettings
	cl  *client
	red *redactor

	mu      sync.Mutex
	token   string
	gen     uint64
	expires time.Time // zero: unknown, renewed only when refused
	renewAt time.Time
}

func (l *login) current(ctx context.Context) (credential, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.token == "" || !l.renewAt.IsZero() && !l.cl.now().Before(l.renewAt) {
		if err := l.login(ctx); err != nil {
			return credential{}, err
		}
	}
	return l.credential(), nil
}

func (l *login) credential() credential {
	v := l.token
	if l.s.scheme != "" {
		v = l.s.scheme + " " + v
	}
	return credential{gen: l.gen, header: http.Header{http.CanonicalHeaderKey(l.s.header): {v}}}
}

func (l *login) renew(ctx context.Context, gen uint64) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if gen != l.gen {
		return true, nil // another request logged in again meanwhile
	}
	if err := l.login(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// login sends the login request and reads the token and its lifetime.
func (l *login) login(ctx context.Context) error {
	u, err := url.Parse(l.cl.s.base.String() + l.s.path)
	if err != nil {
		return fmt.Errorf("%s: auth.login.path: %w", l.cl.s.system, err)
	}
	body, err := json.Marshal(l.s.body)
	if err != nil {
		return fmt.Errorf("%s: auth.login.body: %w", l.cl.s.system, err)
	}
	cl := &call{what: l.cl.s.system + " login", method: l.s.method, url: u, body: body, repeatable: true, anonymous: true}
	resp, err := l.cl.do(ctx, cl)
	if err != nil {
		return fmt.Errorf("logging in: %w", err)
	}
	v, err := l.cl.decode(cl, resp)
	if err != nil {
		return fmt.Errorf("logging in: %w", err)
	}
	got, err := l.s.token.run(v)
	if err != nil {
		return fmt.Errorf("%s: auth.login.token: %w", cl.op(), err)
	}
	tok, ok := got.(string)
	if !ok || tok == "" {
		return fmt.Errorf("%s: auth.login.token: the response gives %s, not the token (its keys: %s)", cl.op(), resultKind(got), keyList(asMap(v)))
	}
	if strings.ContainsAny(tok, "\r\n\x00") {
		return fmt.Errorf("%s: auth.login.token: the token holds a line break or a NUL character", cl.op())
	}
	l.red.add(tok)
	now := l.cl.now()
	l.token = tok
	l.gen++
	l.expires = time.Time{}
	switch {
	case l.s.lifetime > 0:
		l.expires = now.Add(l.s.lifetime)
	default:
		if secs, ok := numberOf(at(v, "expires_in")); ok && secs > 0 {
			l.expires = now.Add(time.Duration(secs * float64(time.Second)))
		} else if exp, ok := jwtExpiry(tok); ok {
			l.expires = exp
		}
	}
	l.renewAt = renewTime(now, l.expires)
	return nil
}

// renewTime is when credentials that expire at exp (zero: unknown) are renewed: a fifth of
// their lifetime before, at most 30 s, so that a request is never sent with a token about to
// lapse on its way.
func renewTime(now, exp time.Time) time.Time {
	if exp.IsZero() {
		return time.Time{}
	}
	margin := min(exp.Sub(now)/5, 30*time.Second)
	return exp.Add(-max(margin, 0))
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// numberOf reads a JSON number (or numeric text) as a float64.
func numberOf(v any, ok bool) (float64, bool) {
	if !ok {
		return 0, false
	}
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case float64:
		return x, true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil
	}
	return 0, false
}

// jwtExpiry reads the exp claim of a JWT (without verifying it: the server does that; the
// connector only wants to know when to log in again).
func jwtExpiry(tok string) (time.Time, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(raw, &claims) != nil || claims.Exp == "" {
		return time.Time{}, false
	}
	f, err := claims.Exp.Float64()
	if err != nil || f <= 0 {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// readLogin reads auth.login.
func (r *reader) readLogin(n *config.Node) {
	ls := &loginSettings{method: http.MethodPost, header: "Authorization", scheme: "Bearer", body: map[string]any{}}
	ok := true
	if m, isStr := str(n.Get("method")); isStr {
		ls.method = m
	}
	if p, isStr := str(n.Get("path")); isStr {
		if p, _, ok = r.expand(n.Get("path"), "auth.login.path"); !ok {
			return
		}
		if !strings.HasPrefix(p, "/") {
			r.ds.Errorf(n.Get("path").Range, "auth.login.path must start with /").
				WithDetail("The path is appended to base_url, like /api/collections/users/auth-with-password.")
			ok = false
		}
		ls.path = p
	}
	if b := n.Get("body"); b != nil && b.Kind == config.Map {
		anyEnv := false
		for i, k := range b.Keys {
			v, _, vok := r.expand(b.Vals[i], "auth.login.body."+k.Value)
			anyEnv = anyEnv || strings.Contains(b.Vals[i].Value, "${")
			if !vok {
				ok = false
				continue
			}
			// Every value of a login is a credential (a user name too): all are masked.
			r.s.secrets = append(r.s.secrets, v)
			ls.body[k.Value] = v
		}
		if !anyEnv && len(b.Keys) > 0 {
			r.ds.Warnf(b.Range, "auth.login.body takes no value from the environment: its password sits in the system file").
				WithDetail(`Write secrets as ${NAME}: body: {identity: "${PB_EMAIL}", password: "${PB_PASSWORD}"}.`)
		}
	}
	ls.token, _ = compileResp("token")
	if _, isStr := str(n.Get("token")); isStr {
		ls.token = respExpr(r.ds, n.Get("token"), "auth.login.token", "Write where the token is in the login's response, like token or data.access_token.")
		ok = ok && ls.token != nil
	}
	if h := n.Get("header"); h != nil {
		if !r.headerName(h, "auth.login.header") {
			ok = false
		}
		ls.header = h.Value
	}
	if s := n.Get("scheme"); s != nil && s.Kind == config.Scalar {
		ls.scheme = s.Value
	}
	if lt := n.Get("lifetime"); lt != nil {
		if d, dok := r.duration(lt, lt.Value, "auth.login.lifetime", false); dok {
			ls.lifetime = d
		} else {
			ok = false
		}
	}
	if ok {
		r.s.login = ls
	}
}

// readQueryKey reads auth.query: an API key in a query parameter.
func (r *reader) readQueryKey(n *config.Node) {
	name, ok := str(n.Get("name"))
	if !ok || name == "" {
		return
	}
	val, _, ok := r.expand(n.Get("value"), "auth.query.value")
	if ok {
		r.s.secrets = append(r.s.secrets, val)
		r.s.queryKey = &queryKey{name: name, value: val}
	}
}
