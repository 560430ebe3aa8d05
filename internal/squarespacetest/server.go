// Package squarespacetest is an in-process emulator of the Squarespace Commerce API (Products
// API v2, Inventory API 1.0, Orders API 1.0) for tests: an httptest server on 127.0.0.1 that
// answers with the shapes, validations, limits and errors of the public reference
// (developers.squarespace.com/commerce-apis), and lets a test act as the shop owner (change
// stock, rename a product, fulfil an order), inspect the shop, throttle requests and count them
// per endpoint.
//
// What the real API does not let a client change, the emulator refuses too, because that
// decides what a system file can do: a variant's stock changes only through inventory
// adjustments, a product update takes only the product's own fields (variants have their own
// endpoint), an order's line items and amounts are fixed once it is imported, and the only
// change an order accepts is a fulfillment.
package squarespacetest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Options configure an emulated site. The zero value is a site in euros with metric
// measurements, one store page, pages of 50 records and no rate limit; APIKey must be set.
type Options struct {
	// APIKey is the key requests must send as "Authorization: Bearer <key>".
	APIKey string
	// Currency is the site's currency (ISO 4217); amounts in another are refused
	// (CURRENCY_MISMATCH). Default EUR.
	Currency string
	// Imperial selects the site's measurement standard POUND and INCH; the default is metric
	// (KILOGRAM and CENTIMETER). Measurements in the other standard are refused
	// (MEASUREMENT_STANDARD_MISMATCH).
	Imperial bool
	// StorePageID is the id of the site's one store page (GET /v2/commerce/store_pages).
	// Default "5f1a2b3c4d5e6f7a8b9c0d1e".
	StorePageID string
	// PageSize is the number of records per page of the list endpoints. Default 50, as the
	// real API.
	PageSize int
	// RateLimit, when positive, allows that many requests per RateWindow (default one minute,
	// as the real API's 300 per minute); beyond it requests get 429 until the window ends.
	RateLimit  int
	RateWindow time.Duration
	// RetryAfter is the Retry-After header of a 429 caused by Throttle (whole seconds;
	// default 1s). A 429 of the rate limit says the time left in its window.
	RetryAfter time.Duration
	// Now is the clock (default time.Now). modifiedOn stamps come from it, made unique and
	// increasing.
	Now func() time.Time
	// Seed seeds the ids the server makes, so that a test's ids are reproducible.
	Seed uint64
	// SiteURL is the site's public address, used in product URLs. Default
	// https://example-shop.squarespace.com.
	SiteURL string
}

// Server is a running emulated site. All methods are safe for concurrent use.
type Server struct {
	// URL is the base URL of the API, e.g. http://127.0.0.1:41234 (no trailing slash).
	URL string

	opts Options
	ts   *httptest.Server
	mux  *http.ServeMux

	mu          sync.Mutex
	rng         *rand.Rand
	lastStamp   time.Time
	products    map[string]*Product
	seq         map[string]int // product id → creation sequence, the inventory's order
	nextSeq     int
	orders      map[string]*Order
	nextOrder   int
	idempotency map[string]idempotent
	counts      map[string]int
	throttled   int
	throttle    int
	failAfter   map[string]int // endpoint pattern → requests to answer with 500 after doing them
	throttleAt  map[string]int // endpoint pattern → requests to answer with 429
	adjustments []Adjustment
	windowStart time.Time
	windowCount int
	userAgents  map[string]int
}

// idempotent is the remembered outcome of a request that carried an Idempotency-Key.
type idempotent struct {
	endpoint string
	body     string
	id       string // the record the first request created, if any
}

// New starts an emulated site on 127.0.0.1. Close it when done (t.Cleanup(s.Close)).
func New(opts Options) *Server {
	if opts.Currency == "" {
		opts.Currency = "EUR"
	}
	if opts.StorePageID == "" {
		opts.StorePageID = "5f1a2b3c4d5e6f7a8b9c0d1e"
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 50
	}
	if opts.RateWindow <= 0 {
		opts.RateWindow = time.Minute
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SiteURL == "" {
		opts.SiteURL = "https://example-shop.squarespace.com"
	}
	s := &Server{
		opts:        opts,
		rng:         rand.New(rand.NewPCG(opts.Seed, 0x5157_5153)),
		products:    map[string]*Product{},
		seq:         map[string]int{},
		orders:      map[string]*Order{},
		nextOrder:   1,
		idempotency: map[string]idempotent{},
		counts:      map[string]int{},
		failAfter:   map[string]int{},
		throttleAt:  map[string]int{},
		userAgents:  map[string]int{},
	}
	s.mux = http.NewServeMux()
	s.routes()
	s.ts = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.ts.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.ts.Close() }

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.ts.Client() }

