package squarespacetest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/internal/squarespacetest"
)

const key = "test-key-0123"

// clock is a settable clock for the server.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newServer(t *testing.T, opts squarespacetest.Options) (*squarespacetest.Server, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2024, 10, 1, 12, 0, 0, 0, time.UTC)}
	opts.APIKey = key
	if opts.Now == nil {
		opts.Now = c.Now
	}
	s := squarespacetest.New(opts)
	t.Cleanup(s.Close)
	return s, c
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// call sends a request with the key and a User-Agent unless headers override them ("" removes).
func call(t *testing.T, s *squarespacetest.Server, method, path, body string, headers ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("User-Agent", "squarespacetest/1.0")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			if headers[i] == "User-Agent" {
				req.Header["User-Agent"] = []string{""}
			}
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	res, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := response{status: res.StatusCode, header: res.Header, raw: string(b)}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &r.body); err != nil {
			t.Fatalf("%s %s: body is not a JSON object: %s", method, path, b)
		}
	}
	return r
}

func wantStatus(t *testing.T, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.raw)
	}
}

// wantError checks an error response's status, type, subtype and message.
func wantError(t *testing.T, r response, status int, typ, subtype, message string) {
	t.Helper()
	wantStatus(t, r, status)
	if r.body["type"] != typ {
		t.Errorf("type %v, want %s", r.body["type"], typ)
	}
	var sub any
	if subtype != "" {
		sub = subtype
	}
	if r.body["subtype"] != sub {
		t.Errorf("subtype %v, want %v", r.body["subtype"], sub)
	}
	if r.body["message"] != message {
		t.Errorf("message %q, want %q", r.body["message"], message)
	}
	if id, _ := r.body["contextId"].(string); !regexp.MustCompile(`^[A-Z0-9]{20}$`).MatchString(id) {
		t.Errorf("contextId %q", id)
	}
	if _, ok := r.body["details"]; !ok {
		t.Errorf("no details key in %s", r.raw)
	}
}

func product(name, sku, price string) string {
	return fmt.Sprintf(`{"type": "PHYSICAL", "storePageId": "5f1a2b3c4d5e6f7a8b9c0d1e", "name": %q, "isVisible": true,
		"variants": [{"sku": %q, "pricing": {"basePrice": {"currency": "EUR", "value": %q}},
		"shippingMeasurements": {"weight": {"unit": "KILOGRAM", "value": 0.25}}}]}`, name, sku, price)
}

func createProduct(t *testing.T, s *squarespacetest.Server, name, sku, price string) (id, variantID string) {
	t.Helper()
	r := call(t, s, "POST", "/v2/commerce/products", product(name, sku, price))
	wantStatus(t, r, 201)
	v := r.body["variants"].([]any)[0].(map[string]any)
	return r.body["id"].(string), v["id"].(string)
}

func TestAuthorizationAndUserAgent(t *testing.T) {
	s, _ := newServer(t, squarespacetest.Options{})
	wantError(t, call(t, s, "GET", "/v2/commerce/products", "", "Authorization", ""), 401, "AUTHORIZATION_ERROR", "",
		"The API key or OAuth token is missing, invalid or expired.")
	wantError(t, call(t, s, "GET", "/v2/commerce/products", "", "Authorization", "Bearer wrong"), 401, "AUTHORIZATION_ERROR", "",
		"The API key or OAuth token is missing, invalid or expired.")
	wantError(t, call(t, s, "GET", "/v2/commerce/products", "", "User-Agent", ""), 400, "INVALID_REQUEST_ERROR", "MISSING_ARGUMENT",
		"The User-Agent header is required.")
	wantStatus(t, call(t, s, "GET", "/v2/commerce/products", ""), 200)
	wantError(t, call(t, s, "PUT", "/v2/commerce/products", "{}"), 405, "METHOD_NOT_ALLOWED", "", "PUT is not allowed on /v2/commerce/products")
	wantError(t, call(t, s, "GET", "/v2/commerce/nothing", ""), 404, "INVALID_REQUEST_ERROR", "", "Not Found: /v2/commerce/nothing")
	if got := s.Count("GET /v2/commerce/products"); got != 4 {
		t.Errorf("count %d, want 4", got)
	}
	if got := s.UserAgents(); len(got) != 1 || got[0] != "squarespacetest/1.0" {
		t.Errorf("user agents %v", got)
	}
}

