package httpconn

// Hostile and awkward servers: integer stamps, ids beyond float64, endless paging, cancelled
// waits, echoed secrets, refused lookups, listings reordered by the run's own writes.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/diag"
)

const plainList = "    list: {path: /items, records: items, page: {cursor: pagination.nextPageCursor, param: cursor}}\n"

// TestSinceComparesIntegerStamps: with integer updated values, since filters as numbers: 100
// is after 99 and 10 after 9 (as text "100" < "99" and every record past 99 was dropped).
func TestSinceComparesIntegerStamps(t *testing.T) {
	a := newAPI(t, 6)
	for id, stamp := range map[int]int64{1: 8, 2: 9, 3: 10, 4: 99, 5: 100, 6: 1000} {
		a.items[id]["modifiedOn"] = stamp
	}
	c, _ := openConn(t, system(a.srv.URL, "", plainList), nil)
	for since, want := range map[string]string{"9": "2,3 | 4,5,6", "99": "4,5,6", "100": "5,6", "10": "3 | 4,5,6"} {
		pages, err := scanAll(t, c, since)
		if err != nil || ids(pages) != want {
			t.Errorf("since %s: pages %s, %v; want %s", since, ids(pages), err, want)
		}
	}
}

// TestSinceComparesTimesAsInstants: a since with another offset is the same instant, and a
// record whose stamp cannot be compared is kept for the engine to judge, not dropped.
func TestSinceComparesTimesAsInstants(t *testing.T) {
	a := newAPI(t, 5)
	a.items[1]["modifiedOn"] = "N/A"
	a.items[2]["modifiedOn"] = "2024-01-01 00:00:02" // as SQLite writes it: UTC
	c, _ := openConn(t, system(a.srv.URL, "", plainList), nil)
	pages, err := scanAll(t, c, "2024-01-01T01:00:03+01:00")
	if err != nil || ids(pages) != "1,3 | 4,5" {
		t.Errorf("pages %s, %v; want 1,3 | 4,5", ids(pages), err)
	}
}

// bigIDs is an API whose ids are beyond float64's exact integers: it lists one contact and
// records the requests (method, path and body) it gets.
type bigIDs struct {
	mu   sync.Mutex
	hits []string
}

func (b *bigIDs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	b.mu.Lock()
	b.hits = append(b.hits, r.Method+" "+r.URL.Path+" "+string(body))
	b.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch r.Method {
	case "GET":
		io.WriteString(w, `{"items": [{"id": 10000000000000000001, "owner": 10000000000000000003, "score": 0.1, "rank": 12, "ratio": 0.30000000000000000001, "huge": 1e400, "modifiedOn": "2024-01-01T00:00:00Z"}]}`)
	case "PATCH":
		io.WriteString(w, `{"id": 10000000000000000001, "modifiedOn": "2024-01-02T00:00:00Z"}`)
	}
}