func (s *Server) routes() {
	h := func(pattern string, fn func(*http.Request) (int, any)) {
		s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			status, body := fn(r)
			s.write(w, status, body)
		})
	}
	h("GET /v2/commerce/store_pages", s.listStorePages)
	h("GET /v2/commerce/products", s.listProducts)
	h("GET /v2/commerce/products/{ids}", s.getProducts)
	h("POST /v2/commerce/products", s.createProduct)
	h("POST /v2/commerce/products/{id}", s.updateProduct)
	h("POST /v2/commerce/products/{id}/variants/{variantId}", s.updateVariant)
	h("DELETE /v2/commerce/products/{id}", s.deleteProduct)
	h("GET /1.0/commerce/inventory", s.listInventory)
	h("GET /1.0/commerce/inventory/{ids}", s.getInventory)
	h("POST /1.0/commerce/inventory/adjustments", s.adjustInventory)
	h("GET /1.0/commerce/orders", s.listOrders)
	h("GET /1.0/commerce/orders/{id}", s.getOrder)
	h("POST /1.0/commerce/orders", s.createOrder)
	h("POST /1.0/commerce/orders/{id}/fulfillments", s.fulfillOrder)
}

// serve counts the request, checks the headers every request needs and the rate limit, and
// runs the endpoint's handler with the shop locked (requests are applied one at a time).
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	_, pattern := s.mux.Handler(r)
	s.mu.Lock()
	if pattern == "" {
		s.counts[r.Method+" "+r.URL.Path]++
		s.mu.Unlock()
		if s.otherMethod(r) {
			s.write(w, http.StatusMethodNotAllowed, &apiError{status: 405, typ: "METHOD_NOT_ALLOWED", message: r.Method + " is not allowed on " + r.URL.Path})
			return
		}
		s.write(w, http.StatusNotFound, &apiError{status: 404, typ: "INVALID_REQUEST_ERROR", message: "Not Found: " + r.URL.Path})
		return
	}
	s.counts[pattern]++
	if e := s.admit(r, pattern); e != nil {
		s.mu.Unlock()
		if e.status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", fmt.Sprint(int(math.Ceil(e.retryAfter.Seconds()))))
		}
		s.write(w, e.status, e)
		return
	}
	lose := s.failAfter[pattern] > 0
	if lose {
		s.failAfter[pattern]--
	}
	s.mu.Unlock()
	if lose {
		// The request is carried out; its response is lost to an internal error.
		s.mux.ServeHTTP(httptest.NewRecorder(), r)
		s.write(w, http.StatusInternalServerError, &apiError{status: 500, typ: "INTERNAL_ERROR", message: "An internal error occurred; retry later."})
		return
	}
	s.mux.ServeHTTP(w, r)
}

// otherMethod reports whether the path exists with another method.
func (s *Server) otherMethod(r *http.Request) bool {
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, p := s.mux.Handler(r2); p != "" {
			return true
		}
	}
	return false
}

// admit checks authorization, the User-Agent, the throttling a test asked for and the rate
// limit. s.mu is held.
func (s *Server) admit(r *http.Request, pattern string) *apiError {
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || token == "" || s.opts.APIKey == "" || token != s.opts.APIKey {
		return &apiError{status: 401, typ: "AUTHORIZATION_ERROR", message: "The API key or OAuth token is missing, invalid or expired."}
	}
	ua := r.Header.Get("User-Agent")
	if ua == "" {
		return &apiError{status: 400, typ: "INVALID_REQUEST_ERROR", subtype: "MISSING_ARGUMENT", message: "The User-Agent header is required."}
	}
	s.userAgents[ua]++
	if s.throttleAt[pattern] > 0 {
		s.throttleAt[pattern]--
		s.throttled++
		return &apiError{status: 429, typ: "TOO_MANY_REQUESTS", message: "Too many requests; retry later.", retryAfter: s.opts.RetryAfter}
	}
	if s.throttle > 0 {
		s.throttle--
		s.throttled++
		return &apiError{status: 429, typ: "TOO_MANY_REQUESTS", message: "Too many requests; retry later.", retryAfter: s.opts.RetryAfter}
	}
	if s.opts.RateLimit > 0 {
		now := s.opts.Now()
		if now.Sub(s.windowStart) >= s.opts.RateWindow {
			s.windowStart, s.windowCount = now, 0
		}
		if s.windowCount >= s.opts.RateLimit {
			s.throttled++
			return &apiError{status: 429, typ: "TOO_MANY_REQUESTS", message: "Rate limit exceeded; retry later.",
				retryAfter: s.windowStart.Add(s.opts.RateWindow).Sub(now)}
		}
		s.windowCount++
	}
	return nil
}

// apiError is an error response: {"type", "subtype", "message", "details", "contextId"}.
type apiError struct {
	status     int
	typ        string
	subtype    string
	message    string
	details    map[string]any
	retryAfter time.Duration
}

