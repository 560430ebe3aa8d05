// Package jsonservertest runs the Custom CRM of testdata/jsonserver — the real json-server
// 0.17.4 under node, with the middlewares of server.js that implement the Custom CRM REST
// contract (README.md) — for tests: Start launches it on a free 127.0.0.1 port with a
// temporary database file and stops it when the test ends, and the Server's methods let a
// test act as a user editing in the CRM (read, create, patch, delete records over HTTP).
//
// json-server must be installed: `cd testdata/jsonserver && npm ci --no-audit --no-fund`.
// Without it (or without node) Start skips the test, unless DATAFLOW_REQUIRE_JSONSERVER=1,
// as in CI, where it fails the test instead.
package jsonservertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Version is the json-server version testdata/jsonserver/package-lock.json pins.
const Version = "0.17.4"

// RequireEnv is the environment variable that turns a missing node or json-server from a
// skipped test into a failed one.
const RequireEnv = "DATAFLOW_REQUIRE_JSONSERVER"

// Options configure a server.
type Options struct {
	// Token, when set, is the bearer token the server requires (CRM_TOKEN); the Server's own
	// requests send it.
	Token string
	// Log makes the server log every request to its output (CRM_LOG=1), which a failing
	// test prints.
	Log bool
}

// Server is a running Custom CRM.
type Server struct {
	// URL is the base URL, http://127.0.0.1:<port>, without a trailing slash.
	URL string
	// DBFile is the server's database file (json-server's lowdb file).
	DBFile string
	// Token is the bearer token the server requires ("" for none).
	Token string

	t      testing.TB
	client *http.Client
	cmd    *exec.Cmd
	out    *output
	stdin  *os.File      // the write end of the server's standard input
	done   chan struct{} // closed when the process has exited
	err    error         // the process's exit, once done is closed
}

// Dir returns the absolute path of testdata/jsonserver, found by walking up from the working
// directory to the module root.
func Dir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			d := filepath.Join(dir, "testdata", "jsonserver")
			if _, err := os.Stat(filepath.Join(d, "server.js")); err != nil {
				return "", fmt.Errorf("the module root %s has no testdata/jsonserver/server.js", dir)
			}
			return d, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
	}
}

// InstallCommand is the command that installs json-server for the tests.
func InstallCommand(dir string) string {
	return fmt.Sprintf("(cd %s && npm ci --no-audit --no-fund)", dir)
}

// unavailable skips the test, or fails it when RequireEnv is 1.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s (%s=1: the json-server tests must run)", msg, RequireEnv)
	}
	t.Skipf("%s; ./test.sh installs it and runs every test (%s=1 makes this skip a failure)", msg, RequireEnv)
}

// Start starts the Custom CRM with seedJSON as its database — a JSON object of the
// collections "products", "customers" and "orders" ("" for none) — and stops it when the test
// ends.
func Start(t testing.TB, seedJSON string) *Server {
	t.Helper()
	return StartWith(t, seedJSON, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, seedJSON string, opts Options) *Server {
	t.Helper()
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable(t, "the Custom CRM needs node (Node.js 18 or later) on PATH: %v", err)
	}
	if v := installedVersion(dir); v != Version {
		what := "json-server is not installed"
		if v != "" {
			what = fmt.Sprintf("json-server %s is installed, package-lock.json pins %s", v, Version)
		}
		unavailable(t, "%s in %s; run: %s", what, filepath.Join(dir, "node_modules"), InstallCommand(dir))
	}

	db := filepath.Join(t.TempDir(), "crm.json")
	if strings.TrimSpace(seedJSON) == "" {
		seedJSON = `{"products": [], "customers": [], "orders": []}`
	}
	if !json.Valid([]byte(seedJSON)) {
		t.Fatalf("jsonservertest.Start: the seed is not valid JSON:\n%s", seedJSON)
	}
	if err := os.WriteFile(db, []byte(seedJSON), 0o644); err != nil {
		t.Fatal(err)
	}

	s := &Server{
		DBFile: db,
		Token:  opts.Token,
		t:      t,
		client: &http.Client{Timeout: 30 * time.Second},
		out:    newOutput(),
		done:   make(chan struct{}),
	}
	cmd := exec.Command(node, "server.js", "--port", "0", "--db", db)
	cmd.Dir = dir
	cmd.Env = serverEnv(opts)
	cmd.Stdout = s.out
	cmd.Stderr = s.out
	// The server stops when its standard input ends (CRM_EXIT_ON_EOF): this end of the pipe
	// stays open while the test process lives, so even a test binary killed by its timeout
	// leaves no server behind.
	stdin, keep, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = stdin
	setProcessGroup(cmd)
	err = cmd.Start()
	stdin.Close()
	if err != nil {
		keep.Close()
		t.Fatalf("start the Custom CRM: %v", err)
	}
	s.cmd, s.stdin = cmd, keep
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(s.stop)

	select {
	case u := <-s.out.ready:
		s.URL = u
	case <-s.done:
		t.Fatalf("the Custom CRM exited before it was ready (%v):\n%s", s.err, s.out)
	case <-time.After(30 * time.Second):
		t.Fatalf("the Custom CRM was not ready after 30s:\n%s", s.out)
	}
	return s
}

