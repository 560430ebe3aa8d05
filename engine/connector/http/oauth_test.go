package httpconn

// OAuth2 against a provider on 127.0.0.1 that issues client-credentials tokens and rotating
// refresh tokens (each refresh token works once), and an API that takes only current access
// tokens and checks, when it first sees one, that the refresh token issued with it is already
// in refresh_token_file: a rotated token is saved before it is used.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

type provider struct {
	t        *testing.T
	srv      *httptest.Server
	file     string // the refresh_token_file the API checks
	mu       sync.Mutex
	n        int
	refresh  map[string]bool   // refresh tokens that work
	access   map[string]string // access token → the refresh token issued with it ("" for client credentials)
	seen     map[string]bool
	unsaved  []string // access tokens used before their refresh token was saved
	grants   []string
	requests int
}

func newProvider(t *testing.T, file string) *provider {
	p := &provider{t: t, file: file, refresh: map[string]bool{"rt-0-first-refresh-token": true}, access: map[string]string{}, seen: map[string]bool{}}
	p.srv = httptest.NewServer(p)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/token":
		r.ParseForm()
		id, secret, _ := r.BasicAuth()
		if id == "" {
			id, secret = r.Form.Get("client_id"), r.Form.Get("client_secret")
		}
		if id != "dataflow" || secret != "client-SECRET-0123456789" {
			w.WriteHeader(401)
			io.WriteString(w, `{"error":"invalid_client","error_description":"client authentication failed"}`)
			return
		}
		grant := r.Form.Get("grant_type")
		p.grants = append(p.grants, grant)
		p.n++
		at := fmt.Sprintf("at-%d-access-token-XYZ", p.n)
		switch grant {
		case "client_credentials":
			p.access[at] = ""
			fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600,"scope":%q}`, at, r.Form.Get("scope"))
		case "refresh_token":
			rt := r.Form.Get("refresh_token")
			if !p.refresh[rt] {
				w.WriteHeader(400)
				io.WriteString(w, `{"error":"invalid_grant","error_description":"grant request is invalid"}`)
				return
			}
			delete(p.refresh, rt) // rotated: the old one works no more
			next := fmt.Sprintf("rt-%d-rotated-refresh-token", p.n)
			p.refresh[next] = true
			p.access[at] = next
			fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600,"refresh_token":%q}`, at, next)
		default:
			w.WriteHeader(400)
			io.WriteString(w, `{"error":"unsupported_grant_type"}`)
		}
	case "/items":
		p.requests++
		at := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		rt, ok := p.access[at]
		if !ok {
			w.WriteHeader(401)
			io.WriteString(w, `{"message":"invalid token"}`)
			return
		}
		if rt != "" && !p.seen[at] {
			data, _ := os.ReadFile(p.file)
			if strings.TrimSpace(string(data)) != rt {
				p.unsaved = append(p.unsaved, at)
			}
		}
		p.seen[at] = true
		io.WriteString(w, `{"items":[{"id":"1"}]}`)
	}
}

// expireAll forgets every access token, as the provider's expiry would.
func (p *provider) expireAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.access = map[string]string{}
}

func oauthSystem(p *provider, refresh bool) string {
	auth := fmt.Sprintf(`  oauth2:
    token_url: %s/token
    client_id: dataflow
    client_secret: "${CLIENT_SECRET}"
    scopes: [items.read, items.write]`, p.srv.URL)
	if refresh {
		auth += fmt.Sprintf("\n    refresh_token: \"${REFRESH_TOKEN}\"\n    refresh_token_file: %s", p.file)
	}
	return loginSystem(p.srv.URL, auth, `{path: /items, records: items}`)
}

var oauthEnv = map[string]string{"CLIENT_SECRET": "client-SECRET-0123456789", "REFRESH_TOKEN": "rt-0-first-refresh-token"}

// TestOAuthClientCredentials: a token by client credentials, sent as a bearer; when the API
// stops taking it (expired mid-run), a new one is fetched and the run goes on.
func TestOAuthClientCredentials(t *testing.T) {
	p := newProvider(t, "")
	c, _ := openConn(t, oauthSystem(p, false), oauthEnv)
	if got, err := scanIDs(t, c); err != nil || got != "1" {
		t.Fatalf("scan %q, %v", got, err)
	}
	p.expireAll()
	if got, err := scanIDs(t, c); err != nil || got != "1" {
		t.Fatalf("scan after expiry %q, %v", got, err)
	}
	if strings.Join(p.grants, ",") != "client_credentials,client_credentials" || p.requests != 3 {
		t.Errorf("grants %v, %d API requests", p.grants, p.requests)
	}
	if got := c.red.text("echo at-2-access-token-XYZ"); got != "echo ***" {
		t.Errorf("access token not masked: %s", got)
	}
}

