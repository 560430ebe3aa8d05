package httpconn

// The connector.Conn over the fake API: paging styles, incremental lists, get, and writes with
// their per-record and per-batch failures, idempotency keys and lost responses.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

var ctx = context.Background()

// TestPagingStyles: every paging style reads 7 records as pages of 3 (one batch per page), and
// sends the parameters the style says.
func TestPagingStyles(t *testing.T) {
	for _, tc := range []struct {
		style, list string
		check       func(t *testing.T, hits []hit)
	}{
		{"cursor", `{path: /items, records: items, page: {cursor: pagination.nextPageCursor, param: cursor}}`, func(t *testing.T, hits []hit) {
			if got := hits[1].query["cursor"]; len(got) != 1 || got[0] != "3:" {
				t.Errorf("second request's cursor %v", got)
			}
		}},
		{"page", `{path: /items, page: {page: _page, size: 3, size_param: _limit}}`, func(t *testing.T, hits []hit) {
			for i, h := range hits {
				if h.query["_page"][0] != fmt.Sprint(i+1) || h.query["_limit"][0] != "3" {
					t.Errorf("request %d: %v", i, h.query)
				}
			}
		}},
		{"offset", `{path: /items, records: data, page: {offset: offset, size: 3, size_param: limit}}`, func(t *testing.T, hits []hit) {
			for i, h := range hits {
				if h.query["offset"][0] != fmt.Sprint(3*i) {
					t.Errorf("request %d: %v", i, h.query)
				}
			}
		}},
		{"link", `{path: /items, page: {link: true}}`, func(t *testing.T, hits []hit) {
			if got := hits[2].query["p"]; len(got) != 1 || got[0] != "3" {
				t.Errorf("third request: %v", hits[2].query)
			}
		}},
	} {
		t.Run(tc.style, func(t *testing.T) {
			a := newAPI(t, 7)
			a.style = tc.style
			c, _ := openConn(t, system(a.srv.URL, "", "    list: "+tc.list+"\n"), nil)
			pages, err := scanAll(t, c, "")
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(pages); got != "1,2,3 | 4,5,6 | 7" {
				t.Errorf("pages %s", got)
			}
			hits := a.requests("GET /items")
			if len(hits) != 3 {
				t.Fatalf("%d requests, want 3", len(hits))
			}
			tc.check(t, hits)
		})
	}
}

// TestPagingStopsOnAFullLastPage: page and offset paging stop at an empty page when the last
// page is full; a server that ignores the page parameter is an error, not an endless loop.
func TestPagingStopsOnAFullLastPage(t *testing.T) {
	a := newAPI(t, 6)
	a.style = "page"
	c, _ := openConn(t, system(a.srv.URL, "", "    list: {path: /items, page: {page: _page, size: 3, size_param: _limit}}\n"), nil)
	pages, err := scanAll(t, c, "")
	if err != nil || ids(pages) != "1,2,3 | 4,5,6" || len(a.requests("GET /items")) != 3 {
		t.Fatalf("pages %s, %d requests, %v", ids(pages), len(a.requests("GET /items")), err)
	}
	c, _ = openConn(t, system(a.srv.URL, "", "    list: {path: /items, page: {page: page, size: 3, size_param: _limit}}\n"), nil)
	_, err = scanAll(t, c, "")
	if err == nil || !strings.Contains(err.Error(), `page 2 repeats page 1; does the server read the "page" parameter?`) {
		t.Errorf("error %v", err)
	}
}

