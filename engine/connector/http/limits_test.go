package httpconn

// Rate budgets shared by the connections of a driver, paused by the server's rate-limit
// headers; retries bounded by time; field-level error messages; the results of a write call
// that fails midway.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

// windowServer counts requests in fixed windows and answers 429 beyond limit per window, as
// PocketBase's rate limiter does.
type windowServer struct {
	mu        sync.Mutex
	start     time.Time
	window    time.Duration
	limit     int
	counts    map[int]int
	refused   int
	headers   http.Header // sent with every answer
	responses int
}

func (s *windowServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	n := int(time.Since(s.start) / s.window)
	s.counts[n]++
	over := s.limit > 0 && s.counts[n] > s.limit
	if over {
		s.refused++
	}
	s.responses++
	for k, v := range s.headers {
		w.Header()[k] = v
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if over {
		w.WriteHeader(429)
		w.Write([]byte(`{"message":"Too Many Requests."}`))
		return
	}
	w.Write([]byte(`{"items":[{"id":"1"}]}`))
}

// TestRateBudgetSharedByConnections: two connections to one system through one driver spend
// one budget of 5 requests per 250 ms: 20 requests never exceed it in any window, and the
// server refuses none.
func TestRateBudgetSharedByConnections(t *testing.T) {
	ws := &windowServer{start: time.Now(), window: 250 * time.Millisecond, limit: 5, counts: map[int]int{}}
	srv := httptest.NewServer(ws)
	defer srv.Close()
	src := system(srv.URL, "rate_limit: {requests: 5, per: 250ms}\nconcurrency: 8\n", `    list: {path: /items, records: items}
`)
	d := NewDriver()
	var conns []*conn
	for range 2 {
		c, err := d.Open(ctx, loadSystem(t, src, map[string]string{"TOKEN": testToken}), nil, connector.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c.(*conn))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i := range 20 {
		wg.Go(func() {
			err := conns[i%2].Scan(ctx, "Item", "", func([]connector.Record) error { return nil })
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if ws.refused != 0 {
		t.Errorf("%d requests refused for the rate; windows %v", ws.refused, ws.counts)
	}
	if got := conns[0].Requests() + conns[1].Requests(); got != 20 {
		t.Errorf("%d requests counted, want 20", got)
	}
}

// TestRateLimitHeadersPause: a response saying the budget is spent pauses the next request
// until its reset, in each header style.
func TestRateLimitHeadersPause(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		status int
		h      http.Header
		want   time.Duration
	}{
		{"x-ratelimit", 200, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"3"}}, 3 * time.Second},
		{"x-ratelimit epoch", 200, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"1740830405"}}, 5 * time.Second},
		{"ratelimit", 200, http.Header{"Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"2"}}, 2 * time.Second},
		{"structured", 200, http.Header{"Ratelimit": {"limit=100, remaining=0, reset=7"}}, 7 * time.Second},
		{"retry-after", 429, http.Header{"Retry-After": {"4"}}, 4 * time.Second},
		{"budget left", 200, http.Header{"X-Ratelimit-Remaining": {"3"}, "X-Ratelimit-Reset": {"3"}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBudget(rateSettings{})
			b.observe(tc.status, tc.h, now)
			var slept time.Duration
			b.wait(ctx, func() time.Time { return now }, func(_ context.Context, d time.Duration) error { slept = d; return nil })
			if slept != tc.want {
				t.Errorf("paused %s, want %s", slept, tc.want)
			}
		})
	}
}

// TestRetryForBoundsByTime: with retry_for, a 429 without Retry-After is tried again past
// retry.attempts, with jittered waits, until the time is spent.
func TestRetryForBoundsByTime(t *testing.T) {
	a := newAPI(t, 1)
	var faults []fault
	for range 8 {
		faults = append(faults, status(429, "", `{"message":"Too Many Requests."}`))
	}
	a.inject("GET /items", faults...)
	c, clk := openConn(t, system(a.srv.URL, "", itemEntity), nil)
	c.s.retryFor = time.Minute
	c.cl.jitter = func(d time.Duration) time.Duration { return d / 2 }
	if _, err := scanAll(t, c, ""); err != nil {
		t.Fatalf("scan: %v (attempts %d)", err, c.s.attempts)
	}
	if got := len(clk.waits()); got != 8 {
		t.Errorf("%d waits, want 8: %v", got, clk.waits())
	}
	a.inject("GET /items", faults...)
	c.s.retryFor = 500 * time.Millisecond
	_, err := scanAll(t, c, "")
	if err == nil || !strings.Contains(err.Error(), "429 Too Many Requests after 8 attempts over 500ms (retry.retry_for 500ms spent)") {
		t.Errorf("error %v", err)
	}
}

// TestFieldErrors: the message of a refused record names the fields and their messages, from
// the common shapes, and from the system's error expression.
func TestFieldErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"data":{"company":{"code":"validation_max_text_constraint","message":"Must be no more than 10 character(s)."}},"message":"Failed to update record.","status":400}`,
			"Failed to update record. (company: Must be no more than 10 character(s).)"},
		{`{"type":"https://example.com/probs/invalid","title":"Your request is not valid.","status":422,"detail":"2 fields are invalid","invalid-params":[{"name":"age","reason":"must be a positive integer"},{"name":"color","reason":"must be 'green', 'red' or 'blue'"}]}`,
			"2 fields are invalid (age: must be a positive integer; color: must be 'green', 'red' or 'blue')"},
		{`{"errors":[{"field":"email","message":"is taken"},{"source":{"pointer":"/data/attributes/name"},"detail":"can't be blank"}]}`,
			"email: is taken; name: can't be blank"},
		{`{"message":"Validation failed","errors":{"email":["is taken","is too long"]}}`,
			"Validation failed (email: is taken, is too long)"},
		{`{"error":"invalid_request"}`, "invalid_request"},
		{`{"data":{"id":"x1","name":"not an error"},"message":"Failed."}`, "Failed."},
	} {
		if got := serverMessage([]byte(tc.body), nil, nil); got != tc.want {
			t.Errorf("%s\n got %s\nwant %s", tc.body, got, tc.want)
		}
	}
	custom, err := compileResp(`map(fault.problems, .at + " " + .text)`)
	if err != nil {
		t.Fatal(err)
	}
	if got := serverMessage([]byte(`{"fault":{"problems":[{"at":"sku","text":"is malformed"}]}}`), nil, custom); got != "sku is malformed" {
		t.Errorf("error expression: %s", got)
	}
}

// TestFieldErrorInTheRecordError: a refused create says which field and why.
func TestFieldErrorInTheRecordError(t *testing.T) {
	a := newAPI(t, 1)
	a.inject("POST /items", status(400, "", `{"data":{"company":{"code":"validation_max_text_constraint","message":"Must be no more than 10 character(s)."}},"message":"Failed to create record.","status":400}`))
	c, _ := openConn(t, system(a.srv.URL, "", itemEntity), nil)
	res, err := c.Create(ctx, "Item", []map[string]any{{"sku": "A", "company": "far too long a name"}})
	want := "fake Item: POST " + a.srv.URL + "/items: 400 Bad Request: Failed to create record. (company: Must be no more than 10 character(s).)"
	if err != nil || res[0].Err == nil || res[0].Err.Error() != want {
		t.Errorf("results %+v, %v; want %s", res, err, want)
	}
}

// TestWriteFailingMidwayReturnsWhatWasWritten: a create call whose third record fails the call
// (a 500 without an idempotency key) returns, with its error, the records created before it
// with their ids, and the ones not written as zero results.
func TestWriteFailingMidwayReturnsWhatWasWritten(t *testing.T) {
	a := newAPI(t, 0)
	a.inject("POST /items", nil, nil, status(500, "", `{"message":"boom"}`))
	src := strings.Replace(system(a.srv.URL, "concurrency: 1\n", itemEntity), "idempotency_header: Idempotency-Key", "id_result: id", 1)
	c, _ := openConn(t, src, nil)
	res, err := c.Create(ctx, "Item", []map[string]any{{"sku": "A"}, {"sku": "B"}, {"sku": "C"}, {"sku": "D"}})
	if err == nil || !strings.Contains(err.Error(), "500 Internal Server Error") {
		t.Fatalf("error %v", err)
	}
	if len(res) != 4 || res[0].Record.ID == "" || res[1].Record.ID == "" || res[2].Record.ID != "" || res[3].Record.ID != "" {
		t.Fatalf("results %+v", res)
	}
	if res[0].Record.Data["sku"] != "A" || res[1].Record.Data["sku"] != "B" {
		t.Errorf("records %+v", res)
	}
}

// TestCount: an entity with count is counted with one request; the connection is then a
// connector.Counter, and an entity without count is counted by reading its list.
func TestCount(t *testing.T) {
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.Path+"?"+r.URL.RawQuery)
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/bad":
			w.Write([]byte(`{"items":[],"totalItems":"many"}`))
		default:
			w.Write([]byte(`{"items":[{"id":"1"},{"id":"2"}],"totalItems":2417}`))
		}
	}))
	defer srv.Close()
	src := system(srv.URL, "", `    list: {path: /items, records: items}
    count: {path: /items, query: {perPage: 1}, total: totalItems}
  Other:
    id: id
    schema: item.json
    list: {path: /items, records: items}
  Bad:
    id: id
    schema: item.json
    list: {path: /items, records: items}
    count: {path: /bad, total: totalItems}
`)
	opened, err := Driver{}.Open(ctx, loadSystem(t, src, map[string]string{"TOKEN": testToken}), nil, connector.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer opened.Close()
	counter := opened.Capabilities().Counter
	if counter == nil {
		t.Fatalf("%T has no Counter", opened)
	}
	if n, err := counter.Count(ctx, "Item"); err != nil || n != 2417 || queries[0] != "/items?perPage=1" {
		t.Errorf("count %d, %v, requests %v", n, err, queries)
	}
	if n, err := counter.Count(ctx, "Other"); err != nil || n != 2 {
		t.Errorf("count of the list %d, %v", n, err)
	}
	_, err = counter.Count(ctx, "Bad")
	if want := `fake Bad: GET ` + srv.URL + `/bad: count.total: "totalItems" in the response is a string, not a number of records`; err == nil || err.Error() != want {
		t.Errorf("error %v\nwant %s", err, want)
	}
}

// TestPagingStopsOnTotalPages: page paging with total_pages stops after the last page, full
// as it is, without asking for an empty one.
func TestPagingStopsOnTotalPages(t *testing.T) {
	a := newAPI(t, 6)
	a.style = "page"
	c, _ := openConn(t, system(a.srv.URL, "", "    list: {path: /items, records: items, page: {page: _page, size: 3, size_param: _limit, total_pages: totalPages}}\n"), nil)
	a.totalPages = 2
	pages, err := scanAll(t, c, "")
	if err != nil || ids(pages) != "1,2,3 | 4,5,6" || len(a.requests("GET /items")) != 2 {
		t.Fatalf("pages %s, %d requests, %v", ids(pages), len(a.requests("GET /items")), err)
	}
}

// TestOperations: a connection tells the requests of each operation, paths as written, for a
// dry run to show; a key sent in the query is not among them.
func TestOperations(t *testing.T) {
	c, _ := openConn(t, strings.Replace(system("https://api.example.com", "", itemEntity), `auth: {bearer: "${TOKEN}"}`, `auth: {query: {name: key, value: "${TOKEN}"}}`, 1), nil)
	got := strings.Join(c.Operations("Item"), "\n")
	want := `list: GET /items
get: GET /items/{id}
create: POST /items
update: PATCH /items/{id}
delete: DELETE /items/{id}`
	if got != want || strings.Contains(got, testToken) {
		t.Errorf("operations\n%s\nwant\n%s", got, want)
	}
}
