package httpconn

// The client under faults: retries and their bounds, Retry-After, timeouts, resets, bodies that
// are garbage, truncated or endless, redirects, TLS.

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

const internalError = `{"message": "internal error"}`

// TestRetriesStayWithinBounds: a server that always fails with 500 gets exactly retry.attempts
// tries; each wait is between 0 and base_delay·2^(try-1) (full jitter), they add up to less
// than max_wait, and the error says how many tries over how long.
func TestRetriesStayWithinBounds(t *testing.T) {
	a := newAPI(t, 3)
	c, clk := openConn(t, system(a.srv.URL, "", itemEntity), nil)
	c.s.attempts, c.s.baseDelay, c.s.maxWait = 6, 100*time.Millisecond, time.Minute
	for range 10 {
		a.inject("GET /items", status(500, "", internalError))
	}
	_, err := scanAll(t, c, "")
	if got := len(a.requests("GET /items")); got != 6 {
		t.Fatalf("%d tries, want 6", got)
	}
	waits := clk.waits()
	if len(waits) != 5 {
		t.Fatalf("waits %v, want 5", waits)
	}
	var total time.Duration
	for i, w := range waits {
		if ceiling := 100 * time.Millisecond << i; w < 0 || w > ceiling {
			t.Errorf("wait %d = %v, want within [0, %v]", i+1, w, ceiling)
		}
		total += w
	}
	if total > c.s.maxWait {
		t.Errorf("waited %v in all, more than max_wait", total)
	}
	want := "fake Item: GET " + a.srv.URL + "/items: 500 Internal Server Error after 6 attempts over "
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), ": internal error") {
		t.Fatalf("error %v, want %q...: internal error", err, want)
	}
}

