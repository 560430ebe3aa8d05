package cli_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// startDataflow starts this test binary as the dataflow command (TestMain runs cli.Run when
// its argv[0] is "dataflow") in dir, with args.
func startDataflow(t *testing.T, dir string, args ...string) (cmd *exec.Cmd, exited <-chan error, stdout, stderr *syncBuffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	cmd = &exec.Cmd{Path: exe, Args: append([]string{"dataflow"}, args...), Dir: dir, Stdout: stdout, Stderr: stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return cmd, done, stdout, stderr
}

// waitExit waits (at most 20 s) for cmd to end and returns its exit status.
func waitExit(t *testing.T, done <-chan error) int {
	t.Helper()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(20 * time.Second):
		t.Fatal("dataflow did not end within 20 s of the signal")
		return -1
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// A run that SIGINT stops in the middle (here: while the target's server takes its time to
// answer the batch's read) finishes the batch, exits 130, and its summary says it was
// interrupted.
func TestRunInterruptedBySIGINTExits130(t *testing.T) {
	asked := make(chan struct{}, 1)
	addr := serveLoopback(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case asked <- struct{}{}:
		default:
		}
		// A batch in hand is finished, its reads included: the server answers, slowly.
		time.Sleep(time.Second)
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			io.WriteString(w, `{"id": "1", "sku": "A-1"}`)
			return
		}
		io.WriteString(w, `{"items": []}`)
	})

	dir := shopProject(t, addr, "")
	cmd, exited, stdout, stderr := startDataflow(t, dir, "run")
	select {
	case <-asked:
	case <-exited:
		t.Fatalf("the run ended before it asked the server\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	case <-time.After(20 * time.Second):
		t.Fatalf("the run never asked the server\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, exited); code != 130 {
		t.Errorf("exit status %d, want 130\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout.String(), " records failed; interrupted before the end\n") {
		t.Errorf("the summary does not say the run was interrupted:\n%s", stdout)
	}
	if !strings.HasSuffix(stderr.String(), "dataflow run: interrupted; the finished batches are saved, the rest is synced by the next run\n") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

// dataflow run --every, stopped by SIGTERM while it waits for its next run, exits 143.
func TestRunEveryStoppedBySIGTERMExits143(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, sub := range []string{"mappings", "schemas"} {
		if err := os.CopyFS(filepath.Join(dir, sub), os.DirFS(filepath.Join(repo, sub))); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"custom-crm.sql", "squarespace.sql"} {
		data, err := os.ReadFile(filepath.Join(repo, "testdata/local", f))
		if err != nil {
			t.Fatal(err)
		}
		writeFiles(t, dir, map[string]string{"testdata/local/" + f: string(data)})
	}
	cmd, exited, stdout, stderr := startDataflow(t, dir, "run", "--every", "1h")
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(stdout.String(), "records failed") {
		if time.Now().After(deadline) {
			t.Fatalf("no summary after 60 s\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // past the summary, into the wait
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, exited); code != 143 {
		t.Errorf("exit status %d, want 143\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if got, want := stderr.String(), "dataflow run: interrupted between runs; every run before it finished\n"; got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}
}

// A batch in hand is finished at SIGINT, but not its waits: a server that answers a create
// with 429 and Retry-After: 60 does not hold the run for a minute. The run stops at once,
// exits 130, and the create it did not make is left to the next run, which makes it.
func TestRunInterruptedDuringARetryAfterEndsPromptly(t *testing.T) {
	asked := make(chan struct{}, 1)
	var limited atomic.Bool
	limited.Store(true)
	var created atomic.Int32
	addr := serveLoopback(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			if limited.Load() {
				select {
				case asked <- struct{}{}:
				default:
				}
				w.Header().Set("Retry-After", "60")
				w.WriteHeader(http.StatusTooManyRequests)
				io.WriteString(w, `{"message": "slow down"}`)
				return
			}
			created.Add(1)
			io.WriteString(w, `{"id": "1", "sku": "A-1"}`)
			return
		}
		io.WriteString(w, `{"items": []}`)
	})

	dir := shopProject(t, addr, "retry: {max_wait: 10m}\n")
	cmd, exited, stdout, stderr := startDataflow(t, dir, "run")
	select {
	case <-asked:
	case <-exited:
		t.Fatalf("the run ended before it tried the create\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	case <-time.After(20 * time.Second):
		t.Fatalf("the run never tried the create\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	time.Sleep(200 * time.Millisecond) // into the wait
	signalled := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, exited); code != 130 {
		t.Errorf("exit status %d, want 130\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	// Generous for a loaded machine, far below the minute the server asked for.
	if took := time.Since(signalled); took > 10*time.Second {
		t.Errorf("the run took %v to stop after SIGINT", took)
	}
	if created.Load() != 0 {
		t.Fatalf("created %d records while limited", created.Load())
	}

	limited.Store(false)
	_, exited, stdout, stderr = startDataflow(t, dir, "run")
	if code := waitExit(t, exited); code != 0 {
		t.Fatalf("the next run exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if created.Load() != 1 {
		t.Errorf("the next run created %d records, want 1\nstdout:\n%s", created.Load(), stdout)
	}
	if !regexp.MustCompile(`(?m)^requests: shop [1-9]\d*$`).MatchString(stdout.String()) {
		t.Errorf("the summary does not count the requests sent to the shop:\n%s", stdout)
	}
}

// shopProject writes a project that syncs a CRM's one product (SQLite) to the items of a shop
// served over HTTP at addr, with extra system settings for the shop, and returns its directory.
func shopProject(t *testing.T, addr, shopSettings string) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"mappings/crm-to-shop.yaml": `dataflow: crm-to-shop
source: crm
target: shop
flows:
  - id: product-to-item
    source: Product
    target: Item
    sync: to-target
    create: always
    merge:
      - [{source: sku, target: sku}]
    properties:
      - {source: sku, target: sku}
`,
		"mappings/systems/crm.yaml": `system: crm
name: CRM
connector: sqlite
path: crm.db
init: crm.sql
entities:
  Product: {table: products, id: id, schema: product.json}
`,
		"mappings/systems/product.json": `{"type": "object", "properties": {"id": {"type": "integer"}, "sku": {"type": "string"}}}`,
		"mappings/systems/shop.yaml": `system: shop
name: Shop
connector: http
base_url: http://` + addr + `
` + shopSettings + `entities:
  Item:
    id: id
    schema: item.json
    list: {path: /items, records: items}
    get: {path: "/items/{id}"}
    create: {path: /items, body: record, result: ""}
`,
		"mappings/systems/item.json": `{"type": "object", "properties": {"id": {"type": "string"}, "sku": {"type": "string"}}}`,
		"crm.sql":                    "CREATE TABLE products (id INTEGER PRIMARY KEY, sku TEXT); INSERT INTO products (sku) VALUES ('A-1');",
	})
	return dir
}

// A dry run lists the requests its writes would send to a system that can say so (method and
// path as the system file writes them), and sends none of them.
func TestDryRunListsTheRequestsItWouldSend(t *testing.T) {
	var writes atomic.Int32
	addr := serveLoopback(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			writes.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"items": []}`)
	})
	dir := shopProject(t, addr, "")
	// A dry run creates no database: the CRM's is made as a first run would make it.
	runSQL(t, filepath.Join(dir, "crm.db"), "CREATE TABLE products (id INTEGER PRIMARY KEY, sku TEXT); INSERT INTO products (sku) VALUES ('A-1');")
	_, exited, stdout, stderr := startDataflow(t, dir, "run", "--dry-run")
	if code := waitExit(t, exited); code != 0 {
		t.Fatalf("exit status %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	want := "dry run: the writes would send these requests (paths as the system files write them):\n  shop Item: create: POST /items (1 record)\n"
	if !strings.Contains(stdout.String(), want) {
		t.Errorf("stdout:\n%s\nwant it to hold:\n%s", stdout, want)
	}
	if writes.Load() != 0 {
		t.Errorf("the dry run sent %d writes", writes.Load())
	}
}

// serveLoopback serves handler on a free 127.0.0.1 port until the test ends, and returns the
// address.
func serveLoopback(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
