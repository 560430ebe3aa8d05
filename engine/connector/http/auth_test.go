package httpconn

// Credentials obtained during a run: a session login whose token expires, is refused, or is
// never shown; an API key in the query; auth.check and list.expect against an API that
// answers an expired token as a guest.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

// sessionAPI logs users in and lists items to those whose token is current; an unknown or
// expired token is answered as a guest (200 and no items), as PocketBase does, unless
// refuse401 is set.
type sessionAPI struct {
	t         *testing.T
	srv       *httptest.Server
	mu        sync.Mutex
	logins    int
	tokens    map[string]bool // valid tokens
	refuse401 bool
	// jwtLifetime, when set, makes tokens JWTs with an exp that far from the login.
	expiresIn int
	bodies    []string
	auths     []string // Authorization of each list request
}

func newSessionAPI(t *testing.T) *sessionAPI {
	a := &sessionAPI{t: t, tokens: map[string]bool{}}
	a.srv = httptest.NewServer(a)
	t.Cleanup(a.srv.Close)
	return a
}

func (a *sessionAPI) expire() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tokens = map[string]bool{}
}

func (a *sessionAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/auth":
		b, _ := io.ReadAll(r.Body)
		a.bodies = append(a.bodies, string(b))
		var creds map[string]string
		json.Unmarshal(b, &creds)
		if creds["identity"] != "ann@example.com" || creds["password"] != "s3cret-PASSWORD-42" {
			w.WriteHeader(400)
			fmt.Fprintf(w, `{"message":"Failed to authenticate %s.","status":400,"data":{}}`, creds["password"])
			return
		}
		a.logins++
		tok := fmt.Sprintf("session-token-%d-ABCDEFGHIJ", a.logins)
		a.tokens[tok] = true
		if a.expiresIn > 0 {
			fmt.Fprintf(w, `{"token":%q,"expires_in":%d}`, tok, a.expiresIn)
			return
		}
		fmt.Fprintf(w, `{"token":%q,"record":{"email":"ann@example.com"}}`, tok)
	case "/me":
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !a.tokens[tok] {
			io.WriteString(w, `{}`)
			return
		}
		io.WriteString(w, `{"email":"ann@example.com"}`)
	case "/items":
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		a.auths = append(a.auths, r.Header.Get("Authorization"))
		if !a.tokens[tok] {
			if a.refuse401 {
				w.WriteHeader(401)
				io.WriteString(w, `{"message":"The request requires valid record authorization token."}`)
				return
			}
			io.WriteString(w, `{"items":[],"totalItems":0}`)
			return
		}
		io.WriteString(w, `{"items":[{"id":"a1","name":"Ann"}],"totalItems":1}`)
	default:
		w.WriteHeader(404)
	}
}

func loginSystem(base, auth, list string) string {
	return fmt.Sprintf(`system: pb
name: PB
connector: http
base_url: %s
auth:
%s
retry: {attempts: 2, max_wait: 1s, base_delay: 1ms}
entities:
  Item:
    id: id
    schema: item.json
    list: %s
`, base, auth, list)
}

const loginAuth = `  login:
    path: /auth
    body: {identity: "${PB_EMAIL}", password: "${PB_PASSWORD}"}
    token: token`

var loginEnv = map[string]string{"PB_EMAIL": "ann@example.com", "PB_PASSWORD": "s3cret-PASSWORD-42"}

func scanIDs(t *testing.T, c *conn) (string, error) {
	t.Helper()
	pages, err := scanAll(t, c, "")
	return ids(pages), err
}

// TestLoginBeforeFirstRequestAndOn401: the connection logs in before its first request, sends
// the token as a bearer, and logs in again (once) when a request is answered 401.
func TestLoginBeforeFirstRequestAndOn401(t *testing.T) {
	a := newSessionAPI(t)
	a.refuse401 = true
	c, _ := openConn(t, loginSystem(a.srv.URL, loginAuth, `{path: /items, records: items}`), loginEnv)
	if got, err := scanIDs(t, c); err != nil || got != "a1" {
		t.Fatalf("scan %q, %v", got, err)
	}
	if a.bodies[0] != `{"identity":"ann@example.com","password":"s3cret-PASSWORD-42"}` || a.auths[0] != "Bearer session-token-1-ABCDEFGHIJ" {
		t.Errorf("login body %s, authorization %s", a.bodies[0], a.auths[0])
	}
	a.expire()
	if got, err := scanIDs(t, c); err != nil || got != "a1" {
		t.Fatalf("scan after the session expired: %q, %v", got, err)
	}
	if a.logins != 2 || len(a.auths) != 3 || a.auths[2] != "Bearer session-token-2-ABCDEFGHIJ" {
		t.Errorf("%d logins, list requests with %v", a.logins, a.auths)
	}
}