// TestBackoffDoublesAndStopsAtMaxWait: with the jitter at its ceiling the waits double from
// base_delay, the last is cut to what is left of max_wait, and the retries stop when it is spent.
func TestBackoffDoublesAndStopsAtMaxWait(t *testing.T) {
	a := newAPI(t, 3)
	c, clk := openConn(t, system(a.srv.URL, "", itemEntity), nil)
	c.s.attempts, c.s.baseDelay, c.s.maxWait = 10, time.Second, 5*time.Second
	c.cl.jitter = func(d time.Duration) time.Duration { return d }
	for range 10 {
		a.inject("GET /items", status(502, "", "bad gateway"))
	}
	_, err := scanAll(t, c, "")
	waits := clk.waits()
	if want := []time.Duration{time.Second, 2 * time.Second, 2 * time.Second}; !equalDurations(waits, want) {
		t.Fatalf("waits %v, want %v", waits, want)
	}
	if got := len(a.requests("GET /items")); got != 4 {
		t.Errorf("%d tries, want 4", got)
	}
	if err == nil || !strings.Contains(err.Error(), "502 Bad Gateway after 4 attempts over 5s (retry.max_wait 5s spent): bad gateway") {
		t.Errorf("error %v", err)
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRetryAfterHonoured: a 429 with Retry-After in seconds and a 503 with an HTTP date make
// the client wait exactly that long, instead of its own backoff.
func TestRetryAfterHonoured(t *testing.T) {
	a := newAPI(t, 3)
	c, clk := openConn(t, system(a.srv.URL, "", itemEntity), nil)
	c.s.attempts = 5
	// The date is 7 s after the client's clock at the second try, which comes 3 s after the first.
	date := clk.now().Add(3*time.Second + 7*time.Second).Format(http.TimeFormat)
	a.inject("GET /items", status(429, "3", `{"message": "slow down"}`), status(503, date, "maintenance"))
	pages, err := scanAll(t, c, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(pages); got != "1,2,3" {
		t.Errorf("read %s", got)
	}
	if want := []time.Duration{3 * time.Second, 7 * time.Second}; !equalDurations(clk.waits(), want) {
		t.Errorf("waits %v, want %v", clk.waits(), want)
	}
}

// TestRetryAfterBeyondMaxWait: a server that asks for a longer wait than max_wait allows is
// not asked again: the error says so at once.
func TestRetryAfterBeyondMaxWait(t *testing.T) {
	a := newAPI(t, 3)
	c, clk := openConn(t, system(a.srv.URL, "", itemEntity), nil)
	a.inject("GET /items", status(429, "600", `{"message": "rate limited"}`))
	_, err := scanAll(t, c, "")
	if len(clk.waits()) != 0 || len(a.requests("GET /items")) != 1 {
		t.Errorf("waits %v, %d tries", clk.waits(), len(a.requests("GET /items")))
	}
	if err == nil || !strings.Contains(err.Error(), "429 Too Many Requests (the server asks to wait 10m0s, more than the 10s left of retry.max_wait 10s): rate limited") {
		t.Errorf("error %v", err)
	}
}

// TestSlowAnswerTimesOutAndIsRetried: an answer slower than timeout is abandoned and asked
// again; when every try is slow the error names the timeout.
func TestSlowAnswerTimesOutAndIsRetried(t *testing.T) {
	a := newAPI(t, 3)
	c, _ := openConn(t, system(a.srv.URL, "", itemEntity), nil)
	c.s.timeout = 150 * time.Millisecond
	a.inject("GET /items", slow(2*time.Second))
	start := time.Now()
	pages, err := scanAll(t, c, "")
	if err != nil || ids(pages) != "1,2,3" {
		t.Fatalf("read %s, %v", ids(pages), err)
	}
	if len(a.requests("GET /items")) != 2 {
		t.Errorf("%d tries, want 2", len(a.requests("GET /items")))
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("took %v: the slow try was not abandoned", d)
	}
	a.inject("GET /items", slow(2*time.Second), slow(2*time.Second), slow(2*time.Second))
	_, err = scanAll(t, c, "")
	if err == nil || !strings.Contains(err.Error(), "no response within 150ms (timeout) after 3 attempts") {
		t.Errorf("error %v", err)
	}
}

// TestResetsAndCutBodiesAreRetried: a connection reset before the answer, and an answer cut off
// in its body, are tried again for a read.
func TestResetsAndCutBodiesAreRetried(t *testing.T) {
	a := newAPI(t, 3)
	c, _ := openConn(t, system(a.srv.URL, "", itemEntity), nil)
	a.inject("GET /items", hangUp, cutBody)
	pages, err := scanAll(t, c, "")
	if err != nil || ids(pages) != "1,2,3" {
		t.Fatalf("read %s, %v", ids(pages), err)
	}
	if n := len(a.requests("GET /items")); n != 3 {
		t.Errorf("%d tries, want 3", n)
	}
	// Go's transport itself sends a GET again once when a kept-alive connection drops, so the
	// server may see more requests than the client's 3 tries.
	for range 20 {
		a.inject("GET /items", hangUp)
	}
	_, err = scanAll(t, c, "")
	if err == nil || !strings.Contains(err.Error(), "after 3 attempts") ||
		!strings.Contains(err.Error(), "the connection was reset") && !strings.Contains(err.Error(), "the server closed the connection without a whole response") {
		t.Errorf("error %v", err)
	}
}

// TestBadBodies: garbage, truncated JSON and an endless body are clear errors, not retried
// (the server answered, and will answer the same).
func TestBadBodies(t *testing.T) {
	a := newAPI(t, 3)
	c, _ := openConn(t, system(a.srv.URL, "", itemEntity), nil)
	c.cl.maxBody = 1 << 20
	for _, tc := range []struct {
		name string
		f    fault
		want string
	}{
		{"garbage", body("<html>Bad things</html>"), `the response is not valid JSON: invalid character '<' looking for beginning of value at byte 1 (the body is "<html>Bad things</html>")`},
		{"truncated", body(`{"items": [{"id": 1, "sku": "A`), "the response is truncated JSON: it ends after 30 bytes"},
		{"trailing", body(`{"items": []} {"items": []}`), "more data after the value"},
		{"empty", body(""), "the response body is empty where JSON was expected"},
		{"not a list", body(`{"items": {"id": 1}}`), `"items" in the response is an object, not a list of records`},
		{"missing key", body(`{"products": []}`), `the response has no "items"; it has products`},
		{"no id", body(`{"items": [{"sku": "A"}]}`), `record 1 of page 1: a record has no id at "id" (its keys: sku)`},
		{"endless", endless, "the response is larger than 1 MiB"},
		{"cursor object", body(`{"items": [], "pagination": {"nextPageCursor": {"a": 1}}}`), `the cursor at "pagination.nextPageCursor" is an object, not text`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(a.requests("GET /items"))
			a.inject("GET /items", tc.f)
			_, err := scanAll(t, c, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
			if n := len(a.requests("GET /items")) - before; n != 1 {
				t.Errorf("%d tries, want 1", n)
			}
		})
	}
}

// TestRedirects: a redirect within the host is followed (at most 5 times); a redirect to another
// host is refused, and that host sees no request and no credentials; a redirect that would turn
// a create into a GET is refused.
func TestRedirects(t *testing.T) {
	other := newAPI(t, 0)
	a := newAPI(t, 3)
	c, _ := openConn(t, system(a.srv.URL, "", itemEntity), nil)
	redirect := func(to string) fault {
		return func(a *api, w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, to, http.StatusFound) }
	}
	a.inject("GET /items", redirect("/moved"))
	a.inject("GET /moved", redirect("/items?again=1"))
	pages, err := scanAll(t, c, "")
	if err != nil || ids(pages) != "1,2,3" {
		t.Fatalf("same-host redirect: read %s, %v", ids(pages), err)
	}

	a.inject("GET /items", redirect(other.srv.URL+"/items"))
	_, err = scanAll(t, c, "")
	if err == nil || !strings.Contains(err.Error(), "refused a redirect to another host ("+other.srv.URL+")") {
		t.Errorf("other-host redirect: error %v", err)
	}
	if n := len(other.requests("*")); n != 0 {
		t.Errorf("the other host got %d requests", n)
	}

	a.inject("POST /items", redirect("/items"))
	if _, err := c.Create(ctx, "Item", []map[string]any{{"sku": "R"}}); err == nil || !strings.Contains(err.Error(), "refused a redirect that turns POST into GET") {
		t.Errorf("POST redirected with 302: error %v", err)
	}
	if a.count() != 3 {
		t.Errorf("%d items", a.count())
	}

	for range 6 {
		a.inject("GET /items", redirect("/items"))
	}
	_, err = scanAll(t, c, "")
	if err == nil || !strings.Contains(err.Error(), "stopped after 5 redirects") {
		t.Errorf("redirect loop: error %v", err)
	}
}

// TestTLSVerifiedWithCAFile: a server whose certificate no trusted CA signs is refused at once
// (no retry); with its CA in ca_file the same server is read.
func TestTLSVerifiedWithCAFile(t *testing.T) {
	a := newAPI(t, 0)
	a.srv.Close()
	a.srv = httptest.NewUnstartedServer(a)             // 127.0.0.1, with a certificate of httptest's own CA
	a.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	a.srv.StartTLS()
	defer a.srv.Close()
	a.mu.Lock()
	a.add(map[string]any{"sku": "TLS"})
	a.mu.Unlock()

	c, _ := openConn(t, system(a.srv.URL, "", itemEntity), nil)
	_, err := scanAll(t, c, "")
	if err == nil || !strings.Contains(err.Error(), "the server's TLS certificate is not trusted") || strings.Contains(err.Error(), "attempts") {
		t.Errorf("error %v", err)
	}
	if n := len(a.requests("*")); n != 0 {
		t.Errorf("%d requests got through", n)
	}

	ca := filepath.Join(t.TempDir(), "ca.pem")
	cert := a.srv.Certificate()
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ = openConn(t, system(a.srv.URL, "ca_file: "+ca+"\n", itemEntity), nil)
	pages, err := scanAll(t, c, "")
	if err != nil || ids(pages) != "1" {
		t.Fatalf("with ca_file: read %s, %v", ids(pages), err)
	}

	bad := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	_, err = Driver{}.Open(context.Background(), loadSystem(t, system(a.srv.URL, "ca_file: "+bad+"\n", itemEntity), map[string]string{"TOKEN": "x"}), nil, connector.OpenOptions{})
	if err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("bad ca_file: %v", err)
	}
}

// TestCancelledRunStopsRetrying: cancelling the context ends the retries, and the error says
// it was cancelled.
func TestCancelledRunStopsRetrying(t *testing.T) {
	a := newAPI(t, 3)
	c, _ := openConn(t, system(a.srv.URL, "", itemEntity), nil)
	c.cl.sleep = sleep // real waits, cut short by the cancel
	c.s.baseDelay, c.s.attempts = time.Hour, 5
	c.cl.jitter = func(d time.Duration) time.Duration { return d }
	ctx, cancel := context.WithCancel(context.Background())
	a.inject("GET /items", status(500, "", ""))
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	err := c.Scan(ctx, "Item", "", func([]connector.Record) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

// TestRefusedConnectionsBackOff: a server that is down (connection refused) is retried with
// the same doubling backoff as a 5xx, not at once: a restart of a few seconds is ridden out.
func TestRefusedConnectionsBackOff(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String()
	l.Close()
	c, clk := openConn(t, system(down, "", itemEntity), nil)
	c.s.attempts, c.s.baseDelay, c.s.maxWait = 4, time.Second, time.Minute
	c.cl.jitter = func(d time.Duration) time.Duration { return d }
	_, err = scanAll(t, c, "")
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}; !equalDurations(clk.waits(), want) {
		t.Errorf("waits %v, want %v", clk.waits(), want)
	}
	if err == nil || !strings.Contains(err.Error(), "after 4 attempts over 7s") {
		t.Errorf("error %v, want one after 4 attempts over 7s", err)
	}
}