// TestCursorAlone: with cursor_alone the requests after the first carry only the cursor, for a
// server that refuses a cursor with filters; the incremental filter goes in the first.
func TestCursorAlone(t *testing.T) {
	a := newAPI(t, 7)
	a.strictCursor = true
	list := `    list:
      path: /items
      query: {modifiedAfter: 'since == "" ? nil : since'}
      records: items
      page: {cursor: pagination.nextPageCursor, param: cursor, cursor_alone: %s}
`
	c, _ := openConn(t, system(a.srv.URL, "", fmt.Sprintf(list, "true")), nil)
	pages, err := scanAll(t, c, "2024-01-01T00:00:02Z")
	if err != nil || ids(pages) != "2,3,4 | 5,6,7" {
		t.Fatalf("pages %s, %v", ids(pages), err)
	}
	hits := a.requests("GET /items")
	if hits[0].query["modifiedAfter"][0] != "2024-01-01T00:00:02Z" || len(hits[1].query) != 1 {
		t.Errorf("queries %v, %v", hits[0].query, hits[1].query)
	}
	c, _ = openConn(t, system(a.srv.URL, "", fmt.Sprintf(list, "false")), nil)
	_, err = scanAll(t, c, "2024-01-01T00:00:02Z")
	if err == nil || !strings.Contains(err.Error(), "400 Bad Request: cursor cannot be combined with other filters") {
		t.Errorf("error %v", err)
	}
}

// TestSinceFiltersEvenWhenTheServerDoesNot: an incremental Scan leaves out records updated
// before since, whether or not the list's query passes since to the server.
func TestSinceFiltersEvenWhenTheServerDoesNot(t *testing.T) {
	a := newAPI(t, 5)
	c, _ := openConn(t, system(a.srv.URL, "", "    list: {path: /items, records: items, page: {cursor: pagination.nextPageCursor, param: cursor}}\n"), nil)
	pages, err := scanAll(t, c, "2024-01-01T00:00:04Z")
	if err != nil || ids(pages) != "4,5" {
		t.Errorf("pages %s, %v", ids(pages), err)
	}
	if q := a.requests("GET /items")[0].query; len(q) != 0 {
		t.Errorf("query %v", q)
	}
}

// TestLinkToAnotherHostRefused: a Link header whose next page is on another host (another port
// of 127.0.0.1) is refused, and that host sees no request.
func TestLinkToAnotherHostRefused(t *testing.T) {
	other := newAPI(t, 7)
	a := newAPI(t, 7)
	a.style, a.linkBase = "link", other.srv.URL
	c, _ := openConn(t, system(a.srv.URL, "", "    list: {path: /items, page: {link: true}}\n"), nil)
	pages, err := scanAll(t, c, "")
	if err == nil || !strings.Contains(err.Error(), "refused the Link header's next page on another host ("+other.srv.URL+")") {
		t.Errorf("error %v", err)
	}
	if ids(pages) != "1,2,3" || len(other.requests("*")) != 0 {
		t.Errorf("pages %s, other host got %d requests", ids(pages), len(other.requests("*")))
	}
}

// TestGet: one by one (404 is missing), in batches, and by reading the list when there is no get.
func TestGet(t *testing.T) {
	a := newAPI(t, 5)
	for _, tc := range []struct{ name, get string }{
		{"one by one", `    get: {path: "/items/{id}"}`},
		{"batched", `    get: {path: '/batch/{join(ids, ",")}', batch: 2, records: items}`},
		{"by the list", ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := openConn(t, system(a.srv.URL, "", "    list: {path: /items, records: items, page: {cursor: pagination.nextPageCursor, param: cursor}}\n"+tc.get+"\n"), nil)
			got, err := c.Get(ctx, "Item", []string{"2", "5", "99", "4"})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 || got["2"].Data["sku"] != "SKU-2" || got["5"].ID != "5" || got["4"].Data["id"] != int64(4) {
				t.Errorf("got %v", got)
			}
		})
	}
	a.inject("GET /items/2", status(500, "", "boom"), status(500, "", "boom"), status(500, "", "boom"))
	c, _ := openConn(t, system(a.srv.URL, "", itemEntity), nil)
	if _, err := c.Get(ctx, "Item", []string{"2"}); err == nil || !strings.Contains(err.Error(), "500 Internal Server Error after 3 attempts") {
		t.Errorf("error %v", err)
	}
}

