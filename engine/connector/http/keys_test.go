package httpconn

// Idempotency keys of update and delete requests: one per record and request, made once and
// sent again with each retry of that request, so that a server that honours keys applies a
// request once whatever the faults.

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

// uuidV4 is the form of the keys the connector makes.
var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

const keyedUpdates = `    list: {path: /items, records: items, page: {cursor: pagination.nextPageCursor, param: cursor}}
    get: {path: "/items/{id}"}
    update:
      - method: POST
        path: /items/{id}/stock
        when: '"add" in record'
        body: '{"add": record.add}'
        idempotency_header: Idempotency-Key
      - path: /items/{id}
        when: '"name" in record'
        body: '{"name": record.name}'
        idempotency_header: Idempotency-Key
        result: ""
    delete: {path: "/items/{id}", idempotency_header: X-Request-Key}
`

// TestUpdateIdempotencyKeys: a stock adjustment (not idempotent by itself) whose first try is
// applied and answered with a 500, and whose second try is applied and its response lost, is
// applied once: the three tries carry the same key. Each record and each request has its own
// key, and the next update of the record another one, which the server applies again.
func TestUpdateIdempotencyKeys(t *testing.T) {
	a := newAPI(t, 2)
	c, _ := openConn(t, system(a.srv.URL, "", keyedUpdates), nil)
	a.inject("POST /items/1/stock", commitThen(500), commitThenHangUp)
	res, err := c.Update(ctx, "Item", []connector.Record{
		{ID: "1", Data: map[string]any{"add": 5, "name": "Five"}},
		{ID: "2", Data: map[string]any{"add": 2}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || res[1].Err != nil || res[0].Record.Data["stock"] != int64(5) || res[0].Record.Data["name"] != "Five" || res[1].Record.Data["stock"] != int64(2) {
		t.Fatalf("results %+v", res)
	}
	key := func(h hit) string { return h.header.Get("Idempotency-Key") }
	tries := a.requests("POST /items/1/stock")
	if len(tries) != 3 || !uuidV4.MatchString(key(tries[0])) || key(tries[1]) != key(tries[0]) || key(tries[2]) != key(tries[0]) {
		t.Fatalf("the adjustment of item 1 was sent %d times with keys %q", len(tries), []string{key(tries[0]), key(tries[len(tries)-1])})
	}
	other := a.requests("POST /items/2/stock")
	patch := a.requests("PATCH /items/1")
	if len(other) != 1 || len(patch) != 1 {
		t.Fatalf("%d adjustments of item 2, %d patches of item 1, want 1 and 1", len(other), len(patch))
	}
	keys := []string{key(tries[0]), key(other[0]), key(patch[0])}
	if !uuidV4.MatchString(keys[1]) || !uuidV4.MatchString(keys[2]) || len(slices.Compact(slices.Sorted(slices.Values(keys)))) != 3 {
		t.Errorf("keys %q: want three different keys, one per record and request", keys)
	}

	res, err = c.Update(ctx, "Item", []connector.Record{{ID: "1", Data: map[string]any{"add": 5}}})
	if err != nil || res[0].Err != nil || res[0].Record.Data["stock"] != int64(10) {
		t.Fatalf("the same adjustment again: %+v, %v", res, err)
	}
	if tries = a.requests("POST /items/1/stock"); len(tries) != 4 || key(tries[3]) == keys[0] || !uuidV4.MatchString(key(tries[3])) {
		t.Errorf("the second update of item 1 has the key %q, the first had %q", key(tries[3]), keys[0])
	}
}

// TestUpdateWithoutKeyAppliesTwice: without idempotency_header the same faults apply the
// adjustment once per try (what the keys prevent), and no key is sent.
func TestUpdateWithoutKeyAppliesTwice(t *testing.T) {
	a := newAPI(t, 1)
	entity := regexp.MustCompile(`\n\s+idempotency_header: Idempotency-Key`).ReplaceAllString(keyedUpdates, "")
	c, _ := openConn(t, system(a.srv.URL, "", entity), nil)
	a.inject("POST /items/1/stock", commitThen(500))
	res, err := c.Update(ctx, "Item", []connector.Record{{ID: "1", Data: map[string]any{"add": 5}}})
	if err != nil || res[0].Err != nil || res[0].Record.Data["stock"] != int64(10) {
		t.Fatalf("results %+v, %v", res, err)
	}
	for _, h := range a.requests("*") {
		if len(h.header.Values("Idempotency-Key")) != 0 {
			t.Errorf("%s %s sent an Idempotency-Key", h.method, h.path)
		}
	}
}

// TestDeleteIdempotencyKey: a delete sends a key of its own in the configured header, the same
// with each retry; a delete whose retry finds the record gone counts as done.
func TestDeleteIdempotencyKey(t *testing.T) {
	a := newAPI(t, 2)
	c, _ := openConn(t, system(a.srv.URL, "", keyedUpdates), nil)
	a.inject("DELETE /items/1", commitThen(502))
	errs, err := c.Delete(ctx, "Item", []string{"1", "2"})
	if err != nil || errs[0] != nil || errs[1] != nil || a.count() != 0 {
		t.Fatalf("delete: %v, %v, %d items left", errs, err, a.count())
	}
	first, second := a.requests("DELETE /items/1"), a.requests("DELETE /items/2")
	if len(first) != 2 || len(second) != 1 {
		t.Fatalf("%d and %d deletes, want 2 and 1", len(first), len(second))
	}
	k1, k2 := first[0].header.Get("X-Request-Key"), second[0].header.Get("X-Request-Key")
	if !uuidV4.MatchString(k1) || first[1].header.Get("X-Request-Key") != k1 || !uuidV4.MatchString(k2) || k1 == k2 {
		t.Errorf("keys %q, %q, %q", k1, first[1].header.Get("X-Request-Key"), k2)
	}
}

// TestCheckIdempotencyHeaders: the header of an update request or a delete is checked like
// create's, at its value.
func TestCheckIdempotencyHeaders(t *testing.T) {
	sys := loadSystem(t, system("https://api.example.com", "", `    list: {path: /items}
    get: {path: "/items/{id}"}
    update:
      - {path: "/items/{id}", idempotency_header: Idempotency-Key}
      - {path: "/items/{id}/stock", idempotency_header: "Idem Key"}
    delete: {path: "/items/{id}", idempotency_header: "X:Key"}
`), map[string]string{})
	var got []string
	for _, d := range (Driver{}).CheckEntity(sys.Entities[0], nil) {
		got = append(got, d.Error())
	}
	want := []string{
		`fake.yaml:17:57: update[1].idempotency_header: "Idem Key" is not a header name`,
		`fake.yaml:18:55: delete.idempotency_header: "X:Key" is not a header name`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
