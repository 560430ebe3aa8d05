package httpconn

// A fake JSON API on 127.0.0.1 with faults injected per request: the tests' server. It keeps
// items (id, sku, name, modifiedOn), lists them in the paging style a test selects, honours
// idempotency keys, and can answer a request with a 5xx, a 429 with Retry-After, a slow answer,
// a reset connection, garbage or truncated JSON, an endless body, or a create it commits and
// whose response it then loses.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
)

// fault answers a request instead of the API.
type fault func(a *api, w http.ResponseWriter, r *http.Request)

// hit is a request the server saw.
type hit struct {
	method, path string
	query        map[string][]string
	header       http.Header
	body         string
}

type api struct {
	t   *testing.T
	srv *httptest.Server

	mu     sync.Mutex
	items  map[int]map[string]any
	nextID int
	keys   map[string]int // idempotency key → id
	// applied holds the idempotency keys of the stock adjustments applied: an adjustment sent
	// again with a key seen before changes nothing.
	applied map[string]bool
	hits    []hit
	faults  map[string][]fault // "METHOD /path" (or "*") → faults for the next requests, in order
	style   string             // list paging: cursor, page, offset, link
	// linkBase is the origin the Link header points at (another server, for the refusal test).
	linkBase string
	delay    time.Duration // every request takes this long (for the concurrency test)
	// strictCursor refuses a cursor with other parameters, as Squarespace does.
	strictCursor bool
	// totalPages, when set, wraps page-style pages as {"items": [...], "totalPages": n}.
	totalPages int

	inflight, maxInflight atomic.Int64
}

func newAPI(t *testing.T, n int) *api {
	t.Helper()
	a := &api{t: t, items: map[int]map[string]any{}, keys: map[string]int{}, applied: map[string]bool{}, faults: map[string][]fault{}, nextID: 1, style: "cursor"}
	for range n {
		a.add(map[string]any{"sku": fmt.Sprintf("SKU-%d", a.nextID), "name": fmt.Sprintf("Item %d", a.nextID)})
	}
	a.srv = httptest.NewServer(a) // 127.0.0.1
	t.Cleanup(a.srv.Close)
	return a
}

func (a *api) add(rec map[string]any) map[string]any {
	id := a.nextID
	a.nextID++
	rec["id"] = id
	rec["modifiedOn"] = fmt.Sprintf("2024-01-01T00:00:%02dZ", id%60)
	a.items[id] = rec
	return rec
}

// inject queues faults for the next requests to route ("POST /items", or "*" for any).
func (a *api) inject(route string, fs ...fault) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.faults[route] = append(a.faults[route], fs...)
}

func (a *api) requests(route string) []hit {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []hit
	for _, h := range a.hits {
		if route == "*" || h.method+" "+h.path == route {
			out = append(out, h)
		}
	}
	return out
}