func (e *apiError) Error() string { return e.message }

func missing(field string) *apiError {
	return &apiError{status: 400, typ: "INVALID_REQUEST_ERROR", subtype: "MISSING_ARGUMENT",
		message: field + " is required.", details: map[string]any{"field": field}}
}

func invalid(field, why string) *apiError {
	return &apiError{status: 400, typ: "INVALID_REQUEST_ERROR", subtype: "INVALID_ARGUMENT",
		message: field + " " + why + ".", details: map[string]any{"field": field}}
}

func notFound(what string) *apiError {
	return &apiError{status: 404, typ: "INVALID_REQUEST_ERROR", message: what + " not found."}
}

// write sends a JSON response: an *apiError as the error payload, nil as no content.
func (s *Server) write(w http.ResponseWriter, status int, body any) {
	if e, ok := body.(*apiError); ok {
		s.mu.Lock()
		ctx := s.contextID()
		s.mu.Unlock()
		var subtype, details any
		if e.subtype != "" {
			subtype = e.subtype
		}
		if e.details != nil {
			details = e.details
		}
		body = map[string]any{"type": e.typ, "subtype": subtype, "message": e.message, "details": details, "contextId": ctx}
		status = e.status
	}
	if body == nil || status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	b, err := json.Marshal(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// fail turns an *apiError into a handler result.
func fail(e *apiError) (int, any) { return e.status, e }

// decode reads a JSON request body into v, refusing another content type, unknown fields and
// trailing data.
func decode(r *http.Request, v any) ([]byte, *apiError) {
	ct := r.Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "application/json") {
		return nil, &apiError{status: 400, typ: "INVALID_REQUEST_ERROR", subtype: "INVALID_CONTENT_TYPE", message: "Content-Type must be application/json."}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, &apiError{status: 400, typ: "INVALID_REQUEST_ERROR", message: "The request body could not be read."}
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return body, &apiError{status: 400, typ: "INVALID_REQUEST_ERROR", subtype: "INVALID_ARGUMENT", message: "The request body is not valid: " + err.Error()}
	}
	if dec.More() {
		return body, &apiError{status: 400, typ: "INVALID_REQUEST_ERROR", subtype: "INVALID_ARGUMENT", message: "The request body has data after the JSON value."}
	}
	return body, nil
}

// stamp returns the time of a change as the API writes it (RFC 3339, milliseconds, UTC),
// later than every stamp before. s.mu is held.
func (s *Server) stamp() string {
	t := s.opts.Now().UTC().Truncate(time.Millisecond)
	if !t.After(s.lastStamp) {
		t = s.lastStamp.Add(time.Millisecond)
	}
	s.lastStamp = t
	return formatTime(t)
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// parseTime reads an ISO 8601 UTC date and time as the API accepts it.
func parseTime(v string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// objectID makes a 24-hex-digit id like Squarespace's. s.mu is held.
func (s *Server) objectID() string {
	return fmt.Sprintf("%08x%016x", uint32(s.opts.Now().Unix()), s.rng.Uint64())
}

// uuid makes a version 4 UUID, as variant ids are. s.mu is held.
func (s *Server) uuid() string {
	a, b := s.rng.Uint64(), s.rng.Uint64()
	a = a&^(0xf<<12) | 4<<12
	b = b&^(0x3<<62) | 0x2<<62
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", a>>32, (a>>16)&0xffff, a&0xffff, b>>48, b&0xffffffffffff)
}

// contextID makes the id of an error response. s.mu is held.
func (s *Server) contextID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 20)
	for i := range b {
		b[i] = alphabet[s.rng.IntN(len(alphabet))]
	}
	return string(b)
}

// cursor is the position of a list request and the filters it started with: a cursor
// continues a listing and cannot be combined with other parameters.
type cursor struct {
	Kind    string `json:"k"`
	After   string `json:"a,omitempty"`
	Before  string `json:"b,omitempty"`
	Filter  string `json:"f,omitempty"`
	LastMod string `json:"m,omitempty"`
	LastID  string `json:"i,omitempty"`
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(kind, v string) (cursor, *apiError) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || json.Unmarshal(b, &c) != nil || c.Kind != kind {
		return c, invalid("cursor", "is not a valid cursor")
	}
	return c, nil
}

// pagination is the pagination object of list responses.
type pagination struct {
	HasNextPage    bool    `json:"hasNextPage"`
	NextPageCursor *string `json:"nextPageCursor"`
	NextPageURL    *string `json:"nextPageUrl"`
}

// page cuts a page out of sorted keys (modifiedOn, id) after the cursor's position and
// returns the ids on it and the pagination object.
func (s *Server) page(r *http.Request, c cursor, keys []sortKey) ([]string, pagination) {
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].mod != keys[j].mod {
			return keys[i].mod < keys[j].mod
		}
		return keys[i].id < keys[j].id
	})
	start := 0
	if c.LastID != "" {
		start = sort.Search(len(keys), func(i int) bool {
			return keys[i].mod > c.LastMod || keys[i].mod == c.LastMod && keys[i].id > c.LastID
		})
	}
	end := min(start+s.opts.PageSize, len(keys))
	ids := make([]string, 0, end-start)
	for _, k := range keys[start:end] {
		ids = append(ids, k.id)
	}
	var p pagination
	if end < len(keys) {
		last := keys[end-1]
		c.LastMod, c.LastID = last.mod, last.id
		cur := c.encode()
		next := "http://" + r.Host + r.URL.Path + "?cursor=" + cur
		p = pagination{HasNextPage: true, NextPageCursor: &cur, NextPageURL: &next}
	}
	return ids, p
}

