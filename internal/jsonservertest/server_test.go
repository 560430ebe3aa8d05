package jsonservertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// The tests of this file check the Custom CRM REST contract (README.md) against the running
// json-server, through the harness a test of another package uses.

const seed = `{
  "products": [
    {"id": 1, "sku": "NR-ESP-250", "name": "Espresso 250 g", "description": null, "unit_price": 8.9,
     "units_in_stock": 120, "unlimited_stock": false, "discontinued": false, "visible": true,
     "weight_kg": 0.25, "category": "Coffee", "webshop_variant_id": null, "webshop_availability": null,
     "updated_at": "2024-08-14T09:12:00Z"}
  ],
  "customers": [
    {"id": 4, "first_name": "Ingrid", "last_name": "Solberg", "email": "ingrid@example.com", "phone": null,
     "company": null, "address1": "Thorvald Meyers gate 12", "address2": null, "city": "Oslo", "state": null,
     "postal_code": "0555", "country_code": "NO", "accepts_marketing": true,
     "created_at": "2023-11-02T10:21:00Z", "updated_at": "2024-10-08T09:30:00+02:00"}
  ],
  "orders": []
}`

var stampRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)

func num(s string) json.Number { return json.Number(s) }

// wantError checks a response against the contract's error shape, exactly.
func wantError(t *testing.T, r *Response, status int, code, message string) {
	t.Helper()
	if r.Status != status || r.ErrorCode() != code || r.ErrorMessage() != message {
		t.Errorf("got %d %s, want %d {\"error\": {\"code\": %q, \"message\": %q}}", r.Status, r.Body, status, code, message)
	}
	if m, ok := r.JSON.(map[string]any); !ok || len(m) != 1 {
		t.Errorf("the error body has more than the error: %s", r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want JSON", ct)
	}
}

func TestSeedIsServedWithCanonicalStamps(t *testing.T) {
	t.Parallel()
	s := Start(t, seed)
	if !regexp.MustCompile(`^http://127\.0\.0\.1:\d+$`).MatchString(s.URL) {
		t.Errorf("URL %q", s.URL)
	}
	p := s.Get("products", 1)
	if p["updated_at"] != "2024-08-14T09:12:00.000Z" || p["unit_price"] != num("8.9") || p["name"] != "Espresso 250 g" {
		t.Errorf("product 1 = %v", p)
	}
	c := s.Get("customers", 4)
	if c["updated_at"] != "2024-10-08T07:30:00.000Z" || c["created_at"] != "2023-11-02T10:21:00Z" {
		t.Errorf("customer 4: updated_at %v, created_at %v", c["updated_at"], c["created_at"])
	}
}

func TestCreateReadPatchDelete(t *testing.T) {
	t.Parallel()
	s := Start(t, seed)
	r := s.Do(http.MethodPost, "/products", Record{
		"sku": "NR-TEA-EGR", "name": "Earl Grey 100 g", "unit_price": 6.75,
		"id": 77, "updated_at": "2000-01-01T00:00:00Z", // server-owned: ignored
	}, nil)
	created := s.expect(r, http.StatusCreated, "POST /products")
	want := Record{
		"id": num("2"), "sku": "NR-TEA-EGR", "name": "Earl Grey 100 g", "description": nil, "unit_price": num("6.75"),
		"units_in_stock": num("0"), "unlimited_stock": false, "discontinued": false, "visible": true,
		"weight_kg": nil, "category": nil, "webshop_variant_id": nil, "webshop_availability": nil,
		"updated_at": created["updated_at"],
	}
	if !reflect.DeepEqual(created, want) {
		t.Errorf("created %v\nwant    %v", created, want)
	}
	if !stampRE.MatchString(fmt.Sprint(created["updated_at"])) || created["updated_at"] == "2000-01-01T00:00:00Z" {
		t.Errorf("updated_at %v is not a server stamp", created["updated_at"])
	}
	if got := r.Header.Get("Location"); got != s.URL+"/products/2" {
		t.Errorf("Location %q", got)
	}
	if got := s.Get("products", 2); !reflect.DeepEqual(got, created) {
		t.Errorf("GET /products/2 = %v, want %v", got, created)
	}

	patched := s.Patch("products", 2, Record{"name": "Earl Grey Loose Leaf 100 g", "updated_at": "2000-01-01T00:00:00Z"})
	if patched["name"] != "Earl Grey Loose Leaf 100 g" || patched["sku"] != "NR-TEA-EGR" || patched["unit_price"] != num("6.75") {
		t.Errorf("patched %v", patched)
	}
	if u := fmt.Sprint(patched["updated_at"]); !stampRE.MatchString(u) || u < fmt.Sprint(created["updated_at"]) {
		t.Errorf("updated_at after the patch %s, before %s", u, created["updated_at"])
	}

	// PUT replaces: what it leaves out takes its default; created_at stays.
	put := s.expect(s.Do(http.MethodPut, "/customers/4", Record{
		"first_name": "Ingrid", "last_name": "Solberg-Berg", "email": "ingrid@example.com",
		"address1": "Markveien 3", "city": "Oslo", "country_code": "NO",
	}, nil), http.StatusOK, "PUT /customers/4")
	if put["last_name"] != "Solberg-Berg" || put["postal_code"] != nil || put["accepts_marketing"] != false || put["created_at"] != "2023-11-02T10:21:00Z" || put["id"] != num("4") {
		t.Errorf("after PUT: %v", put)
	}

	s.Delete("products", 2)
	wantError(t, s.Do(http.MethodGet, "/products/2", nil, nil), 404, "not_found", "product 2 not found")
	wantError(t, s.Do(http.MethodDelete, "/products/2", nil, nil), 404, "not_found", "product 2 not found")
	wantError(t, s.Do(http.MethodPatch, "/products/2", Record{"name": "x"}, nil), 404, "not_found", "product 2 not found")
	// Ids are not reused.
	if got := s.Post("products", Record{"sku": "NR-X", "name": "X", "unit_price": 1})["id"]; got != num("3") {
		t.Errorf("the next product got id %v, want 3", got)
	}
}

func TestInvalidInputIs400WithTheReason(t *testing.T) {
	t.Parallel()
	s := Start(t, seed)
	line := func(product any, qty any) Record {
		return Record{"product_id": product, "quantity": qty, "unit_price": 8.9}
	}
	order := func(change Record) Record {
		o := Record{"order_number": 1001, "customer_id": 4, "order_date": "2024-09-02T08:14:00Z",
			"subtotal": 17.8, "grand_total": 17.8, "lines": []any{line(1, 2)}}
		for k, v := range change {
			o[k] = v
		}
		return o
	}
	for _, c := range []struct {
		path string
		body any
		msg  string
	}{
		{"/products", Record{"sku": "NR-1", "name": "   ", "unit_price": 1}, "name must not be blank"},
		{"/products", Record{"sku": "NR-1", "unit_price": 1}, "name is required"},
		{"/products", Record{"sku": "NR-1", "name": nil, "unit_price": 1}, "name is required"},
		{"/products", Record{"sku": "NR-ESP-250", "name": "Espresso", "unit_price": 1}, `sku "NR-ESP-250" is already used by product 1`},
		{"/products", Record{"sku": "NR-1", "name": "Tea", "unit_price": "1.50"}, `unit_price must be number, got "1.50"`},
		{"/products", Record{"sku": "NR-1", "name": "Tea", "unit_price": -1}, "unit_price must not be negative, got -1"},
		{"/products", Record{"sku": "NR-1", "name": "Tea", "unit_price": 1, "units_in_stock": 1.5}, "units_in_stock must be integer, got 1.5"},
		{"/products", Record{"sku": "NR-1", "name": "Tea", "unit_price": 1, "colour": "red"}, "colour: unknown property"},
		{"/products", []any{1}, "the body must be a JSON object, got [1]"},
		{"/customers", Record{"first_name": "A", "last_name": "B", "email": "INGRID@example.com", "address1": "x", "city": "y", "country_code": "NO"}, `email "INGRID@example.com" is already used by customer 4`},
		{"/customers", Record{"first_name": "A", "last_name": "B", "email": "a.example.com", "address1": "x", "city": "y", "country_code": "NO"}, `email must be an e-mail address, got "a.example.com"`},
		{"/customers", Record{"first_name": "A", "last_name": "B", "email": "a@example.com", "address1": "x", "city": "y", "country_code": "Norway"}, `country_code must be an ISO 3166-1 alpha-2 code such as "NO", got "Norway"`},
		{"/orders", order(Record{"customer_id": 5}), "customer_id 5: no customer has that id"},
		{"/orders", order(Record{"status": "shipped"}), `status must be one of "pending", "fulfilled", "canceled", got "shipped"`},
		{"/orders", order(Record{"order_date": "2024-09-02 08:14"}), `order_date must be an RFC 3339 date-time such as "2024-09-02T08:14:00Z", got "2024-09-02 08:14"`},
		{"/orders", order(Record{"lines": []any{line(1, 2), line(9, 1)}}), "lines[1].product_id 9: no product has that id"},
		{"/orders", order(Record{"lines": []any{line(1, 0)}}), "lines[0].quantity must be at least 1, got 0"},
		{"/orders", order(Record{"lines": []any{Record{"product_id": 1, "quantity": 1}}}), "lines[0].unit_price is required"},
		{"/orders", order(Record{"lines": []any{Record{"product_id": 1, "quantity": 1, "unit_price": 1, "discount": 0.1}}}), "lines[0].discount: unknown property"},
	} {
		wantError(t, s.Do(http.MethodPost, c.path, c.body, nil), 400, "validation_failed", c.msg)
	}
	if n := s.Count("products") + s.Count("customers") + s.Count("orders"); n != 2 {
		t.Errorf("%d records after refused creates, want the seed's 2", n)
	}
	// A patch is checked against the record it makes.
	wantError(t, s.Do(http.MethodPatch, "/products/1", Record{"name": ""}, nil), 400, "validation_failed", "name must not be blank")
	if got := s.Get("products", 1)["name"]; got != "Espresso 250 g" {
		t.Errorf("a refused patch changed the name to %v", got)
	}

	// Not JSON, wrong media type, unknown endpoints and methods.
	r := s.Do(http.MethodPost, "/products", []byte(`{"sku":`), nil)
	if r.Status != 400 || r.ErrorCode() != "invalid_json" {
		t.Errorf("a truncated body: %d %s", r.Status, r.Body)
	}
	wantError(t, s.Do(http.MethodGet, "/db", nil, nil), 404, "not_found", "no such endpoint: GET /db; the resources are /products, /customers and /orders")
	wantError(t, s.Do(http.MethodPost, "/products/1", Record{}, nil), 405, "method_not_allowed", "POST is not allowed on /products/1; use GET, PUT, PATCH, DELETE")
	wantError(t, s.Do(http.MethodGet, "/products/abc", nil, nil), 404, "not_found", `product "abc" not found`)
}

func TestOrderLinesGetIdsAndKeepThem(t *testing.T) {
	t.Parallel()
	s := Start(t, seed)
	s.Post("products", Record{"sku": "NR-TEA", "name": "Tea", "unit_price": 5})
	o := s.Post("orders", Record{"order_number": 1001, "customer_id": 4, "order_date": "2024-09-02T08:14:00Z",
		"subtotal": 22.8, "grand_total": 22.8,
		"lines": []any{Record{"product_id": 1, "quantity": 2, "unit_price": 8.9}, Record{"product_id": 2, "quantity": 1, "unit_price": 5}}})
	lines := func(o Record) string {
		var b []string
		for _, m := range Records(t, o["lines"]) {
			b = append(b, fmt.Sprintf("%v/%v:%v×%v", m["id"], m["order_id"], m["product_id"], m["quantity"]))
		}
		return strings.Join(b, " ")
	}
	if got := lines(o); got != "1/1:1×2 2/1:2×1" {
		t.Errorf("lines %s", got)
	}
	if o["status"] != "pending" || o["currency"] != "EUR" || o["shipping_total"] != num("0") {
		t.Errorf("defaults: status %v, currency %v, shipping_total %v", o["status"], o["currency"], o["shipping_total"])
	}
	// The list is replaced: a known line id is kept, a new line gets a new id, an id of
	// another order's line is not taken over.
	p := s.Patch("orders", 1, Record{"lines": []any{
		Record{"id": 2, "product_id": 2, "quantity": 3, "unit_price": 5},
		Record{"id": 99, "product_id": 1, "quantity": 1, "unit_price": 8.9},
	}})
	if got := lines(p); got != "2/1:2×3 3/1:1×1" {
		t.Errorf("lines after the patch %s", got)
	}
}

func TestListSinceAndCursor(t *testing.T) {
	t.Parallel()
	var recs []string
	for i := 1; i <= 25; i++ {
		// Pairs of records share an updated_at, so that the order needs the id too.
		recs = append(recs, fmt.Sprintf(`{"id": %d, "sku": "P-%02d", "name": "Product %d", "unit_price": 1, "updated_at": "2024-01-01T00:00:%02dZ"}`, i, i, i, 59-(i+1)/2))
	}
	s := Start(t, `{"products": [`+strings.Join(recs, ",")+`]}`)
	order := func(rs []Record) string {
		var ids []string
		for _, r := range rs {
			ids = append(ids, fmt.Sprint(r["id"]))
		}
		return strings.Join(ids, ",")
	}
	all := "25,23,24,21,22,19,20,17,18,15,16,13,14,11,12,9,10,7,8,5,6,3,4,1,2"
	if got := order(s.List("products", "", 7)); got != all {
		t.Errorf("pages of 7: %s\nwant         %s", got, all)
	}
	if got := order(s.List("products", "", 0)); got != all {
		t.Errorf("one page: %s\nwant      %s", got, all)
	}
	// since is inclusive; any RFC 3339 form of the same instant works.
	if got := order(s.List("products", "2024-01-01T01:00:56+01:00", 2)); got != "5,6,3,4,1,2" {
		t.Errorf("since 00:00:56Z: %s", got)
	}
	first := s.expect(s.Do(http.MethodGet, "/products?limit=2", nil, nil), 200, "first page")
	if c, ok := first["next_cursor"].(string); !ok || c == "" {
		t.Fatalf("no cursor after a full page: %v", first)
	}
	last := s.expect(s.Do(http.MethodGet, "/products?since=2024-01-01T00:00:58Z&limit=2", nil, nil), 200, "last page")
	if last["next_cursor"] != nil || order(Records(t, last["data"])) != "1,2" {
		t.Errorf("the last page: %v", last)
	}

	// A record changed while a client pages moves to the end: it is read once, with its change.
	q := "/products?limit=10"
	page := s.expect(s.Do(http.MethodGet, q, nil, nil), 200, "page 1")
	s.Patch("products", 1, Record{"name": "Product 1, renamed"}) // not read yet
	var seen []string
	for {
		for _, d := range Records(t, page["data"]) {
			seen = append(seen, fmt.Sprint(d["id"], ":", d["name"]))
		}
		c, _ := page["next_cursor"].(string)
		if c == "" {
			break
		}
		page = s.expect(s.Do(http.MethodGet, q+"&cursor="+c, nil, nil), 200, "next page")
	}
	if n := len(seen); n != 25 || seen[24] != "1:Product 1, renamed" {
		t.Errorf("read %d records, the last %q", n, seen[len(seen)-1])
	}

	got := s.expect(s.Do(http.MethodGet, "/products?ids=3,1,404", nil, nil), 200, "ids")
	if ids := order(Records(t, got["data"])); ids != "3,1" {
		t.Errorf("ids=3,1,404: %s", ids)
	}

	for _, c := range []struct{ query, msg string }{
		{"since=yesterday", `since must be an RFC 3339 date-time such as "2024-09-02T08:14:00.000Z", got "yesterday"`},
		{"limit=0", `limit must be an integer from 1 to 1000, got "0"`},
		{"limit=1001", `limit must be an integer from 1 to 1000, got "1001"`},
		{"cursor=abc", "cursor: not a cursor this server gave out"},
		{"_sort=name", `unknown query parameter "_sort"; the list takes since, cursor, limit and ids`},
		{"since=2024-01-01T00:00:00Z&since=2024-01-02T00:00:00Z", "since: give it once, as text"},
	} {
		wantError(t, s.Do(http.MethodGet, "/products?"+c.query, nil, nil), 400, "invalid_parameter", c.msg)
	}
}

func TestIdempotencyKeyReplaysTheFirstCreate(t *testing.T) {
	t.Parallel()
	s := Start(t, seed)
	key := http.Header{"Idempotency-Key": {"intent-42"}}
	first := s.Do(http.MethodPost, "/products", Record{"sku": "NR-A", "name": "A", "unit_price": 1}, key)
	again := s.Do(http.MethodPost, "/products", Record{"sku": "NR-B", "name": "B", "unit_price": 2}, key)
	if first.Status != 201 || again.Status != 201 || string(first.Body) != string(again.Body) {
		t.Errorf("first %d %s\nagain %d %s", first.Status, first.Body, again.Status, again.Body)
	}
	if first.Header.Get("Idempotent-Replayed") != "" || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("Idempotent-Replayed: first %q, again %q", first.Header.Get("Idempotent-Replayed"), again.Header.Get("Idempotent-Replayed"))
	}
	// Keys are per resource; a refused create does not use its key up.
	bad := http.Header{"Idempotency-Key": {"intent-43"}}
	wantError(t, s.Do(http.MethodPost, "/products", Record{"sku": "NR-C", "name": "", "unit_price": 1}, bad), 400, "validation_failed", "name must not be blank")
	fixed := s.expect(s.Do(http.MethodPost, "/products", Record{"sku": "NR-C", "name": "C", "unit_price": 1}, bad), 201, "the fixed create")
	other := s.Do(http.MethodPost, "/customers", Record{"first_name": "A", "last_name": "B", "email": "a@b.example", "address1": "x", "city": "y", "country_code": "NO"}, key)
	if m, _ := other.JSON.(map[string]any); other.Status != 201 || m["id"] != num("5") {
		t.Errorf("the same key on customers: %d %s", other.Status, other.Body)
	}
	if n := s.Count("products"); n != 3 || fixed["sku"] != "NR-C" {
		t.Errorf("%d products (want the seed's, A and C), fixed %v", n, fixed)
	}
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	s := StartWith(t, seed, Options{Token: "s3cret"})
	if got := s.Get("products", 1)["sku"]; got != "NR-ESP-250" {
		t.Errorf("with the token: sku %v", got)
	}
	s.Token = ""
	wantError(t, s.Do(http.MethodGet, "/products/1", nil, nil), 401, "unauthorized", "missing or wrong bearer token (Authorization: Bearer <token>)")
	r := s.Do(http.MethodGet, "/products", nil, http.Header{"Authorization": {"Bearer s3cre"}})
	wantError(t, r, 401, "unauthorized", "missing or wrong bearer token (Authorization: Bearer <token>)")
	if r.Header.Get("WWW-Authenticate") == "" {
		t.Error("no WWW-Authenticate on a 401")
	}
}