// TestIDsAreNeverRounded: an id beyond float64 is linked by its exact text, an update goes to
// the record of that id, and numbers in the data keep their exact values, written back as they
// came.
func TestIDsAreNeverRounded(t *testing.T) {
	b := &bigIDs{}
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	c, _ := openConn(t, system(srv.URL, "", "    list: {path: /items, records: items}\n    update: {path: \"/items/{id}\", result: \"\"}\n"), nil)
	pages, err := scanAll(t, c, "")
	if err != nil || len(pages) != 1 || len(pages[0]) != 1 {
		t.Fatalf("pages %v, %v", pages, err)
	}
	rec := pages[0][0]
	if rec.ID != "10000000000000000001" {
		t.Errorf("id %q, want 10000000000000000001", rec.ID)
	}
	for k, want := range map[string]any{"id": json.Number("10000000000000000001"), "owner": json.Number("10000000000000000003"),
		"score": 0.1, "rank": int64(12), "ratio": json.Number("0.30000000000000000001"), "huge": json.Number("1e400")} {
		if got := rec.Data[k]; got != want {
			t.Errorf("%s = %#v, want %#v", k, got, want)
		}
	}
	res, err := c.Update(ctx, "Item", []connector.Record{{ID: rec.ID, Data: map[string]any{"owner": rec.Data["owner"], "ratio": rec.Data["ratio"]}}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("update: %v, %v", err, res[0].Err)
	}
	want := `PATCH /items/10000000000000000001 {"owner":10000000000000000003,"ratio":0.30000000000000000001}`
	if b.hits[1] != want {
		t.Errorf("request %s, want %s", b.hits[1], want)
	}
	if res[0].Record.ID != "10000000000000000001" {
		t.Errorf("stored record's id %q", res[0].Record.ID)
	}
}

// endlessPages is a server that pages on for ever: each page's cursor is the next number, and
// its pages hold n records each (0: empty pages).
type endlessPages struct {
	n        int
	requests atomic.Int64
}

func (e *endlessPages) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.requests.Add(1)
	cur, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
	data := []any{}
	for i := range e.n {
		data = append(data, map[string]any{"id": cur*e.n + i + 1, "modifiedOn": "2024-01-01T00:00:00Z"})
	}
	writeJSON(w, 200, map[string]any{"data": data, "next_cursor": strconv.Itoa(cur + 1)})
}

// TestPagingEnds: an empty page that still gives a next cursor ends the listing with an error at
// once, and so does the max_pages-th page of a listing that goes on.
func TestPagingEnds(t *testing.T) {
	empty := &endlessPages{}
	srv := httptest.NewServer(empty)
	t.Cleanup(srv.Close)
	c, _ := openConn(t, system(srv.URL, "", "    list: {path: /items, records: data, page: {cursor: next_cursor, param: cursor}}\n"), nil)
	_, err := scanAll(t, c, "")
	want := `fake Item: GET ` + srv.URL + `/items: page 1 is empty but the server gives a next page (cursor "1"); paging stopped, as a listing that goes on with empty pages may never end (check the list's paging keys)`
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant %s", err, want)
	}
	if n := empty.requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}

	full := &endlessPages{n: 2}
	srv = httptest.NewServer(full)
	t.Cleanup(srv.Close)
	c, _ = openConn(t, system(srv.URL, "", "    list: {path: /items, records: data, page: {cursor: next_cursor, param: cursor, max_pages: 5}}\n"), nil)
	pages, err := scanAll(t, c, "")
	want = `fake Item: GET ` + srv.URL + `/items: stopped after 5 pages (page.max_pages), and the server still gives a next page (cursor "5"); if the list is that long, raise max_pages in the list's page`
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant %s", err, want)
	}
	if n := full.requests.Load(); n != 5 || len(pages) != 5 {
		t.Errorf("%d requests, %d pages, want 5", n, len(pages))
	}
	// Without max_pages, 100000.
	if e := compileTestEntity(t, "    list: {path: /items, page: {page: p}}\n"); e.list.page.maxPages != 100_000 {
		t.Errorf("max_pages %d by default", e.list.page.maxPages)
	}
}

// compileTestEntity compiles the fake system's Item entity.
func compileTestEntity(t *testing.T, entity string) *entity {
	t.Helper()
	sys := loadSystem(t, system("http://127.0.0.1:1", "", entity), map[string]string{"TOKEN": testToken})
	var ds diag.Diagnostics
	e := compileEntity(sys.Entities[0], &ds)
	if ds.HasErrors() {
		t.Fatalf("compile: %v", ds)
	}
	return e
}

