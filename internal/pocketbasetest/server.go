// Package pocketbasetest runs PocketBase (testdata/pocketbase: v0.36.8, a module of its own so
// that the product's go.mod does not depend on it) for tests: Start builds it once per test
// binary into the user's cache directory (reused while testdata/pocketbase is unchanged),
// starts it on a free 127.0.0.1 port with a temporary data directory and a superuser made with
// `superuser upsert`, and stops it when the test ends. The Server's methods act as the
// superuser over PocketBase's REST API: collections, settings (rate limits), records, users.
//
// When Go cannot build it (no network and an empty module cache) Start skips the test, unless
// DATAFLOW_REQUIRE_POCKETBASE=1, as in test.sh, where it fails the test instead.
package pocketbasetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Version is the PocketBase version testdata/pocketbase/go.mod pins.
const Version = "0.36.8"

// RequireEnv is the environment variable that turns a PocketBase that cannot be built from a
// skipped test into a failed one.
const RequireEnv = "DATAFLOW_REQUIRE_POCKETBASE"

// Superuser credentials of every server.
const (
	SuperuserEmail    = "admin@example.com"
	SuperuserPassword = "superuser-Pa55word-0123"
)

// Dir returns testdata/pocketbase: found from the working directory up to the directory of
// the product's go.mod.
func Dir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil && !strings.HasSuffix(dir, filepath.Join("testdata", "pocketbase")) {
			return filepath.Join(dir, "testdata", "pocketbase"), nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
	}
}

var build struct {
	once sync.Once
	bin  string
	err  error
}

// Binary builds PocketBase once per test binary (and reuses a build of the same sources from
// the cache directory) and returns its path.
func Binary() (string, error) {
	build.once.Do(func() { build.bin, build.err = buildBinary() })
	return build.bin, build.err
}

func buildBinary() (string, error) {
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum", "main.go"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return "", err
		}
		h.Write(data)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	out := filepath.Join(cache, "dataflow-test", "pocketbase-"+Version+"-"+hex.EncodeToString(h.Sum(nil))[:12], "pocketbase")
	if fi, err := os.Stat(out); err == nil && fi.Mode().IsRegular() {
		return out, nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	tmp := fmt.Sprintf("%s.building-%d", out, os.Getpid()) // two test binaries may build at once
	cmd := exec.Command("go", "build", "-o", tmp, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build in %s: %v\n%s", dir, err, msg)
	}
	return out, os.Rename(tmp, out)
}

// unavailable skips the test, or fails it when RequireEnv is 1.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s (%s=1: the PocketBase tests must run)", msg, RequireEnv)
	}
	t.Skipf("%s; ./test.sh builds it and runs every test (%s=1 makes this skip a failure)", msg, RequireEnv)
}

// Server is a running PocketBase.
type Server struct {
	URL   string // http://127.0.0.1:PORT
	Dir   string // its data directory
	token string // the superuser's
	t     testing.TB
	cmd   *exec.Cmd
	out   *bytes.Buffer
	outMu *sync.Mutex
	done  chan struct{}
}

// Start builds (once) and starts a PocketBase with an empty data directory and the superuser
// SuperuserEmail, and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		unavailable(t, "PocketBase is built with go, which is not on PATH")
	}
	bin, err := Binary()
	if err != nil {
		unavailable(t, "cannot build PocketBase %s: %v", Version, err)
	}
	dir := t.TempDir()
	if msg, err := exec.Command(bin, "superuser", "upsert", SuperuserEmail, SuperuserPassword, "--dir", dir).CombinedOutput(); err != nil {
		t.Fatalf("pocketbase superuser upsert: %v\n%s", err, msg)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Dir: dir, t: t, out: &bytes.Buffer{}, outMu: &sync.Mutex{}, done: make(chan struct{})}
	s.cmd = exec.Command(bin, "serve", "--http", fmt.Sprintf("127.0.0.1:%d", port), "--dir", dir)
	w := &lockedWriter{mu: s.outMu, w: s.out}
	s.cmd.Stdout, s.cmd.Stderr = w, w
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start PocketBase: %v", err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(s.stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/api/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case <-s.done:
			t.Fatalf("PocketBase exited before it was ready:\n%s", s.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("PocketBase was not ready after 30s:\n%s", s.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	var auth struct {
		Token string `json:"token"`
	}
	s.Must("POST", "/api/collections/_superusers/auth-with-password", map[string]any{"identity": SuperuserEmail, "password": SuperuserPassword}, &auth)
	s.token = auth.Token
	return s
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Output is what PocketBase printed so far.
func (s *Server) Output() string {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	return s.out.String()
}

func (s *Server) stop() {
	select {
	case <-s.done:
		if !s.t.Failed() {
			s.t.Errorf("PocketBase exited during the test:\n%s", s.Output())
		}
		return
	default:
	}
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	if s.t.Failed() {
		s.t.Logf("PocketBase output:\n%s", s.Output())
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Do sends a request as the superuser with body as JSON (nil for none) and decodes a 2xx
// response into out (nil to ignore it). The error of any other status holds the body.
func (s *Server) Do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if s.token != "" {
		req.Header.Set("Authorization", s.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}

// Must is Do that fails the test on an error.
func (s *Server) Must(method, path string, body, out any) {
	s.t.Helper()
	if err := s.Do(method, path, body, out); err != nil {
		s.t.Fatal(err)
	}
}

// Records returns every record of a collection (as the superuser), sorted by id.
func (s *Server) Records(collection string) []map[string]any {
	s.t.Helper()
	var out []map[string]any
	for page := 1; ; page++ {
		var resp struct {
			Items      []map[string]any `json:"items"`
			TotalPages int              `json:"totalPages"`
		}
		s.Must("GET", fmt.Sprintf("/api/collections/%s/records?perPage=500&sort=id&page=%d", collection, page), nil, &resp)
		out = append(out, resp.Items...)
		if page >= resp.TotalPages {
			return out
		}
	}
}

// RateLimit turns PocketBase's rate limiter on with one rule for every API path (the
// superuser is never limited).
func (s *Server) RateLimit(maxRequests int, per time.Duration) {
	s.t.Helper()
	s.Must("PATCH", "/api/settings", map[string]any{"rateLimits": map[string]any{"enabled": true, "rules": []any{
		map[string]any{"label": "/api/", "maxRequests": maxRequests, "duration": int(per / time.Second)},
	}}}, nil)
}

// User creates a user of the users collection (verified) and makes its tokens last ttl (at
// least 10 s, PocketBase's least).
func (s *Server) User(email, password string, ttl time.Duration) {
	s.t.Helper()
	s.Must("POST", "/api/collections/users/records", map[string]any{"email": email, "password": password, "passwordConfirm": password, "verified": true}, nil)
	s.Must("PATCH", "/api/collections/users", map[string]any{"authToken": map[string]any{"duration": int(ttl / time.Second)}}, nil)
}