// TestOAuthRotatedRefreshTokenSavedBeforeUse: each refresh rotates the refresh token; the new
// one is in refresh_token_file (0600) before its access token reaches the API, and the next
// connection (a new run) starts from the file.
func TestOAuthRotatedRefreshTokenSavedBeforeUse(t *testing.T) {
	file := filepath.Join(t.TempDir(), "crm.refresh-token")
	p := newProvider(t, file)
	c, _ := openConn(t, oauthSystem(p, true), oauthEnv)
	scanIDs(t, c)
	p.expireAll()
	if _, err := scanIDs(t, c); err != nil {
		t.Fatal(err)
	}
	c2, _ := openConn(t, oauthSystem(p, true), oauthEnv) // a new run: the env's token was rotated away
	if _, err := scanIDs(t, c2); err != nil {
		t.Fatalf("a new run from the file: %v", err)
	}
	if len(p.unsaved) != 0 || strings.Join(p.grants, ",") != "refresh_token,refresh_token,refresh_token" {
		t.Errorf("used before saved: %v; grants %v", p.unsaved, p.grants)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file %v, %v", fi, err)
	}
	if data, _ := os.ReadFile(file); strings.TrimSpace(string(data)) != "rt-3-rotated-refresh-token" {
		t.Errorf("file holds %q", data)
	}
}

// TestOAuthCrashAroundSaving: a run that stops right after saving a rotated token (before
// using it) leaves a file the next run goes on from; a save that fails stops the run before
// the token is used, with a clear error.
func TestOAuthCrashAroundSaving(t *testing.T) {
	file := filepath.Join(t.TempDir(), "crm.refresh-token")
	p := newProvider(t, file)
	c, _ := openConn(t, oauthSystem(p, true), oauthEnv)
	o := c.cl.auth.(*oauth)
	crash, cancel := context.WithCancel(ctx)
	o.persist = func(path, tok string) error {
		err := writeTokenFile(path, tok)
		cancel() // the process dies here: saved, not used
		return errors.Join(err, context.Canceled)
	}
	err := c.Scan(crash, "Item", "", func([]connector.Record) error { return nil })
	if err == nil || p.requests != 0 {
		t.Fatalf("the crashed run: %v, %d API requests", err, p.requests)
	}
	c2, _ := openConn(t, oauthSystem(p, true), oauthEnv)
	if got, err := scanIDs(t, c2); err != nil || got != "1" {
		t.Fatalf("the next run: %q, %v", got, err)
	}

	c3, _ := openConn(t, oauthSystem(p, true), oauthEnv)
	c3.cl.auth.(*oauth).persist = func(string, string) error { return errors.New("disk full") }
	_, err = scanIDs(t, c3)
	want := "pb Item: GET " + p.srv.URL + "/items: pb: auth.oauth2: the provider rotated the refresh token and it cannot be saved to refresh_token_file " + file + ": disk full; the run stops rather than use a token it may lose"
	if err == nil || err.Error() != want {
		t.Errorf("error\n%v\nwant\n%s", err, want)
	}
}

// TestOAuthRevokedRefreshToken: a refresh token the provider refuses fails the run with what
// to do, the file is left as it was, and no request reaches the API.
func TestOAuthRevokedRefreshToken(t *testing.T) {
	file := filepath.Join(t.TempDir(), "crm.refresh-token")
	if err := os.WriteFile(file, []byte("rt-revoked-refresh-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := newProvider(t, file)
	c, _ := openConn(t, oauthSystem(p, true), oauthEnv)
	_, err := scanIDs(t, c)
	want := "pb Item: GET " + p.srv.URL + "/items: pb: auth.oauth2: the provider refused the refresh token (invalid_grant: grant request is invalid): it was revoked or has expired; authorize again and set refresh_token (and remove " + file + ")"
	if err == nil || err.Error() != want {
		t.Errorf("error\n%v\nwant\n%s", err, want)
	}
	if data, _ := os.ReadFile(file); string(data) != "rt-revoked-refresh-token\n" || p.requests != 0 {
		t.Errorf("file %q, %d API requests", data, p.requests)
	}
	if strings.Contains(err.Error(), "rt-revoked") {
		t.Error("the refresh token shows in the error")
	}
}