func TestProductCreateMakesInventory(t *testing.T) {
	s, _ := newServer(t, squarespacetest.Options{})
	r := call(t, s, "POST", "/v2/commerce/products", product("Espresso Blend 250 g", "NR-ESP-250", "8.9"))
	wantStatus(t, r, 201)
	id := r.body["id"].(string)
	if !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(id) {
		t.Errorf("id %q", id)
	}
	if r.body["createdOn"] != "2024-10-01T12:00:00.000Z" || r.body["modifiedOn"] != "2024-10-01T12:00:00.000Z" {
		t.Errorf("stamps %v %v", r.body["createdOn"], r.body["modifiedOn"])
	}
	if r.body["urlSlug"] != "espresso-blend-250-g" || r.body["url"] != "https://example-shop.squarespace.com/shop/p/espresso-blend-250-g" {
		t.Errorf("slug %v url %v", r.body["urlSlug"], r.body["url"])
	}
	v := r.body["variants"].([]any)[0].(map[string]any)
	vid := v["id"].(string)
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(vid) {
		t.Errorf("variant id %q", vid)
	}
	b, _ := json.Marshal(v["pricing"])
	if string(b) != `{"basePrice":{"currency":"EUR","value":"8.90"},"onSale":false,"salePrice":{"currency":"EUR","value":"0.00"}}` {
		t.Errorf("pricing %s", b)
	}
	b, _ = json.Marshal(v["stock"])
	if string(b) != `{"quantity":0,"unlimited":false}` {
		t.Errorf("stock %s", b)
	}
	inv := call(t, s, "GET", "/1.0/commerce/inventory", "")
	wantStatus(t, inv, 200)
	b, _ = json.Marshal(inv.body)
	want := fmt.Sprintf(`{"inventory":[{"descriptor":"Espresso Blend 250 g","isUnlimited":false,"quantity":0,"sku":"NR-ESP-250","variantId":"%s"}],"pagination":{"hasNextPage":false,"nextPageCursor":null,"nextPageUrl":null}}`, vid)
	if string(b) != want {
		t.Errorf("inventory\n got %s\nwant %s", b, want)
	}
	// The same SKU again is refused; so are missing fields.
	wantError(t, call(t, s, "POST", "/v2/commerce/products", product("Other", "NR-ESP-250", "1")), 400, "INVALID_REQUEST_ERROR", "SKU_UNAVAILABLE",
		"variants[0].sku NR-ESP-250 is already in use.")
	wantError(t, call(t, s, "POST", "/v2/commerce/products", `{"type": "PHYSICAL", "name": "X", "variants": []}`), 400, "INVALID_REQUEST_ERROR", "MISSING_ARGUMENT",
		"storePageId is required.")
	wantError(t, call(t, s, "POST", "/v2/commerce/products", `{"type": "PHYSICAL", "storePageId": "5f1a2b3c4d5e6f7a8b9c0d1e", "name": "X", "variants": []}`),
		400, "INVALID_REQUEST_ERROR", "INSUFFICIENT_PRODUCT_VARIANTS", "A PHYSICAL product needs at least one variant.")
	wantError(t, call(t, s, "POST", "/v2/commerce/products", strings.Replace(product("Y", "Y-1", "1"), `"EUR"`, `"USD"`, 1)),
		400, "INVALID_REQUEST_ERROR", "CURRENCY_MISMATCH", "variants[0].pricing.basePrice.currency USD does not match the site currency EUR")
	wantError(t, call(t, s, "POST", "/v2/commerce/products", strings.Replace(product("Y", "Y-1", "1"), `"KILOGRAM"`, `"POUND"`, 1)),
		400, "INVALID_REQUEST_ERROR", "MEASUREMENT_STANDARD_MISMATCH", "variants[0].shippingMeasurements.weight.unit POUND does not match the site's KILOGRAM.")
	wantError(t, call(t, s, "POST", "/v2/commerce/products", product("Y", "Y-1", "1.001")),
		400, "INVALID_REQUEST_ERROR", "INVALID_ARGUMENT", "variants[0].pricing.basePrice.value has more than 2 decimal places for EUR.")
	wantError(t, call(t, s, "POST", "/v2/commerce/products", `{"type": "PHYSICAL", "id": "x"}`),
		400, "INVALID_REQUEST_ERROR", "INVALID_ARGUMENT", `The request body is not valid: json: unknown field "id"`)
	wantError(t, call(t, s, "POST", "/v2/commerce/products", product("Y", "Y-1", "1"), "Content-Type", "text/plain"),
		400, "INVALID_REQUEST_ERROR", "INVALID_CONTENT_TYPE", "Content-Type must be application/json.")
	if n := len(s.Products()); n != 1 {
		t.Errorf("%d products after refused creates, want 1", n)
	}
}

