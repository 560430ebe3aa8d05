package oauthtest

// The http connector's oauth2 auth against oidc-provider: client-credentials tokens that
// expire mid-run, refresh tokens rotated on every use and saved before use, a revoked refresh
// token, and a crash between receiving a rotated token and saving it.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	httpconn "github.com/dataflow-sync/dataflow/engine/connector/http"
)

func system(p *Provider, file string) string {
	auth := fmt.Sprintf(`  oauth2:
    token_url: %s/token
    client_id: %s
    client_secret: "${CLIENT_SECRET}"
    scopes: [items.read]`, p.URL, ClientID)
	if file != "" {
		auth = fmt.Sprintf(`  oauth2:
    token_url: %s/token
    client_id: %s
    client_secret: "${CLIENT_SECRET}"
    refresh_token: "${REFRESH_TOKEN}"
    refresh_token_file: %s`, p.URL, ClientID, file)
	}
	return fmt.Sprintf(`system: api
name: API
connector: http
base_url: %s
auth:
%s
retry: {attempts: 2, base_delay: 1ms}
entities:
  Item:
    id: id
    schema: item.json
    list: {path: /api/items, records: items}
`, p.URL, auth)
}

func open(t *testing.T, src string, env map[string]string) connector.Conn {
	t.Helper()
	l, err := config.NewLoader(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	proj := &config.Project{}
	if ds := l.AddFile(proj, "api.yaml", []byte(src)); ds.HasErrors() {
		t.Fatalf("system file: %v", ds)
	}
	c, err := httpconn.Driver{}.Open(context.Background(), proj.Systems[0], nil, connector.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func scan(c connector.Conn) error {
	return c.Scan(context.Background(), "Item", "", func([]connector.Record) error { return nil })
}

// TestClientCredentialsExpireMidRun: tokens that last 11 s (which golang.org/x/oauth2 takes
// for expired 10 s early) are renewed as the run goes on, and every read succeeds.
func TestClientCredentialsExpireMidRun(t *testing.T) {
	p := Start(t, 11*time.Second)
	c := open(t, system(p, ""), map[string]string{"CLIENT_SECRET": ClientSecret})
	deadline := time.Now().Add(2500 * time.Millisecond)
	reads := 0
	for time.Now().Before(deadline) {
		if err := scan(c); err != nil {
			t.Fatalf("read %d: %v", reads+1, err)
		}
		reads++
		time.Sleep(100 * time.Millisecond)
	}
	if n := p.Issued()["client_credentials"]; n < 2 {
		t.Errorf("%d tokens for %d reads over 2.5 s, want the token renewed at least once", n, reads)
	}
}

// TestRotatedRefreshTokens: each refresh rotates the token; the file holds the current one,
// and a new run (a new connection) goes on from it although the environment's token is used
// up.
func TestRotatedRefreshTokens(t *testing.T) {
	p := Start(t, 11*time.Second)
	file := filepath.Join(t.TempDir(), "api.refresh-token")
	first := p.RefreshToken()
	env := map[string]string{"CLIENT_SECRET": ClientSecret, "REFRESH_TOKEN": first}
	c := open(t, system(p, file), env)
	deadline := time.Now().Add(2500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if err := scan(c); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	refreshes := p.Issued()["refresh_token"]
	if refreshes < 2 {
		t.Fatalf("%d refreshes, want the access token renewed mid-run", refreshes)
	}
	saved, _ := os.ReadFile(file)
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 || strings.TrimSpace(string(saved)) == first {
		t.Fatalf("file %v %v holds the first token: %v", fi, err, strings.TrimSpace(string(saved)) == first)
	}
	c2 := open(t, system(p, file), env)
	if err := scan(c2); err != nil {
		t.Fatalf("the next run: %v", err)
	}
}

// TestRevokedRefreshToken: a revoked refresh token fails the run with what to do, and the file
// is not touched.
func TestRevokedRefreshToken(t *testing.T) {
	p := Start(t, 30*time.Second)
	file := filepath.Join(t.TempDir(), "api.refresh-token")
	rt := p.RefreshToken()
	p.Revoke(rt)
	c := open(t, system(p, file), map[string]string{"CLIENT_SECRET": ClientSecret, "REFRESH_TOKEN": rt})
	err := scan(c)
	want := "api Item: GET " + p.URL + "/api/items: api: auth.oauth2: the provider refused the refresh token (invalid_grant: grant request is invalid): it was revoked or has expired; authorize again and set refresh_token (and remove " + file + ")"
	if err == nil || err.Error() != want {
		t.Errorf("error\n%v\nwant\n%s", err, want)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("the file was written: %v", err)
	}
}

// TestCrashAroundSavingARotatedToken: a process that received a rotated token and died before
// saving it leaves the used one in the file, which the provider refuses (and, as strict
// providers do, revokes the grant): the next run says so plainly. One that died after saving
// (before using it) leaves a file the next run goes on from: saving first is what keeps it.
func TestCrashAroundSavingARotatedToken(t *testing.T) {
	p := Start(t, 30*time.Second)
	dir := t.TempDir()
	// The environment keeps the token of the first authorization, long used up: the file
	// holds the current one.
	env := map[string]string{"CLIENT_SECRET": ClientSecret, "REFRESH_TOKEN": "used-up-first-refresh-token"}

	saved := filepath.Join(dir, "saved.refresh-token")
	rt := p.RefreshToken()
	os.WriteFile(saved, []byte(p.Refresh(rt)+"\n"), 0o600) // received, saved, then the crash
	if err := scan(open(t, system(p, saved), env)); err != nil {
		t.Errorf("after a crash past the save: %v", err)
	}

	lost := filepath.Join(dir, "lost.refresh-token")
	rt = p.RefreshToken()
	os.WriteFile(lost, []byte(rt+"\n"), 0o600)
	p.Refresh(rt) // received, the crash before the save
	err := scan(open(t, system(p, lost), env))
	want := "the provider refused the refresh token (invalid_grant: grant request is invalid): it was revoked or has expired; authorize again and set refresh_token (and remove " + lost + ")"
	if err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("after a crash before the save: %v\nwant it to end in %s", err, want)
	}
}