func (a *api) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.items)
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := a.inflight.Add(1)
	defer a.inflight.Add(-1)
	for {
		m := a.maxInflight.Load()
		if n <= m || a.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	route := r.Method + " " + r.URL.Path
	a.mu.Lock()
	a.hits = append(a.hits, hit{method: r.Method, path: r.URL.Path, query: r.URL.Query(), header: r.Header.Clone(), body: string(body)})
	var f fault
	for _, k := range []string{route, "*"} {
		if q := a.faults[k]; len(q) > 0 {
			f, a.faults[k] = q[0], q[1:]
			break
		}
	}
	delay := a.delay
	a.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	if f != nil {
		f(a, w, r)
		return
	}
	a.serve(w, r)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// serve is the API itself.
func (a *api) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method == "GET" && r.URL.Path == "/items":
		a.list(w, r)
	case r.Method == "GET" && len(parts) == 2 && parts[0] == "items":
		id, _ := strconv.Atoi(parts[1])
		if rec, ok := a.items[id]; ok {
			writeJSON(w, 200, rec)
		} else {
			writeJSON(w, 404, map[string]any{"message": "no item " + parts[1]})
		}
	case r.Method == "GET" && len(parts) == 2 && parts[0] == "batch":
		var out []any
		for _, s := range strings.Split(parts[1], ",") {
			id, _ := strconv.Atoi(s)
			if rec, ok := a.items[id]; ok {
				out = append(out, rec)
			}
		}
		writeJSON(w, 200, map[string]any{"items": out})
	case r.Method == "GET" && len(parts) == 2 && parts[0] == "strict":
		// A batch endpoint that answers 404 when any one of the ids is missing.
		var out []any
		for _, s := range strings.Split(parts[1], ",") {
			id, _ := strconv.Atoi(s)
			rec, ok := a.items[id]
			if !ok {
				writeJSON(w, 404, map[string]any{"message": "no item " + s})
				return
			}
			out = append(out, rec)
		}
		writeJSON(w, 200, map[string]any{"items": out})
	case r.Method == "POST" && len(parts) == 3 && parts[0] == "items" && parts[2] == "stock":
		// A stock adjustment, {"add": n}: not idempotent by itself, so it honours keys.
		id, _ := strconv.Atoi(parts[1])
		rec, ok := a.items[id]
		if !ok {
			writeJSON(w, 404, map[string]any{"message": "no item " + parts[1]})
			return
		}
		key := r.Header.Get("Idempotency-Key")
		if key != "" && a.applied[key] {
			writeJSON(w, 200, rec)
			return
		}
		var in struct {
			Add int64 `json:"add"`
		}
		json.NewDecoder(r.Body).Decode(&in)
		stock, _ := rec["stock"].(int64)
		rec["stock"] = stock + in.Add
		if key != "" {
			a.applied[key] = true
		}
		writeJSON(w, 200, rec)
	case r.Method == "POST" && r.URL.Path == "/items":
		var rec map[string]any
		if err := json.NewDecoder(r.Body).Decode(&rec); err != nil || rec == nil {
			writeJSON(w, 400, map[string]any{"message": "the body must be an object"})
			return
		}
		key := r.Header.Get("Idempotency-Key")
		if id, ok := a.keys[key]; ok && key != "" {
			writeJSON(w, 200, a.items[id])
			return
		}
		if sku, _ := rec["sku"].(string); sku == "" {
			writeJSON(w, 422, map[string]any{"message": "sku is required"})
			return
		}
		rec = a.add(rec)
		if key != "" {
			a.keys[key] = rec["id"].(int)
		}
		writeJSON(w, 201, rec)
	case (r.Method == "PATCH" || r.Method == "PUT") && len(parts) == 2 && parts[0] == "items":
		id, _ := strconv.Atoi(parts[1])
		rec, ok := a.items[id]
		if !ok {
			writeJSON(w, 404, map[string]any{"message": "no item " + parts[1]})
			return
		}
		var patch map[string]any
		json.NewDecoder(r.Body).Decode(&patch)
		if sku, ok := patch["sku"]; ok && sku == "" {
			writeJSON(w, 422, map[string]any{"error": map[string]any{"message": "sku cannot be empty"}})
			return
		}
		if r.Method == "PUT" {
			rec = map[string]any{"id": id}
			a.items[id] = rec
		}
		for k, v := range patch {
			if k != "id" {
				rec[k] = v
			}
		}
		rec["modifiedOn"] = "2024-06-01T00:00:00Z"
		writeJSON(w, 200, rec)
	case r.Method == "DELETE" && len(parts) == 2 && parts[0] == "items":
		id, _ := strconv.Atoi(parts[1])
		if _, ok := a.items[id]; !ok {
			writeJSON(w, 404, map[string]any{"message": "no item " + parts[1]})
			return
		}
		delete(a.items, id)
		w.WriteHeader(204)
	default:
		writeJSON(w, 404, map[string]any{"message": "no route " + r.Method + " " + r.URL.Path})
	}
}

// list answers GET /items in the paging style of the test, 3 items per page unless asked.
func (a *api) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, lastID := q.Get("modifiedAfter"), 0
	cursor := q.Get("cursor")
	if cursor != "" {
		// A cursor carries the filter of the first request, as Squarespace's do.
		id, filter, _ := strings.Cut(cursor, ":")
		lastID, _ = strconv.Atoi(id)
		after = filter
	}
	// ?sku=A&sku=B,C: the items of those SKUs.
	var skus []string
	for _, v := range q["sku"] {
		skus = append(skus, strings.Split(v, ",")...)
	}
	var ids []int
	for id, rec := range a.items {
		if after != "" && rec["modifiedOn"].(string) < after {
			continue
		}
		if len(skus) > 0 && !slices.Contains(skus, fmt.Sprint(rec["sku"])) {
			continue
		}
		ids = append(ids, id)
	}
	sort.Ints(ids)
	recs := func(from, n int) []any {
		out := []any{}
		for i := from; i < len(ids) && i < from+n; i++ {
			out = append(out, a.items[ids[i]])
		}
		return out
	}
	size := 3
	for _, p := range []string{"limit", "_limit"} {
		if v, err := strconv.Atoi(q.Get(p)); err == nil && v > 0 {
			size = v
		}
	}
	switch a.style {
	case "cursor":
		if cursor != "" && len(q) > 1 && a.strictCursor {
			writeJSON(w, 400, map[string]any{"message": "cursor cannot be combined with other filters"})
			return
		}
		from := sort.SearchInts(ids, lastID+1)
		var next any
		if from+size < len(ids) {
			next = fmt.Sprintf("%d:%s", ids[from+size-1], after)
		}
		writeJSON(w, 200, map[string]any{"items": recs(from, size), "pagination": map[string]any{"nextPageCursor": next}})
	case "page":
		p, _ := strconv.Atoi(q.Get("_page"))
		if a.totalPages > 0 {
			writeJSON(w, 200, map[string]any{"items": recs((max(p, 1)-1)*size, size), "totalPages": a.totalPages})
			return
		}
		writeJSON(w, 200, recs((max(p, 1)-1)*size, size))
	case "offset":
		off, _ := strconv.Atoi(q.Get("offset"))
		writeJSON(w, 200, map[string]any{"data": recs(off, size)})
	case "link":
		p, _ := strconv.Atoi(q.Get("p"))
		p = max(p, 1)
		if p*size < len(ids) {
			base := a.linkBase // "": a relative link
			w.Header().Add("Link", fmt.Sprintf(`<%s/items?p=%d>; rel="next", <%s/items?p=1>; rel="first"`, base, p+1, base))
		}
		writeJSON(w, 200, recs((p-1)*size, size))
	}
}