func TestProductListPaginationAndFilters(t *testing.T) {
	s, c := newServer(t, squarespacetest.Options{PageSize: 2})
	var ids []string
	for i := range 5 {
		id, _ := createProduct(t, s, fmt.Sprintf("P%d", i), fmt.Sprintf("SKU-%d", i), "1")
		ids = append(ids, id)
		c.Add(time.Second)
	}
	var got []string
	path := "/v2/commerce/products"
	pages := 0
	for {
		r := call(t, s, "GET", path, "")
		wantStatus(t, r, 200)
		pages++
		for _, p := range r.body["products"].([]any) {
			got = append(got, p.(map[string]any)["id"].(string))
		}
		pg := r.body["pagination"].(map[string]any)
		if pg["hasNextPage"] != true {
			if pg["nextPageCursor"] != nil || pg["nextPageUrl"] != nil {
				t.Errorf("last page pagination %v", pg)
			}
			break
		}
		cur := pg["nextPageCursor"].(string)
		if pg["nextPageUrl"] != s.URL+"/v2/commerce/products?cursor="+cur {
			t.Errorf("nextPageUrl %v", pg["nextPageUrl"])
		}
		path = "/v2/commerce/products?cursor=" + cur
	}
	if pages != 3 || strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Errorf("%d pages of %v, want 3 of %v", pages, got, ids)
	}
	// Modified between the second and the fourth product's stamps, exclusive.
	r := call(t, s, "GET", "/v2/commerce/products?modifiedAfter=2024-10-01T12:00:01.000Z&modifiedBefore=2024-10-01T12:00:03.000Z", "")
	wantStatus(t, r, 200)
	if ps := r.body["products"].([]any); len(ps) != 1 || ps[0].(map[string]any)["id"] != ids[2] {
		t.Errorf("range gave %v", ps)
	}
	wantError(t, call(t, s, "GET", "/v2/commerce/products?modifiedAfter=2024-10-01T12:00:01Z", ""), 400, "INVALID_REQUEST_ERROR", "INVALID_ARGUMENT",
		"modifiedBefore is required when modifiedAfter is passed.")
	wantError(t, call(t, s, "GET", "/v2/commerce/products?modifiedAfter=2024-10-01T12:00:01Z&modifiedBefore=2024-10-01T12:00:01Z", ""), 400, "INVALID_REQUEST_ERROR", "INVALID_ARGUMENT",
		"modifiedBefore must be after modifiedAfter.")
	wantError(t, call(t, s, "GET", "/v2/commerce/products?modifiedAfter=yesterday&modifiedBefore=2024-10-01T12:00:01Z", ""), 400, "INVALID_REQUEST_ERROR", "INVALID_ARGUMENT",
		"modifiedAfter is not a valid ISO 8601 UTC date and time.")
	wantError(t, call(t, s, "GET", "/v2/commerce/products?cursor=abc&modifiedAfter=2024-10-01T12:00:01Z&modifiedBefore=2024-10-01T12:00:03Z", ""), 400, "INVALID_REQUEST_ERROR", "INVALID_ARGUMENT",
		"cursor cannot be combined with other parameters (modifiedAfter).")
	wantError(t, call(t, s, "GET", "/v2/commerce/products?cursor=abc", ""), 400, "INVALID_REQUEST_ERROR", "INVALID_ARGUMENT", "cursor is not a valid cursor.")

	// By ids: existing ones only, 404 when none exists, at most 50.
	r = call(t, s, "GET", "/v2/commerce/products/"+ids[3]+",000000000000000000000000,"+ids[1], "")
	wantStatus(t, r, 200)
	if ps := r.body["products"].([]any); len(ps) != 2 || ps[0].(map[string]any)["id"] != ids[3] || ps[1].(map[string]any)["id"] != ids[1] {
		t.Errorf("by ids gave %v", ps)
	}
	wantError(t, call(t, s, "GET", "/v2/commerce/products/000000000000000000000000", ""), 404, "INVALID_REQUEST_ERROR", "", "Product not found.")
	wantError(t, call(t, s, "GET", "/v2/commerce/products/"+strings.Repeat("a,", 51), ""), 400, "INVALID_REQUEST_ERROR", "INVALID_ARGUMENT", "ids must name at most 50 ids.")
}