// installedVersion returns the version of the json-server in dir's node_modules, "" when
// there is none.
func installedVersion(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", "json-server", "package.json"))
	if err != nil {
		return ""
	}
	var pkg struct {
		Version string `json:"version"`
	}
	if json.Unmarshal(b, &pkg) != nil {
		return ""
	}
	return pkg.Version
}

// serverEnv is the test process's environment without the server's own settings, plus those
// of opts.
func serverEnv(opts Options) []string {
	var env []string
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "PORT", "CRM_DB_FILE", "CRM_TOKEN", "CRM_LOG", "CRM_EXIT_ON_EOF", "NODE_OPTIONS":
			continue
		}
		env = append(env, kv)
	}
	if opts.Token != "" {
		env = append(env, "CRM_TOKEN="+opts.Token)
	}
	if opts.Log {
		env = append(env, "CRM_LOG=1")
	}
	return append(env, "CRM_EXIT_ON_EOF=1")
}

// stop ends the server's process group: SIGTERM, then SIGKILL after 5 seconds. A server that
// had died on its own fails the test with its output.
func (s *Server) stop() {
	defer s.stdin.Close()
	select {
	case <-s.done:
		if !s.t.Failed() {
			s.t.Errorf("the Custom CRM exited during the test (%v):\n%s", s.err, s.out)
		}
		return
	default:
	}
	terminateGroup(s.cmd)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		killGroup(s.cmd)
		<-s.done
	}
	if s.t.Failed() {
		s.t.Logf("Custom CRM output:\n%s", s.out)
	}
}

// Output returns what the server printed so far.
func (s *Server) Output() string { return s.out.String() }

// output collects the server's output and reports the URL of its ready line.
type output struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	line  []byte
	ready chan string
	sent  bool
}

var readyLine = regexp.MustCompile(`^Custom CRM listening on (http://127\.0\.0\.1:\d+)$`)

func newOutput() *output { return &output{ready: make(chan string, 1)} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	for _, c := range p {
		if c != '\n' {
			o.line = append(o.line, c)
			continue
		}
		if m := readyLine.FindSubmatch(o.line); m != nil && !o.sent {
			o.sent = true
			o.ready <- string(m[1])
		}
		o.line = o.line[:0]
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// --- the client: a user of the CRM ---

// Record is a record as the CRM sends it; numbers are json.Number, exactly as sent.
type Record = map[string]any

// Response is an HTTP exchange's outcome.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	// JSON is the decoded body (numbers as json.Number); nil when the body is empty or not JSON.
	JSON any
}

// ErrorCode and ErrorMessage return the error body's code and message, "" when the body is
// not the contract's error shape.
func (r *Response) ErrorCode() string    { return r.errorField("code") }
func (r *Response) ErrorMessage() string { return r.errorField("message") }

func (r *Response) errorField(k string) string {
	m, ok := r.JSON.(map[string]any)
	if !ok {
		return ""
	}
	e, ok := m["error"].(map[string]any)
	if !ok {
		return ""
	}
	s, _ := e[k].(string)
	return s
}

// Do sends a request to path (relative to URL, with its query) with body encoded as JSON
// (nil: no body; a []byte is sent as it is, as JSON) and the server's token, plus header's fields. Transport errors fail the test.
func (s *Server) Do(method, path string, body any, header http.Header) *Response {
	s.t.Helper()
	var rd io.Reader
	if raw, ok := body.([]byte); ok {
		rd = bytes.NewReader(raw)
	} else if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatalf("%s %s: encode the body: %v", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, s.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v\nCustom CRM output:\n%s", method, path, err, s.out)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: read the response: %v", method, path, err)
	}
	r := &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if len(bytes.TrimSpace(b)) > 0 {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var v any
		if d.Decode(&v) == nil {
			r.JSON = v
		}
	}
	return r
}