// Faults.

func status(code int, retryAfter string, body string) fault {
	return func(a *api, w http.ResponseWriter, r *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

// slow answers after d, or when the client gives up.
func slow(d time.Duration) fault {
	return func(a *api, w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
		a.serve(w, r)
	}
}

// hangUp closes the connection without an answer, with a TCP reset.
func hangUp(a *api, w http.ResponseWriter, r *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		a.t.Errorf("hijack: %v", err)
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// commitThenHangUp does the request (a create is committed) and loses the response.
func commitThenHangUp(a *api, w http.ResponseWriter, r *http.Request) {
	a.serve(httptest.NewRecorder(), r)
	hangUp(a, w, r)
}

// commitThen does the request and answers status instead of its response: a 5xx after the
// server acted.
func commitThen(code int) fault {
	return func(a *api, w http.ResponseWriter, r *http.Request) {
		a.serve(httptest.NewRecorder(), r)
		status(code, "", internalError)(a, w, r)
	}
}

func body(text string) fault {
	return func(a *api, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, text)
	}
}

// cutBody promises more bytes than it sends, then hangs up.
func cutBody(a *api, w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Length", "1000")
	w.WriteHeader(200)
	io.WriteString(w, `{"items": [`)
	w.(http.Flusher).Flush()
	hangUp(a, w, r)
}

// endless sends a body that never ends, until the client hangs up.
func endless(a *api, w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(200)
	io.WriteString(w, `{"items": [`)
	chunk := []byte(strings.Repeat(`{"id": 1}, `, 1000))
	for {
		if _, err := w.Write(chunk); err != nil {
			return
		}
		if r.Context().Err() != nil {
			return
		}
	}
}

// Connections.

const testToken = "tok-CANARY-bearer-0xdeadbeef"

// system is a system file for the fake API; entity is the Item entity's YAML (indented 4).
func system(base, extra, entity string) string {
	return fmt.Sprintf(`system: fake
name: Fake
connector: http
base_url: %s
auth: {bearer: "${TOKEN}"}
timeout: 2s
retry: {attempts: 3, max_wait: 10s, base_delay: 10ms}
%sentities:
  Item:
    id: id
    updated: modifiedOn
    schema: item.json
%s`, base, extra, entity)
}

const itemEntity = `    list:
      path: /items
      query: {modifiedAfter: since}
      records: items
      page: {cursor: pagination.nextPageCursor, param: cursor}
    get: {path: "/items/{id}"}
    create: {path: /items, result: "", idempotency_header: Idempotency-Key}
    update: {path: "/items/{id}", result: ""}
    delete: {path: "/items/{id}"}
`

// loadSystem reads a system file.
func loadSystem(t *testing.T, src string, env map[string]string) *config.System {
	t.Helper()
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	l, err := config.NewLoader(lookup)
	if err != nil {
		t.Fatal(err)
	}
	p := &config.Project{}
	if ds := l.AddFile(p, "fake.yaml", []byte(src)); ds.HasErrors() {
		t.Fatalf("system file:\n%v\n%s", ds, src)
	}
	return p.Systems[0]
}

// openConn opens a connection to a system file, with a fake clock.
func openConn(t *testing.T, src string, env map[string]string) (*conn, *fakeClock) {
	t.Helper()
	if env == nil {
		env = map[string]string{"TOKEN": testToken}
	}
	c, err := Driver{}.Open(context.Background(), loadSystem(t, src, env), nil, connector.OpenOptions{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	hc, ok := c.(*conn)
	if !ok {
		hc = c.(countingConn).conn
	}
	clk := &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	hc.cl.now, hc.cl.sleep = clk.now, clk.sleep
	return hc, clk
}

// fakeClock is the client's clock: sleeping advances it at once and records the wait.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps []time.Duration
}

func (f *fakeClock) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sleeps = append(f.sleeps, d)
	f.t = f.t.Add(d)
	return ctx.Err()
}

func (f *fakeClock) waits() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

// scanAll reads every record of Item.
func scanAll(t *testing.T, c *conn, since string) ([][]connector.Record, error) {
	t.Helper()
	var pages [][]connector.Record
	err := c.Scan(context.Background(), "Item", since, func(recs []connector.Record) error {
		pages = append(pages, recs)
		return nil
	})
	return pages, err
}

func ids(pages [][]connector.Record) string {
	var s []string
	for _, p := range pages {
		var ps []string
		for _, r := range p {
			ps = append(ps, r.ID)
		}
		s = append(s, strings.Join(ps, ","))
	}
	return strings.Join(s, " | ")
}