func TestProductAndVariantUpdates(t *testing.T) {
	s, c := newServer(t, squarespacetest.Options{})
	id, vid := createProduct(t, s, "Espresso", "NR-ESP-250", "8.90")
	c.Add(time.Minute)
	r := call(t, s, "POST", "/v2/commerce/products/"+id, `{"name": "Espresso 250 g", "description": "<p>Dark.</p>", "isVisible": false}`)
	wantStatus(t, r, 200)
	if r.body["name"] != "Espresso 250 g" || r.body["description"] != "<p>Dark.</p>" || r.body["isVisible"] != false || r.body["modifiedOn"] != "2024-10-01T12:01:00.000Z" {
		t.Errorf("updated product %s", r.raw)
	}
	if inv, _ := s.InventoryItem(vid); inv.Descriptor != "Espresso 250 g" {
		t.Errorf("descriptor %q after rename", inv.Descriptor)
	}
	wantError(t, call(t, s, "POST", "/v2/commerce/products/"+id, `{"name": "X", "variants": []}`), 400, "INVALID_REQUEST_ERROR", "INVALID_ARGUMENT",
		"variants cannot be changed with this endpoint; use POST /v2/commerce/products/{productId}/variants/{variantId}.")
	wantError(t, call(t, s, "POST", "/v2/commerce/products/"+id+"/variants/"+vid, `{"stock": {"quantity": 5}}`), 400, "INVALID_REQUEST_ERROR", "INVALID_ARGUMENT",
		"stock cannot be changed with this endpoint; stock changes only through POST /1.0/commerce/inventory/adjustments.")
	c.Add(time.Minute)
	r = call(t, s, "POST", "/v2/commerce/products/"+id+"/variants/"+vid, `{"sku": "NR-ESP-251", "pricing": {"basePrice": {"currency": "EUR", "value": "9.5"}}, "shippingMeasurements": {"weight": {"value": 0.3}}}`)
	wantStatus(t, r, 200)
	b, _ := json.Marshal(r.body)
	want := fmt.Sprintf(`{"attributes":{},"id":"%s","image":null,"pricing":{"basePrice":{"currency":"EUR","value":"9.50"},"onSale":false,"salePrice":{"currency":"EUR","value":"0.00"}},"shippingMeasurements":{"dimensions":{"height":0,"length":0,"unit":"CENTIMETER","width":0},"weight":{"unit":"KILOGRAM","value":0.3}},"sku":"NR-ESP-251","stock":{"quantity":0,"unlimited":false}}`, vid)
	if string(b) != want {
		t.Errorf("variant\n got %s\nwant %s", b, want)
	}
	p, _ := s.Product(id)
	if p.ModifiedOn != "2024-10-01T12:02:00.000Z" {
		t.Errorf("modifiedOn %s after a variant update", p.ModifiedOn)
	}
	wantError(t, call(t, s, "POST", "/v2/commerce/products/"+id+"/variants/nope", `{"sku": "A"}`), 404, "INVALID_REQUEST_ERROR", "PRODUCT_VARIANT_NOT_FOUND", "Product variant not found.")
	wantStatus(t, call(t, s, "DELETE", "/v2/commerce/products/"+id, ""), 204)
	if len(s.Inventory()) != 0 {
		t.Errorf("inventory left after the delete: %v", s.Inventory())
	}
	wantError(t, call(t, s, "DELETE", "/v2/commerce/products/"+id, ""), 404, "INVALID_REQUEST_ERROR", "", "Product not found.")
}