// TestCancelEndsWaits: a cancelled run ends a Retry-After wait of 60 s, and a listing that
// goes on for ever, at once; the error is context.Canceled.
func TestCancelEndsWaits(t *testing.T) {
	const bound = 2 * time.Second // promptly, on a machine under load; the wait is 60 s
	a := newAPI(t, 3)
	c, _ := openConn(t, system(a.srv.URL, "", itemEntity), nil)
	c.cl.sleep = sleep // real waits
	c.s.maxWait = 5 * time.Minute
	a.inject("GET /items", status(429, "60", `{"message": "slow down"}`))
	cctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	err := c.Scan(cctx, "Item", "", func([]connector.Record) error { return nil })
	if d := time.Since(start); d > bound || !errors.Is(err, context.Canceled) {
		t.Errorf("Retry-After: returned after %v with %v, want context.Canceled within %v", d, err, bound)
	}

	full := &endlessPages{n: 2}
	srv := httptest.NewServer(full)
	t.Cleanup(srv.Close)
	c, _ = openConn(t, system(srv.URL, "", "    list: {path: /items, records: data, page: {cursor: next_cursor, param: cursor}}\n"), nil)
	cctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	pages := 0
	start = time.Now()
	err = c.Scan(cctx, "Item", "", func([]connector.Record) error {
		if pages++; pages == 20 {
			time.AfterFunc(10*time.Millisecond, cancel)
		}
		return nil
	})
	if d := time.Since(start); d > bound || !errors.Is(err, context.Canceled) {
		t.Errorf("paging: returned after %v (%d pages) with %v, want context.Canceled within %v", d, pages, err, bound)
	}
}

// echoForms are the ways a server echoes a secret back, by name: form gives the text it
// echoes, and the part of it that must not show (the characters of a base64 text that encode
// the secret alone); ok is false when the form does not apply.
var echoForms = []struct {
	name string
	form func(secret, header string) (echo, sensitive string, ok bool)
}{
	{"as is", same(func(s string) string { return s })},
	{"lowercased", same(strings.ToLower)},
	{"uppercased", same(strings.ToUpper)},
	{"first 10", same(func(s string) string { return s[:10] })},
	{"first 13", same(func(s string) string { return s[:13] })},
	{"first 10 uppercased", same(func(s string) string { return strings.ToUpper(s[:10]) })},
	{"URL-escaped", same(url.QueryEscape)},
	{"path-escaped", same(url.PathEscape)},
	{"JSON-escaped", same(func(s string) string { j, _ := json.Marshal(s); return strings.Trim(string(j), `"`) })},
	{"base64", same(func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) })},
	{"base64 unpadded", same(func(s string) string { return base64.RawStdEncoding.EncodeToString([]byte(s)) })},
	{"base64 URL", same(func(s string) string { return base64.URLEncoding.EncodeToString([]byte(s)) })},
	{"base64 URL unpadded", same(func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) })},
	{"base64 of the header", func(s, h string) (string, string, bool) { return inBase64(base64.StdEncoding, h, s) }},
	{"base64 after 1 byte", func(s, _ string) (string, string, bool) { return inBase64(base64.StdEncoding, "="+s, s) }},
	{"base64 URL after 2 bytes", func(s, _ string) (string, string, bool) { return inBase64(base64.RawURLEncoding, "t="+s, s) }},
}

func same(f func(string) string) func(s, _ string) (string, string, bool) {
	return func(s, _ string) (string, string, bool) { e := f(s); return e, e, true }
}

// inBase64 encodes text, which holds s, and gives the characters that encode s alone.
func inBase64(enc *base64.Encoding, text, s string) (string, string, bool) {
	i := strings.Index(text, s)
	if i < 0 {
		return "", "", false
	}
	e := enc.EncodeToString([]byte(text))
	return e, e[(8*i+5)/6 : 8*(i+len(s))/6], true
}