// TestLoginAgainBeforeExpiry: a token whose expires_in says it lapses is renewed before then,
// so that no request goes out with an expired token (which this API answers as a guest).
func TestLoginAgainBeforeExpiry(t *testing.T) {
	a := newSessionAPI(t)
	a.expiresIn = 60
	c, clk := openConn(t, loginSystem(a.srv.URL, loginAuth, `{path: /items, records: items}`), loginEnv)
	if got, err := scanIDs(t, c); err != nil || got != "a1" {
		t.Fatalf("scan %q, %v", got, err)
	}
	clk.sleep(ctx, 30*time.Second)
	scanIDs(t, c)
	if a.logins != 1 {
		t.Fatalf("%d logins halfway through the token's life, want 1", a.logins)
	}
	clk.sleep(ctx, 20*time.Second) // 50 s: within the last fifth (12 s) of its 60 s
	a.expire()                     // the server forgets it as it would at 60 s
	if got, err := scanIDs(t, c); err != nil || got != "a1" {
		t.Fatalf("scan near expiry %q, %v", got, err)
	}
	if a.logins != 2 {
		t.Errorf("%d logins, want 2", a.logins)
	}
}

// TestLoginLifetimeSetting: lifetime says how long a token lasts when the response does not.
func TestLoginLifetimeSetting(t *testing.T) {
	a := newSessionAPI(t)
	c, clk := openConn(t, loginSystem(a.srv.URL, loginAuth+"\n    lifetime: 1m", `{path: /items, records: items}`), loginEnv)
	scanIDs(t, c)
	clk.sleep(ctx, 47*time.Second)
	scanIDs(t, c)
	if a.logins != 1 {
		t.Fatalf("%d logins at 47 s of 60, want 1", a.logins)
	}
	clk.sleep(ctx, 2*time.Second) // 49 s: past the renewal point, 60 - 12
	scanIDs(t, c)
	if a.logins != 2 {
		t.Errorf("%d logins at 49 s of 60, want 2", a.logins)
	}
}