func TestInventoryAdjustments(t *testing.T) {
	s, _ := newServer(t, squarespacetest.Options{})
	_, a := createProduct(t, s, "A", "A-1", "1")
	_, b := createProduct(t, s, "B", "B-1", "1")
	adjust := func(k, body string) response {
		return call(t, s, "POST", "/1.0/commerce/inventory/adjustments", body, "Idempotency-Key", k)
	}
	wantError(t, call(t, s, "POST", "/1.0/commerce/inventory/adjustments", `{"setFiniteOperations": []}`), 400, "INVALID_REQUEST_ERROR", "MISSING_ARGUMENT",
		"Idempotency-Key header is required.")
	wantStatus(t, adjust("k1", fmt.Sprintf(`{"setFiniteOperations": [{"variantId": %q, "quantity": 10}], "setUnlimitedOperations": [%q]}`, a, b)), 204)
	inc := fmt.Sprintf(`{"incrementOperations": [{"variantId": %q, "quantity": 3}]}`, a)
	wantStatus(t, adjust("k2", inc), 204)
	wantStatus(t, adjust("k2", inc), 204) // repeated: applied once
	if it, _ := s.InventoryItem(a); it.Quantity != 13 || it.IsUnlimited {
		t.Errorf("a: %+v, want 13 finite", it)
	}
	if it, _ := s.InventoryItem(b); it.Quantity != 0 || !it.IsUnlimited {
		t.Errorf("b: %+v, want unlimited", it)
	}
	wantError(t, adjust("k2", fmt.Sprintf(`{"incrementOperations": [{"variantId": %q, "quantity": 4}]}`, a)), 400, "INVALID_REQUEST_ERROR", "INVALID_ARGUMENT",
		"Idempotency-Key has already been used by another request bearing a different body.")
	wantError(t, adjust("k3", fmt.Sprintf(`{"decrementOperations": [{"variantId": %q, "quantity": 14}]}`, a)), 409, "CONFLICT", "INSUFFICIENT_STOCK",
		fmt.Sprintf("decrementOperations[0]: variant %s has 13 in stock, fewer than 14.", a))
	wantError(t, adjust("k4", fmt.Sprintf(`{"incrementOperations": [{"variantId": %q, "quantity": 1}]}`, b)), 400, "INVALID_REQUEST_ERROR", "STOCK_NOT_TRACKED",
		fmt.Sprintf("incrementOperations[0]: the stock of variant %s is unlimited.", b))
	wantError(t, adjust("k5", fmt.Sprintf(`{"setFiniteOperations": [{"variantId": %q, "quantity": 1}, {"variantId": %q, "quantity": 2}]}`, a, a)), 400, "INVALID_REQUEST_ERROR", "INVALID_ARGUMENT",
		"setFiniteOperations[1].variantId appears in more than one operation.")
	// All or nothing: the second operation fails, the first is not applied.
	wantError(t, adjust("k6", fmt.Sprintf(`{"setFiniteOperations": [{"variantId": %q, "quantity": 1}, {"variantId": "nope", "quantity": 2}]}`, a)), 400, "INVALID_REQUEST_ERROR", "INVENTORY_ITEM_NOT_FOUND",
		"setFiniteOperations[1].variantId nope is not an inventory item.")
	if it, _ := s.InventoryItem(a); it.Quantity != 13 {
		t.Errorf("a: %d after a refused batch, want 13", it.Quantity)
	}
	// The product shows the stock the Inventory API set.
	wantStatus(t, adjust("k7", fmt.Sprintf(`{"setFiniteOperations": [{"variantId": %q, "quantity": 7}]}`, b)), 204)
	r := call(t, s, "GET", "/1.0/commerce/inventory/"+b+","+a, "")
	wantStatus(t, r, 200)
	bs, _ := json.Marshal(r.body["inventory"])
	want := fmt.Sprintf(`[{"descriptor":"B","isUnlimited":false,"quantity":7,"sku":"B-1","variantId":"%s"},{"descriptor":"A","isUnlimited":false,"quantity":13,"sku":"A-1","variantId":"%s"}]`, b, a)
	if string(bs) != want {
		t.Errorf("inventory\n got %s\nwant %s", bs, want)
	}
	if got := s.Count("POST /1.0/commerce/inventory/adjustments"); got != 10 {
		t.Errorf("adjustment requests %d, want 10", got)
	}
	// Applied: k1, k2 once, and k7.
	applied, _ := json.Marshal(s.Adjustments())
	wantApplied := fmt.Sprintf(`[{"Key":"k1","IncrementOperations":null,"DecrementOperations":null,"SetFiniteOperations":[{"VariantID":%q,"Quantity":10}],"SetUnlimitedOperations":[%q]},`+
		`{"Key":"k2","IncrementOperations":[{"VariantID":%q,"Quantity":3}],"DecrementOperations":null,"SetFiniteOperations":null,"SetUnlimitedOperations":null},`+
		`{"Key":"k7","IncrementOperations":null,"DecrementOperations":null,"SetFiniteOperations":[{"VariantID":%q,"Quantity":7}],"SetUnlimitedOperations":null}]`, a, b, a, b)
	if string(applied) != wantApplied {
		t.Errorf("applied adjustments\n got %s\nwant %s", applied, wantApplied)
	}
}