// TestSecretsMaskedInEchoForms: a canary secret in every auth kind (and a header from a
// variable), echoed by the server in every common form, reaches no error a call returns and
// no dead-letter reason: not a list's, a get's, a find's, a create's or an update's, in a JSON
// message, in text, or in the start of a body that is not JSON.
func TestSecretsMaskedInEchoForms(t *testing.T) {
	const (
		bearer = "CanaryBearer+Tok/en=42xyzQ"
		user   = "svc-CanaryUser"
		pass   = "CanaryPass:word-9Zq"
		key    = "CanaryHeaderKey?77Wq"
		tenant = "CanaryTenant-88Rw"
	)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	kinds := []struct {
		name, auth string
		secrets    map[string]string // secret → the header value that carries it
	}{
		{"bearer", `auth: {bearer: "${SECRET}"}`, map[string]string{bearer: "Bearer " + bearer, tenant: tenant}},
		{"basic", `auth: {basic: {username: "${USER}", password: "${SECRET}"}}`, map[string]string{pass: basic, user: basic, strings.TrimPrefix(basic, "Basic "): basic, tenant: tenant}},
		{"header", `auth: {header: {name: X-Api-Key, value: "${SECRET}"}}`, map[string]string{key: key, tenant: tenant}},
	}
	entity := itemEntity + "    find: {by: [sku], path: /items, query: {sku: term}, records: items}\n"
	for _, kind := range kinds {
		secret := map[string]string{"bearer": bearer, "basic": pass, "header": key}[kind.name]
		for s, header := range kind.secrets {
			for _, f := range echoForms {
				echoed, sensitive, ok := f.form(s, header)
				if !ok {
					continue
				}
				t.Run(kind.name+"/"+s+"/"+f.name, func(t *testing.T) {
					a := newAPI(t, 2)
					src := strings.Replace(system(a.srv.URL, "headers: {X-Tenant: \"${TENANT}\"}\n", entity), `auth: {bearer: "${TOKEN}"}`, kind.auth, 1)
					c, _ := openConn(t, src, map[string]string{"SECRET": secret, "USER": user, "TENANT": tenant})
					say := func(code int, asJSON bool) fault {
						return func(a *api, w http.ResponseWriter, r *http.Request) {
							text := "refused: " + echoed + " is not valid"
							if asJSON {
								writeJSON(w, code, map[string]any{"message": text})
								return
							}
							w.WriteHeader(code)
							io.WriteString(w, text)
						}
					}
					var msgs []string
					a.inject("GET /items", say(401, true))
					_, err := scanAll(t, c, "")
					msgs = append(msgs, fmt.Sprint(err))
					a.inject("GET /items", say(200, false)) // not JSON: the start of the body is shown
					_, err = scanAll(t, c, "")
					msgs = append(msgs, fmt.Sprint(err))
					a.inject("GET /items/1", say(403, false))
					_, err = c.Get(ctx, "Item", []string{"1"})
					msgs = append(msgs, fmt.Sprint(err))
					a.inject("GET /items", say(400, true))
					_, err = c.Find(ctx, "Item", []string{"sku"}, [][]string{{`a"b`}})
					msgs = append(msgs, fmt.Sprint(err))
					a.inject("POST /items", say(422, true))
					res, err := c.Create(ctx, "Item", []map[string]any{{"sku": "A"}})
					if err != nil {
						t.Fatal(err)
					}
					msgs = append(msgs, fmt.Sprint(res[0].Err)) // a dead letter's reason
					a.inject("PATCH /items/1", say(422, false))
					res, err = c.Update(ctx, "Item", []connector.Record{{ID: "1", Data: map[string]any{"name": "x"}}})
					if err != nil {
						t.Fatal(err)
					}
					msgs = append(msgs, fmt.Sprint(res[0].Err))
					for i, msg := range msgs {
						if !strings.Contains(msg, "refused: ") {
							t.Errorf("call %d: the server's message is not in %q", i, msg)
						}
						if part := leakedN(msg, sensitive, 10); part != "" {
							t.Errorf("call %d: %q of the echoed %q in %s", i, part, echoed, msg)
						}
						if part := leaked(msg, s); part != "" {
							t.Errorf("call %d: %q of the secret in %s", i, part, msg)
						}
					}
				})
			}
		}
	}
}

// leakedN returns a part of s (n bytes or more) that msg holds, or "".
func leakedN(msg, s string, n int) string {
	for i := 0; i+n <= len(s); i++ {
		if strings.Contains(msg, s[i:i+n]) {
			return s[i : i+n]
		}
	}
	return ""
}