// TestLoginLifetimeFromJWT: without expires_in, a JWT token's exp says when to log in again.
func TestLoginLifetimeFromJWT(t *testing.T) {
	exp := time.Date(2025, 3, 1, 12, 10, 0, 0, time.UTC)
	claims := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"exp":%d}`, exp.Unix()))
	tok := "eyJhbGciOiJIUzI1NiJ9." + claims + ".c2lnbmF0dXJl"
	got, ok := jwtExpiry(tok)
	if !ok || !got.Equal(exp) {
		t.Fatalf("jwtExpiry %v %v", got, ok)
	}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	if r := renewTime(now, exp); !r.Equal(exp.Add(-30 * time.Second)) {
		t.Errorf("renew at %v", r)
	}
	if _, ok := jwtExpiry("not-a-jwt"); ok {
		t.Error("a token that is not a JWT has an expiry")
	}
}

// TestLoginFailureIsClearAndMasked: a refused login fails the run with the server's message
// and never shows the password, not even the one the server echoes.
func TestLoginFailureIsClearAndMasked(t *testing.T) {
	a := newSessionAPI(t)
	env := map[string]string{"PB_EMAIL": "ann@example.com", "PB_PASSWORD": "wrong-password-123456"}
	c, _ := openConn(t, loginSystem(a.srv.URL, loginAuth, `{path: /items, records: items}`), env)
	_, err := scanIDs(t, c)
	want := "pb Item: GET " + a.srv.URL + "/items: logging in: pb login: POST " + a.srv.URL + "/auth: 400 Bad Request: Failed to authenticate ***."
	if err == nil || err.Error() != want {
		t.Errorf("error\n%v\nwant\n%s", err, want)
	}
}

// TestLoginTokenMasked: a session token that a server echoes in an error is masked.
func TestLoginTokenMasked(t *testing.T) {
	a := newSessionAPI(t)
	c, _ := openConn(t, loginSystem(a.srv.URL, loginAuth, `{path: /items, records: items}`), loginEnv)
	scanIDs(t, c)
	if got := c.red.text("bad token session-token-1-ABCDEFGHIJ"); got != "bad token ***" {
		t.Errorf("masked %q", got)
	}
}

// TestAPIKeyInQuery: the key goes in its query parameter and is masked in the URLs of errors.
func TestAPIKeyInQuery(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.RawQuery)
		w.WriteHeader(400)
		fmt.Fprintf(w, `{"message":"cannot read %s"}`, r.URL.String())
	}))
	defer srv.Close()
	src := loginSystem(srv.URL, `  query: {name: api_key, value: "${KEY}"}`, `{path: /items, query: {q: '"x"'}, records: items}`)
	c, _ := openConn(t, src, map[string]string{"KEY": "key-CANARY-1234567890"})
	_, err := scanIDs(t, c)
	if len(got) != 1 || got[0] != "api_key=key-CANARY-1234567890&q=x" {
		t.Errorf("queries %v", got)
	}
	want := "pb Item: GET " + srv.URL + "/items: 400 Bad Request: cannot read /items?api_key=***&q=x"
	if err == nil || err.Error() != want {
		t.Errorf("error\n%v\nwant\n%s", err, want)
	}
}

// TestAuthCheckStopsAGuestRun: an API that answers an expired token as a guest (an empty list)
// fails auth.check, and the run reads nothing; list.expect catches it on a list page too.
func TestAuthCheckStopsAGuestRun(t *testing.T) {
	a := newSessionAPI(t)
	src := loginSystem(a.srv.URL, `  bearer: "${TOKEN}"
  check: {path: /me, expect: 'email != nil'}`, `{path: /items, records: items}`)
	c, _ := openConn(t, src, map[string]string{"TOKEN": "expired-token-0123456789"})
	_, err := scanIDs(t, c)
	want := "pb auth.check: GET " + a.srv.URL + "/me: auth.check.expect `email != nil` does not hold: the API answers as someone other than the configured user (an expired or wrong token?), so the run stops before it reads or writes anything"
	if err == nil || err.Error() != want {
		t.Fatalf("error\n%v\nwant\n%s", err, want)
	}
	if _, err := c.Update(ctx, "Item", []connector.Record{{ID: "a1", Data: map[string]any{"name": "x"}}}); err == nil || err.Error() != want {
		t.Errorf("update error %v", err)
	}
	if len(a.auths) != 0 {
		t.Errorf("%d list requests after a failed check", len(a.auths))
	}

	src = loginSystem(a.srv.URL, `  bearer: "${TOKEN}"`, `{path: /items, records: items, expect: 'totalItems > 0'}`)
	c, _ = openConn(t, src, map[string]string{"TOKEN": "expired-token-0123456789"})
	_, err = scanIDs(t, c)
	want = "pb Item: GET " + a.srv.URL + "/items: page 1 does not pass list.expect `totalItems > 0`: the API may have answered as a guest (an expired token?), so the run stops before it merges anything"
	if err == nil || err.Error() != want {
		t.Errorf("error\n%v\nwant\n%s", err, want)
	}
}

// TestAuthCheckPasses: with a valid login the check passes once and the run reads.
func TestAuthCheckPasses(t *testing.T) {
	a := newSessionAPI(t)
	c, _ := openConn(t, loginSystem(a.srv.URL, loginAuth+"\n  check: {path: /me, expect: 'email == \"ann@example.com\"'}", `{path: /items, records: items}`), loginEnv)
	for range 2 {
		if got, err := scanIDs(t, c); err != nil || got != "a1" {
			t.Fatalf("scan %q, %v", got, err)
		}
	}
	if a.logins != 1 {
		t.Errorf("%d logins", a.logins)
	}
}

// TestDryRunLogsInAndChecks: a read-only connection (a dry run) sends the login's POST and a
// POST auth.check (TestReadOnlyDoesNotWrite: it refuses writes).
func TestDryRunLogsInAndChecks(t *testing.T) {
	a := newSessionAPI(t)
	src := loginSystem(a.srv.URL, loginAuth+"\n  check: {path: /me, method: POST, expect: 'email != nil'}", `{path: /items, records: items}`)
	opened, err := Driver{}.Open(ctx, loadSystem(t, src, loginEnv), nil, connector.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer opened.Close()
	c := opened.(*conn)
	if got, err := scanIDs(t, c); err != nil || got != "a1" || a.logins != 1 {
		t.Fatalf("scan %q, %v, %d logins", got, err, a.logins)
	}
}