// TestFailAfter: requests ThrottleEndpoint throttles are not carried out; a request FailAfter
// loses is carried out and answered with 500, and repeated with its Idempotency-Key it is not
// applied again.
func TestFailAfter(t *testing.T) {
	s, _ := newServer(t, squarespacetest.Options{})
	_, a := createProduct(t, s, "A", "A-1", "1")
	const endpoint = "POST /1.0/commerce/inventory/adjustments"
	inc := fmt.Sprintf(`{"incrementOperations": [{"variantId": %q, "quantity": 3}]}`, a)
	s.ThrottleEndpoint(endpoint, 2)
	s.FailAfter(endpoint, 2)
	wantStatus(t, call(t, s, "GET", "/1.0/commerce/inventory", ""), 200) // another endpoint
	for range 2 {
		wantError(t, call(t, s, "POST", "/1.0/commerce/inventory/adjustments", inc, "Idempotency-Key", "k1"), 429, "TOO_MANY_REQUESTS", "", "Too many requests; retry later.")
	}
	for range 2 {
		wantError(t, call(t, s, "POST", "/1.0/commerce/inventory/adjustments", inc, "Idempotency-Key", "k1"), 500, "INTERNAL_ERROR", "", "An internal error occurred; retry later.")
	}
	wantStatus(t, call(t, s, "POST", "/1.0/commerce/inventory/adjustments", inc, "Idempotency-Key", "k1"), 204)
	if it, _ := s.InventoryItem(a); it.Quantity != 3 {
		t.Errorf("stock %d after one increment by 3 sent four times", it.Quantity)
	}
	if n := len(s.Adjustments()); n != 1 || s.Count(endpoint) != 5 || s.Throttled() != 2 {
		t.Errorf("%d adjustments applied of %d requests (%d throttled), want 1 of 5 (2)", n, s.Count(endpoint), s.Throttled())
	}
	// A client that sends it again with another key has it applied twice.
	s.FailAfter(endpoint, 1)
	wantStatus(t, call(t, s, "POST", "/1.0/commerce/inventory/adjustments", inc, "Idempotency-Key", "k2"), 500)
	wantStatus(t, call(t, s, "POST", "/1.0/commerce/inventory/adjustments", inc, "Idempotency-Key", "k3"), 204)
	if it, _ := s.InventoryItem(a); it.Quantity != 9 {
		t.Errorf("stock %d, want 9", it.Quantity)
	}
	// Other endpoints are not affected.
	wantStatus(t, call(t, s, "GET", "/1.0/commerce/inventory", ""), 200)
}

func order(ref, variantID string) string {
	return fmt.Sprintf(`{"channelName": "Custom CRM", "externalOrderReference": %q, "createdOn": "2024-09-02T08:14:00Z",
		"customerEmail": "ingrid@example.com", "billingAddress": {"firstName": "Ingrid", "lastName": "Solberg", "city": "Oslo", "countryCode": "NO"},
		"inventoryBehavior": "DEDUCT", "priceTaxInterpretation": "EXCLUSIVE", "fulfillments": [],
		"lineItems": [{"lineItemType": "PHYSICAL_PRODUCT", "variantId": %q, "quantity": 2, "unitPricePaid": {"currency": "EUR", "value": "8.9"}}],
		"subtotal": {"currency": "EUR", "value": "17.80"}, "grandTotal": {"currency": "EUR", "value": "17.80"}, "fulfillmentStatus": "PENDING"}`, ref, variantID)
}