// quoteRefusing is the fake API behind a gate that refuses, with 400, any request whose query
// or path holds a `"` (as a CRM's search refuses an email with a quote in it).
func quoteRefusing(t *testing.T, a *api) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.RawQuery, "%22") || strings.Contains(r.URL.EscapedPath(), "%22") {
			a.mu.Lock()
			a.hits = append(a.hits, hit{method: r.Method, path: r.URL.Path, query: r.URL.Query()})
			a.mu.Unlock()
			writeJSON(w, 400, map[string]any{"message": "invalid search: unbalanced quote"})
			return
		}
		a.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestFindRefusedKeyIsARecordError: a find the server refuses with 400 for one key's value is
// a RecordError at the positions of that key (asked for alone to find it), with the records
// of the other keys; a 401 still fails the whole find.
func TestFindRefusedKeyIsARecordError(t *testing.T) {
	a := newAPI(t, 5)
	srv := quoteRefusing(t, a)
	c, _ := openConn(t, system(srv.URL, "", findEntity), nil)
	keys := [][]string{{"SKU-1"}, {`bad"sku`}, {"SKU-3"}, {`bad"sku`}, {"SKU-5"}, {`x"y`}}
	recs, err := c.Find(ctx, "Item", []string{"sku"}, keys)
	re, ok := connector.AsRecordError(err)
	if !ok {
		t.Fatalf("error %v, want a RecordError", err)
	}
	if fmt.Sprint(re.Index) != "[1 3 5]" {
		t.Errorf("index %v, want [1 3 5]", re.Index)
	}
	want := "fake Item: GET " + srv.URL + "/items: 400 Bad Request: invalid search: unbalanced quote"
	if re.Err.Error() != want {
		t.Errorf("reason %q\nwant %q", re.Err, want)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.ID)
	}
	if strings.Join(got, ",") != "1,3,5" {
		t.Errorf("found %v, want 1,3,5", got)
	}

	// A batch larger than what is asked for again key by key: every key of it.
	big := strings.Replace(findEntity, "batch: 4", "batch: 30", 1)
	c, _ = openConn(t, system(srv.URL, "", big), nil)
	keys = nil
	for i := range 29 {
		keys = append(keys, []string{fmt.Sprintf("none-%d", i)})
	}
	keys = append(keys, []string{`bad"sku`}, []string{"SKU-4"}) // a request of 30 keys, then one of 1
	before := len(a.requests("GET /items"))
	recs, err = c.Find(ctx, "Item", []string{"sku"}, keys)
	re, ok = connector.AsRecordError(err)
	if !ok || len(re.Index) != 30 || re.Index[0] != 0 || re.Index[29] != 29 || len(recs) != 1 || recs[0].ID != "4" {
		t.Errorf("big batch: %d records, %v", len(recs), err)
	}
	if n := len(a.requests("GET /items")) - before; n != 2 {
		t.Errorf("big batch: %d requests, want 2", n)
	}

	a.inject("GET /items", status(401, "", `{"message": "token expired"}`))
	c, _ = openConn(t, system(a.srv.URL, "", findEntity), nil)
	if _, err := c.Find(ctx, "Item", []string{"sku"}, [][]string{{"SKU-1"}}); err == nil || errors.As(err, new(*connector.RecordError)) {
		t.Errorf("401: %v, want an error of the whole find", err)
	}
}