// TestBatchedGet404: a server that answers 404 for a batch when any one of its ids is missing
// says nothing of the others: the connector asks for each id of that batch alone, and only the
// ids that then get 404 are missing. A batch of one id that gets 404 is missing at once.
func TestBatchedGet404(t *testing.T) {
	a := newAPI(t, 5)
	c, _ := openConn(t, system(a.srv.URL, "", "    list: {path: /items, records: items}\n    get: {path: '/strict/{join(ids, \",\")}', batch: 3, records: items}\n"), nil)
	got, err := c.Get(ctx, "Item", []string{"1", "2", "3", "4", "99", "5", "98"})
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for id, r := range got {
		if r.ID != id || r.Data["sku"] != "SKU-"+id {
			t.Errorf("record %s: %+v", id, r)
		}
		found = append(found, id)
	}
	slices.Sort(found)
	if strings.Join(found, ",") != "1,2,3,4,5" {
		t.Errorf("found %v, want 1 to 5", found)
	}
	var paths []string
	for _, h := range a.requests("*") {
		paths = append(paths, h.path)
	}
	slices.Sort(paths)
	// 1,2,3 answers; 4,99,5 is 404 and asked again one by one; 98 alone is 404.
	if want := "/strict/1,2,3 /strict/4 /strict/4,99,5 /strict/5 /strict/98 /strict/99"; strings.Join(paths, " ") != want {
		t.Errorf("requests %s, want %s", strings.Join(paths, " "), want)
	}
}

// TestCreateUpdateDelete: writes return the records as stored, in order; update and delete
// reach the record by id; a deleted record that is already gone counts as deleted.
func TestCreateUpdateDelete(t *testing.T) {
	a := newAPI(t, 2)
	c, _ := openConn(t, system(a.srv.URL, "", itemEntity), nil)
	if caps := c.Capabilities(); !caps.Delete || !caps.ReturnsStored {
		t.Errorf("capabilities %+v", caps)
	}
	res, err := c.Create(ctx, "Item", []map[string]any{{"sku": "N1", "name": "New 1"}, {"sku": "N2", "price": 2.5}})
	if err != nil {
		t.Fatal(err)
	}
	// The two creates run in parallel: either may get id 3.
	n1, n2 := res[0].Record, res[1].Record
	if n1.Data["sku"] != "N1" || n2.Data["price"] != 2.5 || n1.Data["modifiedOn"] == nil || n1.ID+n2.ID != "34" && n1.ID+n2.ID != "43" {
		t.Errorf("created %+v", res)
	}
	res, err = c.Update(ctx, "Item", []connector.Record{{ID: n1.ID, Data: map[string]any{"name": "Renamed"}}, {ID: "1", Data: map[string]any{"price": 1}}})
	if err != nil || res[0].Err != nil || res[0].Record.Data["name"] != "Renamed" || res[0].Record.Data["sku"] != "N1" || res[1].Record.ID != "1" {
		t.Errorf("updated %+v, %v", res, err)
	}
	if h := a.requests("PATCH /items/" + n1.ID); len(h) != 1 || h[0].body != `{"name":"Renamed"}` {
		t.Errorf("patch requests %+v", h)
	}
	errs, err := c.Delete(ctx, "Item", []string{"3", "42"})
	if err != nil || errs[0] != nil || errs[1] != nil || a.count() != 3 {
		t.Errorf("delete: %v, %v, %d items", errs, err, a.count())
	}
}