type sortKey struct{ mod, id string }

// timeRange reads modifiedAfter and modifiedBefore: both or neither, valid ISO 8601 UTC,
// before later than after, and never with a cursor.
func timeRange(q map[string][]string) (after, before string, e *apiError) {
	after, before = first(q, "modifiedAfter"), first(q, "modifiedBefore")
	if after == "" && before == "" {
		return "", "", nil
	}
	if after == "" {
		return "", "", invalid("modifiedAfter", "is required when modifiedBefore is passed")
	}
	if before == "" {
		return "", "", invalid("modifiedBefore", "is required when modifiedAfter is passed")
	}
	a, ok := parseTime(after)
	if !ok {
		return "", "", invalid("modifiedAfter", "is not a valid ISO 8601 UTC date and time")
	}
	b, ok := parseTime(before)
	if !ok {
		return "", "", invalid("modifiedBefore", "is not a valid ISO 8601 UTC date and time")
	}
	if !b.After(a) {
		return "", "", invalid("modifiedBefore", "must be after modifiedAfter")
	}
	return formatTime(a), formatTime(b), nil
}

// inRange says whether a modifiedOn stamp lies strictly between after and before ("" for no
// range). The stamps have the same fixed format, so text order is time order.
func inRange(mod, after, before string) bool {
	if after == "" {
		return true
	}
	return mod > after && mod < before
}

func first(q map[string][]string, k string) string {
	if v := q[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// listCursor reads where a list request starts: the cursor it carries (alone, as the API
// requires), else the first page of the time range and of the list's own filter (nil: a list
// without either).
func listCursor(q map[string][]string, kind string, filter func(map[string][]string) (string, *apiError)) (cursor, *apiError) {
	if e := cursorAlone(q); e != nil {
		return cursor{}, e
	}
	if v := first(q, "cursor"); v != "" {
		return decodeCursor(kind, v)
	}
	if filter == nil {
		return cursor{Kind: kind}, nil
	}
	after, before, e := timeRange(q)
	if e != nil {
		return cursor{}, e
	}
	f, e := filter(q)
	if e != nil {
		return cursor{}, e
	}
	return cursor{Kind: kind, After: after, Before: before, Filter: f}, nil
}

// cursorAlone refuses a cursor combined with other query parameters.
func cursorAlone(q map[string][]string) *apiError {
	if first(q, "cursor") == "" {
		return nil
	}
	keys := slices.Sorted(maps.Keys(q))
	for _, k := range keys {
		if k != "cursor" {
			return invalid("cursor", "cannot be combined with other parameters ("+k+")")
		}
	}
	return nil
}

// splitIDs reads a comma-separated list of up to 50 ids.
func splitIDs(v string) ([]string, *apiError) {
	var ids []string
	for _, id := range strings.Split(v, ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, invalid("ids", "must name at least one id")
	}
	if len(ids) > 50 {
		return nil, invalid("ids", "must name at most 50 ids")
	}
	return ids, nil
}

// remember looks up an Idempotency-Key: a repeated key with the same body replays the first
// outcome; with another body, or on another endpoint, it is refused. s.mu is held.
func (s *Server) remembered(endpoint, key string, body []byte) (idempotent, bool, *apiError) {
	prev, ok := s.idempotency[key]
	if !ok {
		return idempotent{}, false, nil
	}
	if prev.endpoint != endpoint || !sameJSON(prev.body, string(body)) {
		return idempotent{}, false, invalid("Idempotency-Key", "has already been used by another request bearing a different body")
	}
	return prev, true, nil
}

func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return a == b
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// idempotencyKey reads the Idempotency-Key header the endpoint requires.
func idempotencyKey(r *http.Request) (string, *apiError) {
	k := r.Header.Get("Idempotency-Key")
	if k == "" {
		return "", missing("Idempotency-Key header")
	}
	if len(k) > 128 {
		return "", invalid("Idempotency-Key header", "must be at most 128 characters")
	}
	return k, nil
}