// TestGetRefusedIDIsARecordError: a get the server refuses with 400 for one id is a
// RecordError at that id's position, with the records of the other ids, one by one or
// batched (the batch asked for again id by id); an update that needs the stored record fails
// for that record only.
func TestGetRefusedIDIsARecordError(t *testing.T) {
	a := newAPI(t, 5)
	srv := quoteRefusing(t, a)
	for _, tc := range []struct{ name, get string }{
		{"one by one", `    get: {path: "/items/{id}"}`},
		{"batched", `    get: {path: '/batch/{join(ids, ",")}', batch: 3, records: items}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := openConn(t, system(srv.URL, "", "    list: {path: /items, records: items}\n"+tc.get+"\n"), nil)
			got, err := c.Get(ctx, "Item", []string{"2", `x"y`, "4", "99"})
			re, ok := connector.AsRecordError(err)
			if !ok || fmt.Sprint(re.Index) != "[1]" || !strings.HasSuffix(re.Err.Error(), ": 400 Bad Request: invalid search: unbalanced quote") {
				t.Fatalf("error %v, want a RecordError at [1]", err)
			}
			if len(got) != 2 || got["2"].ID != "2" || got["4"].ID != "4" {
				t.Errorf("got %v, want 2 and 4", got)
			}
		})
	}
	c, _ := openConn(t, system(srv.URL, "", "    list: {path: /items, records: items}\n    get: {path: \"/items/{id}\"}\n    update: {path: \"/items/{id}\", body: '{\"name\": current.name + \"!\"}', result: \"\"}\n"), nil)
	res, err := c.Update(ctx, "Item", []connector.Record{{ID: `x"y`}, {ID: "3"}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err == nil || !strings.Contains(res[0].Err.Error(), `reading the stored record x"y for update`) || res[1].Err != nil || res[1].Record.Data["name"] != "Item 3!" {
		t.Errorf("results %+v", res)
	}
}

// TestGetAbsentMeansAbsent: a batch whose response lacks some ids is not taken as their
// deletion: each is asked for alone, and only a 404 (or an empty answer) for it alone makes it
// absent. A response with records not asked for (a server that ignores the ids) is an error,
// not a batch of absences.
func TestGetAbsentMeansAbsent(t *testing.T) {
	a := newAPI(t, 5)
	c, _ := openConn(t, system(a.srv.URL, "", "    list: {path: /items, records: items}\n    get: {path: '/batch/{join(ids, \",\")}', batch: 3, records: items}\n"), nil)
	// A server that caps its batches at one record.
	a.inject("GET /batch/1,2,99", body(`{"items": [{"id": 1, "sku": "SKU-1"}]}`))
	got, err := c.Get(ctx, "Item", []string{"1", "2", "99"})
	if err != nil || len(got) != 2 || got["2"].ID != "2" {
		t.Errorf("got %v, %v; want 1 and 2", got, err)
	}
	var paths []string
	for _, h := range a.requests("*") {
		paths = append(paths, h.path)
	}
	slices.Sort(paths)
	if want := "/batch/1,2,99 /batch/2 /batch/99"; strings.Join(paths, " ") != want {
		t.Errorf("requests %s, want %s", strings.Join(paths, " "), want)
	}

	// A server that ignores the ids and answers with the first records of its list.
	a.inject("GET /batch/4,5,6", body(`{"items": [{"id": 1}, {"id": 2}, {"id": 3}]}`))
	got, err = c.Get(ctx, "Item", []string{"4", "5", "6"})
	want := "fake Item: GET " + a.srv.URL + "/batch/4,5,6: asked for 3 ids, the response holds the record of id 1, which was not asked for: the server does not seem to filter by the ids; check get.path and get.query"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, %v\nwant %s", got, err, want)
	}
}

// byUpdated is an API whose list is sorted by updated (then id) and paged by page number or
// offset, 3 a page; an update stamps the record with the next tick, moving it to the end.
type byUpdated struct {
	mu      sync.Mutex
	updated map[int]int
	tick    int
	// editAfterFirst: after the first page, another app edits record 1 (moving it to the end).
	editAfterFirst bool
	pages          int
}

func newByUpdated(n int) *byUpdated {
	b := &byUpdated{updated: map[int]int{}}
	for id := 1; id <= n; id++ {
		b.tick++
		b.updated[id] = b.tick
	}
	return b
}

