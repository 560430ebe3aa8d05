// Package oauthtest runs the OAuth2 authorization server of testdata/oauth (the npm package
// oidc-provider, a certified OpenID Connect implementation, under node) for tests: Start
// launches it on a free 127.0.0.1 port and stops it when the test ends. It issues
// client-credentials tokens and rotating refresh tokens with short lifetimes, and serves a
// protected API (/api/items) that takes only current access tokens.
//
// It must be installed: `cd testdata/oauth && npm ci --no-audit --no-fund`. Without it (or
// without node) Start skips the test, unless DATAFLOW_REQUIRE_OAUTH=1, as in test.sh, where it
// fails the test instead.
package oauthtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Version is the oidc-provider version testdata/oauth/package-lock.json pins.
const Version = "9.13.3"

// RequireEnv turns a missing node or oidc-provider from a skipped test into a failed one.
const RequireEnv = "DATAFLOW_REQUIRE_OAUTH"

// The client the provider knows.
const (
	ClientID     = "dataflow"
	ClientSecret = "client-SECRET-0123456789"
)

// Dir returns testdata/oauth: found from the working directory up to the product's go.mod.
func Dir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "testdata", "oauth"), nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
	}
}

func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s (%s=1: the OAuth2 provider tests must run)", msg, RequireEnv)
	}
	t.Skipf("%s; ./test.sh installs it and runs every test (%s=1 makes this skip a failure)", msg, RequireEnv)
}

// Provider is a running authorization server.
type Provider struct {
	URL string // http://127.0.0.1:PORT, also the API's base URL
	t   testing.TB
	cmd *exec.Cmd
	in  io.Closer
	mu  sync.Mutex
	out bytes.Buffer
	rdy chan string
	dn  chan struct{}
}

// Start starts the provider with access tokens that last ttl (whole seconds).
func Start(t testing.TB, ttl time.Duration) *Provider {
	t.Helper()
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable(t, "the OAuth2 provider needs node (Node.js 20.19 or later) on PATH: %v", err)
	}
	if v := installedVersion(dir); v != Version {
		unavailable(t, "oidc-provider %s is not installed in %s (found %q); run: (cd %s && npm ci --no-audit --no-fund)", Version, filepath.Join(dir, "node_modules"), v, dir)
	}
	p := &Provider{t: t, rdy: make(chan string, 1), dn: make(chan struct{})}
	p.cmd = exec.Command(node, "provider.mjs", "--port", "0")
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), "OAUTH_TTL="+strconv.Itoa(int(ttl/time.Second)), "OAUTH_CLIENT_SECRET="+ClientSecret)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	// The provider stops when its standard input ends: even a test binary killed by its
	// timeout leaves no provider behind.
	stdin, keep, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdin, p.in = stdin, keep
	err = p.cmd.Start()
	stdin.Close()
	if err != nil {
		keep.Close()
		t.Fatalf("start the OAuth2 provider: %v", err)
	}
	go func() { p.cmd.Wait(); close(p.dn) }()
	t.Cleanup(p.stop)
	select {
	case p.URL = <-p.rdy:
	case <-p.dn:
		t.Fatalf("the OAuth2 provider exited before it was ready:\n%s", p.Output())
	case <-time.After(30 * time.Second):
		t.Fatalf("the OAuth2 provider was not ready after 30s:\n%s", p.Output())
	}
	return p
}

var readyLine = regexp.MustCompile(`OAuth provider listening on (http://127\.0\.0\.1:\d+)`)

// Write collects the provider's output and finds its ready line.
func (p *Provider) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out.Write(b)
	if m := readyLine.FindStringSubmatch(p.out.String()); m != nil {
		select {
		case p.rdy <- m[1]:
		default:
		}
	}
	return len(b), nil
}

// Output is what the provider printed so far.
func (p *Provider) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *Provider) stop() {
	p.in.Close()
	select {
	case <-p.dn:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.dn
	}
	if p.t.Failed() {
		p.t.Logf("OAuth2 provider output:\n%s", p.Output())
	}
}

func installedVersion(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", "oidc-provider", "package.json"))
	if err != nil {
		return ""
	}
	var pkg struct {
		Version string `json:"version"`
	}
	json.Unmarshal(b, &pkg)
	return pkg.Version
}

func (p *Provider) post(path, form string, body, out any) error {
	var rd io.Reader
	ctype := "application/json"
	if form != "" {
		rd, ctype = strings.NewReader(form), "application/x-www-form-urlencoded"
	} else if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", p.URL+path, rd)
	req.Header.Set("Content-Type", ctype)
	if form != "" {
		req.SetBasicAuth(ClientID, ClientSecret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, data)
	}
	return json.Unmarshal(data, out)
}

// RefreshToken mints a refresh token, as a user's authorization would.
func (p *Provider) RefreshToken() string {
	p.t.Helper()
	var out struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := p.post("/admin/refresh-token", "", nil, &out); err != nil {
		p.t.Fatal(err)
	}
	return out.RefreshToken
}

// Revoke revokes a refresh token.
func (p *Provider) Revoke(refreshToken string) {
	p.t.Helper()
	var out map[string]any
	if err := p.post("/admin/revoke", "", map[string]string{"refresh_token": refreshToken}, &out); err != nil || out["revoked"] != true {
		p.t.Fatalf("revoke: %v %v", out, err)
	}
}

// Refresh uses a refresh token as a client would and returns the rotated one (the test's
// stand-in for a process that received it and crashed).
func (p *Provider) Refresh(refreshToken string) string {
	p.t.Helper()
	var out struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := p.post("/token", "grant_type=refresh_token&refresh_token="+refreshToken, nil, &out); err != nil {
		p.t.Fatal(err)
	}
	return out.RefreshToken
}

// Issued returns how many access tokens the provider issued by grant type.
func (p *Provider) Issued() map[string]int {
	p.t.Helper()
	resp, err := http.Get(p.URL + "/admin/stats")
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]int{}
	json.NewDecoder(resp.Body).Decode(&out)
	return out
}