func TestOrderImportAndFulfillment(t *testing.T) {
	s, c := newServer(t, squarespacetest.Options{})
	pid, vid := createProduct(t, s, "Espresso", "NR-ESP-250", "8.90")
	if err := s.SetStock(vid, 5); err != nil {
		t.Fatal(err)
	}
	imp := func(k, body string) response {
		return call(t, s, "POST", "/1.0/commerce/orders", body, "Idempotency-Key", k)
	}
	wantError(t, call(t, s, "POST", "/1.0/commerce/orders", order("1001", vid)), 400, "INVALID_REQUEST_ERROR", "MISSING_ARGUMENT", "Idempotency-Key header is required.")
	wantError(t, imp("o0", strings.Replace(order("1001", vid), `"channelName": "Custom CRM", `, "", 1)), 400, "INVALID_REQUEST_ERROR", "MISSING_ARGUMENT", "channelName is required.")
	wantError(t, imp("o0", strings.Replace(order("1001", vid), `"variantId"`, `"productId"`, 1)), 400, "INVALID_REQUEST_ERROR", "INVALID_ARGUMENT",
		`The request body is not valid: json: unknown field "productId"`)
	wantError(t, imp("o0", strings.Replace(order("1001", vid), `"variantId": "`+vid+`", `, "", 1)), 400, "INVALID_REQUEST_ERROR", "INVALID_ARGUMENT",
		"lineItems[0].variantId is required when lineItemType is PHYSICAL_PRODUCT.")
	wantError(t, imp("o0", strings.Replace(order("1001", vid), `"PENDING"`, `"CANCELED"`, 1)), 400, "INVALID_REQUEST_ERROR", "INVALID_ARGUMENT",
		"fulfillmentStatus must be PENDING or FULFILLED for an imported order.")
	c.Add(time.Hour)
	r := imp("o1", order("1001", vid))
	wantStatus(t, r, 201)
	id := r.body["id"].(string)
	if r.body["orderNumber"] != "1" || r.body["createdOn"] != "2024-09-02T08:14:00.000Z" || r.body["modifiedOn"] != "2024-10-01T13:00:00.001Z" ||
		r.body["channelName"] != "Custom CRM" || r.body["externalOrderReference"] != "1001" || r.body["fulfillmentStatus"] != "PENDING" {
		t.Errorf("imported order %s", r.raw)
	}
	li := r.body["lineItems"].([]any)[0].(map[string]any)
	if li["variantId"] != vid || li["productId"] != pid || li["sku"] != "NR-ESP-250" || li["productName"] != "Espresso" ||
		li["quantity"] != 2.0 || li["weight"] != 0.25 || li["lineItemType"] != "PHYSICAL_PRODUCT" {
		t.Errorf("line item %v", li)
	}
	if b, _ := json.Marshal(li["unitPricePaid"]); string(b) != `{"currency":"EUR","value":"8.90"}` {
		t.Errorf("unitPricePaid %s", b)
	}
	if b, _ := json.Marshal(r.body["billingAddress"]); string(b) != `{"address1":null,"address2":null,"city":"Oslo","countryCode":"NO","firstName":"Ingrid","lastName":"Solberg","phone":null,"postalCode":null,"state":null}` {
		t.Errorf("billingAddress %s", b)
	}
	if b, _ := json.Marshal(r.body["shippingTotal"]); string(b) != `{"currency":"EUR","value":"0.00"}` {
		t.Errorf("shippingTotal %s", b)
	}
	if it, _ := s.InventoryItem(vid); it.Quantity != 3 {
		t.Errorf("stock %d after DEDUCT of 2 from 5", it.Quantity)
	}
	// The same key: the first order, nothing deducted again.
	r2 := imp("o1", order("1001", vid))
	wantStatus(t, r2, 201)
	if r2.body["id"] != id || len(s.Orders()) != 1 {
		t.Errorf("repeated import made order %v; %d orders", r2.body["id"], len(s.Orders()))
	}
	if it, _ := s.InventoryItem(vid); it.Quantity != 3 {
		t.Errorf("stock %d after a repeated import", it.Quantity)
	}
	wantStatus(t, imp("o2", order("1002", vid)), 201)
	wantError(t, imp("o3", order("1003", vid)), 409, "CONFLICT", "INSUFFICIENT_STOCK",
		fmt.Sprintf("Variant %s has 1 in stock, fewer than the 2 ordered.", vid))

	// Listing: "result", filters, and a cursor alone.
	r = call(t, s, "GET", "/1.0/commerce/orders?fulfillmentStatus=PENDING", "")
	wantStatus(t, r, 200)
	if got := len(r.body["result"].([]any)); got != 2 {
		t.Errorf("%d pending orders, want 2", got)
	}
	wantError(t, call(t, s, "GET", "/1.0/commerce/orders?fulfillmentStatus=SHIPPED", ""), 400, "INVALID_REQUEST_ERROR", "INVALID_ARGUMENT",
		"fulfillmentStatus must be PENDING, FULFILLED or CANCELED.")

	// Fulfilment through the API, then by the shop owner.
	c.Add(time.Hour)
	wantError(t, call(t, s, "POST", "/1.0/commerce/orders/"+id+"/fulfillments", `{"shipments": []}`), 400, "INVALID_REQUEST_ERROR", "MISSING_ARGUMENT",
		"shouldSendNotification is required.")
	wantStatus(t, call(t, s, "POST", "/1.0/commerce/orders/"+id+"/fulfillments",
		`{"shouldSendNotification": false, "shipments": [{"shipDate": "2024-10-01T14:00:00Z", "carrierName": "Posten", "service": "Pakke", "trackingNumber": "70712345"}]}`), 204)
	o, _ := s.Order(id)
	if o.FulfillmentStatus != "FULFILLED" || o.ModifiedOn != "2024-10-01T14:00:00.000Z" || *o.FulfilledOn != "2024-10-01T14:00:00.000Z" ||
		len(o.Fulfillments) != 1 || o.Fulfillments[0].CarrierName != "Posten" {
		t.Errorf("fulfilled order %+v", o)
	}
	other, _ := s.OrderByReference("1002")
	if err := s.FulfillOrder(other.ID); err != nil {
		t.Fatal(err)
	}
	r = call(t, s, "GET", "/1.0/commerce/orders/"+other.ID, "")
	if r.body["fulfillmentStatus"] != "FULFILLED" || r.body["orderNumber"] != "2" {
		t.Errorf("order fulfilled by the owner: %s", r.raw)
	}
	r = call(t, s, "GET", "/1.0/commerce/orders?modifiedAfter=2024-10-01T13:59:59.999Z&modifiedBefore=2024-10-01T15:00:00Z", "")
	if got := len(r.body["result"].([]any)); got != 2 {
		t.Errorf("%d orders modified in the last hour, want 2", got)
	}
	wantError(t, call(t, s, "GET", "/1.0/commerce/orders/nope", ""), 404, "INVALID_REQUEST_ERROR", "", "Order not found.")
}