func (b *byUpdated) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rec := func(id int) map[string]any { return map[string]any{"id": id, "updated_at": b.updated[id]} }
	if r.Method == "PATCH" {
		id, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/items/"))
		b.tick++
		b.updated[id] = b.tick
		writeJSON(w, 200, rec(id))
		return
	}
	var ids []int
	for id := range b.updated {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(x, y int) int {
		if c := b.updated[x] - b.updated[y]; c != 0 {
			return c
		}
		return x - y
	})
	from, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	if p, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil {
		from = (p - 1) * 3
	}
	out := []any{}
	for i := from; i < len(ids) && i < from+3; i++ {
		out = append(out, rec(ids[i]))
	}
	if b.pages++; b.pages == 1 && b.editAfterFirst {
		b.tick++
		b.updated[1] = b.tick
	}
	writeJSON(w, 200, out)
}

// TestPagesSortedByUpdatedAreReadWhole: a list paged by page number or offset and sorted by
// updated, whose records the run updates as it reads them (each update moves the record to
// the end), is read whole: every record is read once, none skipped. validate warns at the
// paging key that other apps' edits can still skip records.
func TestPagesSortedByUpdatedAreReadWhole(t *testing.T) {
	for _, style := range []string{"page", "offset"} {
		t.Run(style, func(t *testing.T) {
			b := newByUpdated(9)
			srv := httptest.NewServer(b)
			t.Cleanup(srv.Close)
			entity := fmt.Sprintf("    list: {path: /items, query: {sort: '\"updated_at\"'}, page: {%s: %s, size: 3}}\n    update: {path: \"/items/{id}\", result: \"\"}\n", style, style)
			src := strings.Replace(system(srv.URL, "", entity), "updated: modifiedOn", "updated: updated_at", 1)
			c, _ := openConn(t, src, nil)
			seen := map[string]int{}
			err := c.Scan(ctx, "Item", "", func(recs []connector.Record) error {
				for _, r := range recs {
					seen[r.ID]++
				}
				_, err := c.Update(ctx, "Item", recs) // the run's writes, between its pages
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			for id := 1; id <= 9; id++ {
				if n := seen[strconv.Itoa(id)]; n != 1 {
					t.Errorf("record %d read %d times, want once", id, n)
				}
			}

			sys := loadSystem(t, src, map[string]string{"TOKEN": testToken})
			ds := Driver{}.CheckEntity(sys.Entities[0], nil)
			want := fmt.Sprintf("fake.yaml:13:64: list.page: %s paging of a list sorted by updated_at can skip records", style)
			if len(ds) != 1 || ds[0].Severity != diag.Warning || !strings.HasPrefix(ds[0].Error(), want) {
				for _, d := range ds {
					t.Errorf("diagnostic %s", d.Error())
				}
				t.Errorf("want only %s", want)
			}
		})
	}
	// Another app's edit during the read moves record 1 to the last page: it is given once, in
	// its last version (and record 4, shifted back onto page 1, is the skip the warning is about).
	b := newByUpdated(9)
	b.editAfterFirst = true
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	src := strings.Replace(system(srv.URL, "", "    list: {path: /items, page: {page: page, size: 3}}\n"), "updated: modifiedOn", "updated: updated_at", 1)
	c, _ := openConn(t, src, nil)
	pages, err := scanAll(t, c, "")
	if err != nil || ids(pages) != "2,3 | 5,6,7 | 8,9,1" || pages[2][2].Data["updated_at"] != int64(10) {
		t.Errorf("pages %s, %v", ids(pages), err)
	}

	// Sorted by something else, or by cursor: no warning.
	for _, list := range []string{
		"    list: {path: /items, query: {sort: '\"id\"'}, page: {page: page, size: 3}}\n",
		"    list: {path: /items, query: {sort: '\"modifiedOn\"'}, records: items, page: {cursor: next, param: cursor}}\n",
	} {
		sys := loadSystem(t, system("http://127.0.0.1:1", "", list), map[string]string{"TOKEN": testToken})
		if ds := (Driver{}).CheckEntity(sys.Entities[0], nil); len(ds) != 0 {
			t.Errorf("%s: diagnostics %v", list, ds)
		}
	}
}