// TestPermanent4xxIsPerRecord: a record the server refuses fails alone, with the server's
// message; the others of the batch are written, and the results keep their order.
func TestPermanent4xxIsPerRecord(t *testing.T) {
	a := newAPI(t, 2)
	c, _ := openConn(t, system(a.srv.URL, "", itemEntity), nil)
	res, err := c.Create(ctx, "Item", []map[string]any{{"sku": "A"}, {"name": "no sku"}, {"sku": "C"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "fake Item: POST " + a.srv.URL + "/items: 422 Unprocessable Entity: sku is required"
	if res[0].Err != nil || res[2].Err != nil || res[1].Err == nil || res[1].Err.Error() != want {
		t.Fatalf("results %+v, want the second to fail with %q", res, want)
	}
	if res[0].Record.Data["sku"] != "A" || res[2].Record.Data["sku"] != "C" || a.count() != 4 {
		t.Errorf("results %+v, %d items", res, a.count())
	}
	if n := len(a.requests("POST /items")); n != 3 {
		t.Errorf("%d POSTs: a 422 is not retried", n)
	}
	res, err = c.Update(ctx, "Item", []connector.Record{{ID: "1", Data: map[string]any{"sku": ""}}, {ID: "2", Data: map[string]any{"name": "ok"}}, {ID: "77", Data: map[string]any{"name": "gone"}}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err == nil || !strings.HasSuffix(res[0].Err.Error(), "422 Unprocessable Entity: sku cannot be empty") || res[1].Err != nil ||
		res[2].Err == nil || !strings.HasSuffix(res[2].Err.Error(), "404 Not Found: no item 77") {
		t.Errorf("update results %+v", res)
	}
}

// TestLostCreateResponseWithKey: the server commits a create and loses the response; sent again
// with the same idempotency key it returns the record it made, so there is one record.
func TestLostCreateResponseWithKey(t *testing.T) {
	a := newAPI(t, 0)
	c, _ := openConn(t, system(a.srv.URL, "", itemEntity), nil)
	if !c.Idempotent("Item") {
		t.Fatal("Item is not idempotent")
	}
	a.inject("POST /items", commitThenHangUp)
	res, err := c.CreateKeyed(ctx, "Item", []map[string]any{{"sku": "ONCE"}}, []string{"intent-1"})
	if err != nil || res[0].Err != nil || res[0].Record.ID != "1" {
		t.Fatalf("create: %+v, %v", res, err)
	}
	if a.count() != 1 {
		t.Errorf("%d records, want 1", a.count())
	}
	posts := a.requests("POST /items")
	if len(posts) < 2 || posts[0].header.Get("Idempotency-Key") != "intent-1" || posts[len(posts)-1].header.Get("Idempotency-Key") != "intent-1" {
		t.Errorf("posts %+v", posts)
	}
}

// TestLostCreateResponseWithoutKey: without an idempotency key a create whose response is lost
// is not sent again (it could be a duplicate): the batch fails, so that the engine's intent
// finds the record on the next run. A 503, which the server did not act on, is sent again.
func TestLostCreateResponseWithoutKey(t *testing.T) {
	a := newAPI(t, 0)
	c, _ := openConn(t, system(a.srv.URL, "", itemEntity), nil)
	a.inject("POST /items", commitThenHangUp)
	_, err := c.Create(ctx, "Item", []map[string]any{{"sku": "ONCE"}})
	if err == nil || !strings.Contains(err.Error(), "not sent again") {
		t.Fatalf("error %v", err)
	}
	if a.count() != 1 || len(a.requests("POST /items")) != 1 {
		t.Errorf("%d records, %d posts", a.count(), len(a.requests("POST /items")))
	}
	a.inject("POST /items", status(503, "0", "busy"))
	res, err := c.Create(ctx, "Item", []map[string]any{{"sku": "TWO"}})
	if err != nil || res[0].Err != nil || a.count() != 2 {
		t.Errorf("after a 503: %+v, %v, %d records", res, err, a.count())
	}
	a.inject("POST /items", status(500, "", "oops"))
	_, err = c.Create(ctx, "Item", []map[string]any{{"sku": "THREE"}})
	if err == nil || !strings.Contains(err.Error(), "500 Internal Server Error (not sent again") {
		t.Errorf("after a 500: %v", err)
	}
}

// TestReadBackWithoutResult: a create without result reads the record back with get by the id
// in the response, or in the Location header.
func TestReadBackWithoutResult(t *testing.T) {
	a := newAPI(t, 0)
	entity := strings.Replace(itemEntity, `create: {path: /items, result: "", idempotency_header: Idempotency-Key}`, `create: {path: /items}`, 1)
	c, _ := openConn(t, system(a.srv.URL, "", entity), nil)
	res, err := c.Create(ctx, "Item", []map[string]any{{"sku": "RB"}})
	if err != nil || res[0].Record.ID != "1" || res[0].Record.Data["sku"] != "RB" || len(a.requests("GET /items/1")) != 1 {
		t.Fatalf("%+v, %v", res, err)
	}
	a.inject("POST /items", func(a *api, w http.ResponseWriter, r *http.Request) {
		a.serve(noBody{w}, r)
		w.Header().Set("Location", "/items/2")
		w.WriteHeader(201)
	})
	res, err = c.Create(ctx, "Item", []map[string]any{{"sku": "LOC"}})
	if err != nil || res[0].Record.ID != "2" || res[0].Record.Data["sku"] != "LOC" {
		t.Errorf("by Location: %+v, %v", res, err)
	}
}

// noBody is a ResponseWriter that drops what is written.
type noBody struct{ http.ResponseWriter }

func (noBody) Header() http.Header         { return http.Header{} }
func (noBody) Write(b []byte) (int, error) { return len(b), nil }
func (noBody) WriteHeader(int)             {}

// TestUpdateRequests: a list of update requests runs in order, each when its `when` holds;
// current is fetched only when an expression mentions it, and the record is read back when
// the last request has no result.
func TestUpdateRequests(t *testing.T) {
	a := newAPI(t, 3)
	entity := `    list: {path: /items, records: items, page: {cursor: pagination.nextPageCursor, param: cursor}}
    get: {path: "/items/{id}"}
    update:
      - {path: "/items/{id}", body: '{"name": record.name}', when: 'record.name != nil'}
      - {method: PUT, path: "/items/{id}", body: 'merge(current, {"price": record.price})', when: 'record.price != nil'}
`
	c, _ := openConn(t, system(a.srv.URL, "", entity), nil)
	res, err := c.Update(ctx, "Item", []connector.Record{
		{ID: "1", Data: map[string]any{"name": "N"}},
		{ID: "2", Data: map[string]any{"price": 3}},
		{ID: "3", Data: map[string]any{"other": true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Record.Data["name"] != "N" || res[1].Record.Data["price"] != int64(3) || res[1].Record.Data["sku"] != "SKU-2" || res[2].Record.ID != "3" {
		t.Errorf("results %+v", res)
	}
	if len(a.requests("PATCH /items/1")) != 1 || len(a.requests("PUT /items/2")) != 1 || len(a.requests("PATCH /items/3")) != 0 || len(a.requests("PUT /items/3")) != 0 {
		t.Errorf("requests %+v", a.requests("*"))
	}
	var put map[string]any
	json.Unmarshal([]byte(a.requests("PUT /items/2")[0].body), &put)
	if put["sku"] != "SKU-2" || put["price"] != 3.0 {
		t.Errorf("PUT body %v", put)
	}
	// current (3) + read back after the requests without result (3).
	if n := len(a.requests("GET /items/1")) + len(a.requests("GET /items/2")) + len(a.requests("GET /items/3")); n != 5 {
		t.Errorf("%d GETs, want 5 (current for 3 records, read back of the 2 written)", n)
	}

	entity = strings.Replace(entity, `, body: 'merge(current, {"price": record.price})'`, ``, 1)
	c, _ = openConn(t, system(a.srv.URL, "", entity), nil)
	before := len(a.requests("*"))
	if _, err := c.Update(ctx, "Item", []connector.Record{{ID: "1", Data: map[string]any{"name": "M"}}}); err != nil {
		t.Fatal(err)
	}
	if n := len(a.requests("*")) - before; n != 2 {
		t.Errorf("%d requests, want 2 (PATCH and read back): current is not fetched when no expression needs it", n)
	}
}

// TestConcurrencyBounded: the records of a batch are written in parallel, never more than
// `concurrency` requests at once, and the results keep the records' order.
func TestConcurrencyBounded(t *testing.T) {
	a := newAPI(t, 0)
	a.delay = 30 * time.Millisecond
	c, _ := openConn(t, system(a.srv.URL, "concurrency: 3\n", itemEntity), nil)
	var data []map[string]any
	for i := range 12 {
		data = append(data, map[string]any{"sku": fmt.Sprintf("P%02d", i)})
	}
	res, err := c.Create(ctx, "Item", data)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.Record.Data["sku"] != fmt.Sprintf("P%02d", i) {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	if m := a.maxInflight.Load(); m > 3 || m < 2 {
		t.Errorf("at most %d requests in flight, want 3 (2 on a busy machine), never more", m)
	}
}

// TestPathValuesAreEscaped: ids that hold slashes, question marks or dots stay one segment;
// commas are kept; values after a literal ? are query-escaped.
func TestPathValuesAreEscaped(t *testing.T) {
	a := newAPI(t, 0)
	entity := `    list: {path: "/items"}
    get: {path: '/lookup/{id}?tag={id}&all={join(ids, ",")}'}
    delete: {path: "/items/{id}"}
`
	c, _ := openConn(t, system(a.srv.URL, "", entity), nil)
	var mu sync.Mutex
	var raw []string
	a.inject("*", record(&mu, &raw), record(&mu, &raw), record(&mu, &raw), record(&mu, &raw))
	c.Get(ctx, "Item", []string{"a/b?c&d=e"})
	c.Delete(ctx, "Item", []string{"..", "x,y"})
	want := []string{"/items/%2E%2E", "/items/x,y", "/lookup/a%2Fb%3Fc&d=e?tag=a%2Fb%3Fc%26d%3De&all=a%2Fb%3Fc%26d%3De"}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(raw) // the deletes run in parallel
	if strings.Join(raw, " ") != strings.Join(want, " ") {
		t.Errorf("requests\n%s\nwant\n%s", strings.Join(raw, "\n"), strings.Join(want, "\n"))
	}
}

func record(mu *sync.Mutex, raw *[]string) fault {
	return func(a *api, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		*raw = append(*raw, r.URL.RequestURI())
		mu.Unlock()
		w.WriteHeader(404)
	}
}

// TestReadOnlyDoesNotWrite: a dry run's connection reads and refuses every write.
func TestReadOnlyDoesNotWrite(t *testing.T) {
	a := newAPI(t, 1)
	cn, err := Driver{}.Open(ctx, loadSystem(t, system(a.srv.URL, "", itemEntity), map[string]string{"TOKEN": "x"}), nil, connector.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cn.Close()
	if _, err := cn.Get(ctx, "Item", []string{"1"}); err != nil {
		t.Error(err)
	}
	_, err = cn.Create(ctx, "Item", []map[string]any{{"sku": "X"}})
	if err == nil || !strings.Contains(err.Error(), "read-only") || len(a.requests("POST /items")) != 0 {
		t.Errorf("create on a read-only connection: %v", err)
	}
}

// TestNoDeleteCapabilityWithoutDelete: without delete on any entity the connection says it
// cannot delete, so that delete: propagate is refused before a run.
func TestNoDeleteCapabilityWithoutDelete(t *testing.T) {
	a := newAPI(t, 0)
	c, _ := openConn(t, system(a.srv.URL, "", "    list: {path: /items}\n"), nil)
	if c.Capabilities().Delete {
		t.Error("Delete capability without delete")
	}
	if _, err := c.Delete(ctx, "Item", []string{"1"}); err == nil || !strings.Contains(err.Error(), "has no delete") {
		t.Errorf("error %v", err)
	}
}