func TestShopOwnerEdits(t *testing.T) {
	s, c := newServer(t, squarespacetest.Options{})
	p, err := s.AddProduct("Kettle", "KTL-1", "59.9", 9)
	if err != nil {
		t.Fatal(err)
	}
	vid := p.Variants[0].ID
	if p.Variants[0].Pricing.BasePrice.Value != "59.90" || p.Variants[0].Stock.Quantity != 9 {
		t.Errorf("owner's product %+v", p.Variants[0])
	}
	c.Add(time.Second)
	if err := s.RenameProduct(p.ID, "Gooseneck Kettle"); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Second)
	if err := s.SetStock(vid, 4); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Product(p.ID)
	if got.Name != "Gooseneck Kettle" || got.Variants[0].Stock.Quantity != 4 || got.ModifiedOn != "2024-10-01T12:00:02.000Z" {
		t.Errorf("after edits: %s %d %s", got.Name, got.Variants[0].Stock.Quantity, got.ModifiedOn)
	}
	if err := s.SetUnlimited(vid); err != nil {
		t.Fatal(err)
	}
	if it, _ := s.InventoryItem(vid); it != (squarespacetest.InventoryItem{VariantID: vid, SKU: "KTL-1", Descriptor: "Gooseneck Kettle", IsUnlimited: true, Quantity: 4}) {
		t.Errorf("inventory item %+v", it)
	}
	// Stamps never repeat, even within a millisecond.
	if err := s.EditProduct(p.ID, func(p *squarespacetest.Product) { p.Variants[0].Pricing.BasePrice.Value = "55.00" }); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Product(p.ID)
	if got.ModifiedOn != "2024-10-01T12:00:02.002Z" || got.Variants[0].Pricing.BasePrice.Value != "55.00" {
		t.Errorf("after a price edit: %s %s", got.ModifiedOn, got.Variants[0].Pricing.BasePrice.Value)
	}
	if err := s.RenameProduct("nope", "x"); err == nil || err.Error() != "squarespacetest: no product nope" {
		t.Errorf("rename of a missing product: %v", err)
	}
}

func TestRateLimitAndThrottle(t *testing.T) {
	s, c := newServer(t, squarespacetest.Options{RateLimit: 3, RateWindow: 10 * time.Second, RetryAfter: 2 * time.Second})
	for range 3 {
		wantStatus(t, call(t, s, "GET", "/1.0/commerce/inventory", ""), 200)
	}
	c.Add(2500 * time.Millisecond)
	r := call(t, s, "GET", "/1.0/commerce/inventory", "")
	wantError(t, r, 429, "TOO_MANY_REQUESTS", "", "Rate limit exceeded; retry later.")
	if r.header.Get("Retry-After") != "8" {
		t.Errorf("Retry-After %q, want 8 (seconds left in the window)", r.header.Get("Retry-After"))
	}
	c.Add(7500 * time.Millisecond)
	wantStatus(t, call(t, s, "GET", "/1.0/commerce/inventory", ""), 200)
	s.Throttle(2)
	for range 2 {
		r := call(t, s, "GET", "/1.0/commerce/inventory", "")
		wantError(t, r, 429, "TOO_MANY_REQUESTS", "", "Too many requests; retry later.")
		if r.header.Get("Retry-After") != "2" {
			t.Errorf("Retry-After %q, want 2", r.header.Get("Retry-After"))
		}
	}
	wantStatus(t, call(t, s, "GET", "/1.0/commerce/inventory", ""), 200)
	if s.Throttled() != 3 || s.Count("GET /1.0/commerce/inventory") != 8 || s.Total() != 8 {
		t.Errorf("throttled %d, counted %d of %d", s.Throttled(), s.Count("GET /1.0/commerce/inventory"), s.Total())
	}
	// Unauthorized requests are refused before the limit counts them.
	wantStatus(t, call(t, s, "GET", "/1.0/commerce/inventory", "", "Authorization", "Bearer x"), 401)
	s.ResetCounts()
	if s.Total() != 0 || s.Throttled() != 0 {
		t.Errorf("after reset: %d, %d", s.Total(), s.Throttled())
	}
}