// expect fails the test unless the response has status want, and returns its JSON object.
func (s *Server) expect(r *Response, want int, what string) Record {
	s.t.Helper()
	if r.Status != want {
		s.t.Fatalf("%s: %d, want %d: %s", what, r.Status, want, r.Body)
	}
	if want == http.StatusNoContent {
		return nil
	}
	m, ok := r.JSON.(map[string]any)
	if !ok {
		s.t.Fatalf("%s: the body is not a JSON object: %s", what, r.Body)
	}
	return m
}

// Get returns a record (GET /<resource>/<id>), failing the test unless it exists.
func (s *Server) Get(resource string, id any) Record {
	s.t.Helper()
	p := fmt.Sprintf("/%s/%v", resource, id)
	return s.expect(s.Do(http.MethodGet, p, nil, nil), http.StatusOK, "GET "+p)
}

// Post creates a record (POST /<resource>) and returns it as stored, failing the test unless
// the server answers 201.
func (s *Server) Post(resource string, rec Record) Record {
	s.t.Helper()
	p := "/" + resource
	return s.expect(s.Do(http.MethodPost, p, rec, nil), http.StatusCreated, "POST "+p)
}

// Patch changes the given properties of a record (PATCH /<resource>/<id>) and returns it as
// stored, failing the test unless the server answers 200.
func (s *Server) Patch(resource string, id any, fields Record) Record {
	s.t.Helper()
	p := fmt.Sprintf("/%s/%v", resource, id)
	return s.expect(s.Do(http.MethodPatch, p, fields, nil), http.StatusOK, "PATCH "+p)
}

// Delete deletes a record (DELETE /<resource>/<id>), failing the test unless the server
// answers 204.
func (s *Server) Delete(resource string, id any) {
	s.t.Helper()
	p := fmt.Sprintf("/%s/%v", resource, id)
	s.expect(s.Do(http.MethodDelete, p, nil, nil), http.StatusNoContent, "DELETE "+p)
}

// List returns every record of a resource whose updated_at is at or after since ("" for
// all), in the list's order, following the cursor from page to page of limit records (0:
// the server's default).
func (s *Server) List(resource, since string, limit int) []Record {
	s.t.Helper()
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	var all []Record
	for pages := 0; ; pages++ {
		if pages > 100000 {
			s.t.Fatalf("GET /%s: the cursor does not end", resource)
		}
		p := "/" + resource
		if len(q) > 0 {
			p += "?" + q.Encode()
		}
		body := s.expect(s.Do(http.MethodGet, p, nil, nil), http.StatusOK, "GET "+p)
		data, ok := body["data"].([]any)
		if !ok {
			s.t.Fatalf("GET %s: no data list: %v", p, body)
		}
		for _, d := range data {
			rec, ok := d.(map[string]any)
			if !ok {
				s.t.Fatalf("GET %s: a record is not an object: %v", p, d)
			}
			all = append(all, rec)
		}
		next, _ := body["next_cursor"].(string)
		if next == "" {
			if body["next_cursor"] != nil {
				s.t.Fatalf("GET %s: next_cursor is %v, want a string or null", p, body["next_cursor"])
			}
			return all
		}
		q.Set("cursor", next)
	}
}

// Find returns the one record of a resource whose property key equals value (compared as
// text: 11 matches json.Number("11")), failing the test when there is none or several.
func (s *Server) Find(resource, key string, value any) Record {
	s.t.Helper()
	var found []Record
	for _, r := range s.List(resource, "", 1000) {
		if r[key] != nil && fmt.Sprint(r[key]) == fmt.Sprint(value) {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		s.t.Fatalf("%d %s have %s = %v, want exactly one", len(found), resource, key, value)
	}
	return found[0]
}

// Count returns the number of records of a resource.
func (s *Server) Count(resource string) int {
	s.t.Helper()
	return len(s.List(resource, "", 1000))
}

// Records returns v — a JSON list of objects as the CRM sends them, like a record's "lines" or
// a page's "data" — as records, failing the test when it is anything else.
func Records(t testing.TB, v any) []Record {
	t.Helper()
	items, ok := v.([]any)
	if !ok {
		t.Fatalf("want a list of objects, got %T %v", v, v)
	}
	out := make([]Record, 0, len(items))
	for _, item := range items {
		r, ok := item.(map[string]any)
		if !ok {
			t.Fatalf("want a list of objects, one item is %T %v", item, item)
		}
		out = append(out, r)
	}
	return out
}
