package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/state"
)

const testToken = "s3cret-admin-token"

// post sends a form with headers and returns the status and body (redirects not followed).
func (r *running) post(t *testing.T, path string, form url.Values, headers map[string]string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body), res.Header
}

func deadLetters(t *testing.T, flow string) []state.DeadLetter {
	t.Helper()
	st, err := state.Open(context.Background(), ".dataflow/state.db", state.ReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dead, err := st.DeadLetters(context.Background(), flow)
	if err != nil {
		t.Fatal(err)
	}
	return dead
}

// TestAdminActions: the mutating actions take the bearer token, or the session cookie of the
// status page's login with the form's CSRF token, and refuse cross-site requests whatever
// they carry.
func TestAdminActions(t *testing.T) {
	seedProject(t)
	r := startService(t, Config{AdminToken: testToken})
	r.settle(t)
	refuseNewProduct(t)
	r.runAndWait(t, "product-to-sesamproducts")
	dead := deadLetters(t, "product-to-sesamproducts")
	if len(dead) != 1 {
		t.Fatalf("dead letters: %v; want the refused product", dead)
	}
	drop := url.Values{"flow": {"product-to-sesamproducts"}, "side": {dead[0].Side}, "record": {dead[0].RecordID}}
	bearer := map[string]string{"Authorization": "Bearer " + testToken}

	login := url.Values{"token": {testToken}}
	_, _, h := r.post(t, "/login", login, nil)
	cookie := h.Get("Set-Cookie")
	if !strings.HasPrefix(cookie, sessionCookie+"=") || !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Strict") {
		t.Fatalf("login: Set-Cookie %q; want an HttpOnly, SameSite=Strict session", cookie)
	}
	session := strings.SplitN(cookie, ";", 2)[0]
	if strings.Contains(session, testToken) {
		t.Fatalf("the session cookie holds the token itself: %s", session)
	}
	withCSRF := url.Values{"flow": drop["flow"], "side": drop["side"], "record": drop["record"], csrfField: {r.derived("csrf")}}

	for _, tc := range []struct {
		name    string
		form    url.Values
		headers map[string]string
		code    int
		body    string
	}{
		{"no token", drop, nil, 401, "admin token required: send Authorization: Bearer <token>, or log in on the status page\n"},
		{"wrong token", drop, map[string]string{"Authorization": "Bearer nope"}, 401, "wrong admin token\n"},
		{"not a bearer token", drop, map[string]string{"Authorization": "Basic " + testToken}, 401, "wrong admin token\n"},
		{"cookie without the CSRF token", drop, map[string]string{"Cookie": session}, 403, "missing or wrong CSRF token: reload the status page and try again\n"},
		{"cookie with a wrong CSRF token", url.Values{"flow": drop["flow"], csrfField: {"0000"}}, map[string]string{"Cookie": session}, 403, "missing or wrong CSRF token: reload the status page and try again\n"},
		{"cross-site with the cookie and CSRF token", withCSRF, map[string]string{"Cookie": session, "Sec-Fetch-Site": "cross-site"}, 403, "cross-origin request detected from Sec-Fetch-Site header\n"},
		{"another origin with the bearer token", drop, map[string]string{"Authorization": "Bearer " + testToken, "Origin": "http://evil.example"}, 403, "cross-origin request detected, and/or browser is out of date: Sec-Fetch-Site is missing, and Origin does not match Host\n"},
	} {
		code, body, _ := r.post(t, "/deadletters/drop", tc.form, tc.headers)
		if code != tc.code || body != tc.body {
			t.Errorf("%s: %d %q; want %d %q", tc.name, code, body, tc.code, tc.body)
		}
	}
	if n := len(deadLetters(t, "product-to-sesamproducts")); n != 1 {
		t.Fatalf("a refused request dropped the dead letter (%d left)", n)
	}

	// A form of the page itself: cookie, CSRF token, same origin. The answer is the page again.
	code, _, h := r.post(t, "/deadletters/drop", withCSRF, map[string]string{"Cookie": session, "Sec-Fetch-Site": "same-origin", "Origin": r.base})
	if code != http.StatusSeeOther || h.Get("Location") != "/#flow-product-to-sesamproducts" {
		t.Fatalf("drop from the page: %d to %q", code, h.Get("Location"))
	}
	if n := len(deadLetters(t, "product-to-sesamproducts")); n != 0 {
		t.Fatalf("the dead letter is still there after the drop (%d)", n)
	}
	code, body, _ := r.post(t, "/deadletters/drop", drop, bearer)
	if code != 404 || body != "flow \"product-to-sesamproducts\" has no dead letter source:14\n" {
		t.Errorf("dropping it again: %d %q", code, body)
	}

	// An API client runs a flow now with the bearer token.
	before := r.finishedRuns("order-to-order")
	code, body, _ = r.post(t, "/flows/order-to-order/run", nil, bearer)
	if code != 200 || !strings.Contains(body, `"queued": true`) {
		t.Fatalf("run now: %d %s", code, body)
	}
	waitFor(t, "the run asked for", func() bool { return r.finishedRuns("order-to-order") > before })
	if tr := r.runs["order-to-order"][0].Trigger; tr != "admin" {
		t.Errorf("the run's trigger is %q; want admin", tr)
	}
	if code, body, _ = r.post(t, "/flows/nope/run", nil, bearer); code != 404 || body != "unknown flow \"nope\"\n" {
		t.Errorf("run now of an unknown flow: %d %q", code, body)
	}
	if code, _, h = r.post(t, "/login", url.Values{"token": {"wrong"}}, nil); code != http.StatusSeeOther || h.Get("Location") != "/?login=wrong" || h.Get("Set-Cookie") != "" {
		t.Errorf("a wrong login: %d to %q, cookie %q", code, h.Get("Location"), h.Get("Set-Cookie"))
	}
}

// TestAdminOff: without an admin token no action is possible, and the page says so.
func TestAdminOff(t *testing.T) {
	seedProject(t)
	r := startService(t, Config{})
	code, body, _ := r.post(t, "/flows/order-to-order/run", nil, map[string]string{"Authorization": "Bearer "})
	if code != 403 || body != "admin actions are off: the service was started without an admin token\n" {
		t.Errorf("run now: %d %q", code, body)
	}
	if code, body, _ = r.post(t, "/login", url.Values{"token": {""}}, nil); code != 403 {
		t.Errorf("login: %d %q", code, body)
	}
	if _, page := r.get(t, "/"); !strings.Contains(page, "Admin actions are off") || strings.Contains(page, `action="/deadletters`) {
		t.Errorf("the page without an admin token:\n%s", page)
	}
}

// signedHook posts a webhook for flow, signed with secret at ts.
func (r *running) signedHook(t *testing.T, flow, secret string, ts time.Time, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.base+"/hooks/"+flow, strings.NewReader(body))
	req.Header.Set(TimestampHeader, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(SignatureHeader, Sign(secret, flow, ts, []byte(body)))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestHooks: a signed webhook queues a run of its flow now; a wrong, stale, replayed or
// missing signature is refused, and so is one signed for another flow.
func TestHooks(t *testing.T) {
	seedProject(t)
	const secret = "hook-secret"
	r := startService(t, Config{HookSecret: secret})
	r.settle(t)

	// A change in the CRM, announced by a webhook, arrives in the shop without waiting for
	// the hourly schedule.
	execSQL(t, "testdata/local/custom-crm.db", `UPDATE products SET name = 'Espresso Nattravn', updated_at = '2030-01-01T00:00:00Z' WHERE sku = 'NR-ESP-250'`)
	before := r.finishedRuns("product-to-sesamproducts")
	code, body := r.signedHook(t, "product-to-sesamproducts", secret, time.Now(), `{"changed":"NR-ESP-250"}`)
	if code != http.StatusAccepted || body != "{\n  \"flow\": \"product-to-sesamproducts\",\n  \"queued\": true\n}\n" {
		t.Fatalf("a signed webhook: %d %s", code, body)
	}
	waitFor(t, "the webhook's run", func() bool { return r.finishedRuns("product-to-sesamproducts") > before })
	run := r.runs["product-to-sesamproducts"][0]
	if run.Trigger != "webhook" || run.Counts.UpdatedTarget != 1 {
		t.Errorf("the webhook's run: trigger %q, %d updated; want webhook, 1", run.Trigger, run.Counts.UpdatedTarget)
	}

	now := time.Now()
	post := func(flow string, headers map[string]string, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, r.base+"/hooks/"+flow, strings.NewReader(body))
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	good := Sign(secret, "order-to-order", now, []byte("x"))
	for _, tc := range []struct {
		name, flow, body string
		headers          map[string]string
		code             int
		want             string
	}{
		{"no timestamp", "order-to-order", "x", map[string]string{SignatureHeader: good}, 401, "missing or bad X-Dataflow-Timestamp: send the Unix time in seconds\n"},
		{"no signature", "order-to-order", "x", map[string]string{TimestampHeader: ts}, 401, "missing or bad X-Dataflow-Signature: send sha256= and the hex HMAC-SHA256 of \"<timestamp>.<flow>.<body>\"\n"},
		{"wrong secret", "order-to-order", "x", map[string]string{TimestampHeader: ts, SignatureHeader: Sign("other", "order-to-order", now, []byte("x"))}, 401, "wrong signature\n"},
		{"another body", "order-to-order", "y", map[string]string{TimestampHeader: ts, SignatureHeader: good}, 401, "wrong signature\n"},
		{"another flow", "product-to-inventory", "x", map[string]string{TimestampHeader: ts, SignatureHeader: good}, 401, "wrong signature\n"},
		{"stale", "order-to-order", "x", map[string]string{TimestampHeader: strconv.FormatInt(now.Add(-6*time.Minute).Unix(), 10), SignatureHeader: Sign(secret, "order-to-order", now.Add(-6*time.Minute), []byte("x"))}, 401, "X-Dataflow-Timestamp is 6m0s from now; a webhook must be signed within 5 minutes of sending\n"},
		{"unknown flow", "nope", "x", map[string]string{TimestampHeader: ts, SignatureHeader: Sign(secret, "nope", now, []byte("x"))}, 404, "unknown flow \"nope\"\n"},
		{"good", "order-to-order", "x", map[string]string{TimestampHeader: ts, SignatureHeader: good}, 202, "{\n  \"flow\": \"order-to-order\",\n  \"queued\": true\n}\n"},
		{"replayed", "order-to-order", "x", map[string]string{TimestampHeader: ts, SignatureHeader: good}, 401, "this signature was used already (a replay)\n"},
	} {
		code, body := post(tc.flow, tc.headers, tc.body)
		if tc.name == "stale" && code == 401 && strings.HasPrefix(body, "X-Dataflow-Timestamp is 6m") {
			body = tc.want // the seconds may tick between signing and checking
		}
		if code != tc.code || body != tc.want {
			t.Errorf("%s: %d %q; want %d %q", tc.name, code, body, tc.code, tc.want)
		}
	}
}

// TestHookBodyLimit: a webhook body over 1 MiB is refused before its signature is computed.
func TestHookBodyLimit(t *testing.T) {
	seedProject(t)
	r := startService(t, Config{HookSecret: "s"})
	body := strings.Repeat("x", maxHookBody+1)
	if code, got := r.signedHook(t, "order-to-order", "s", time.Now(), body); code != http.StatusRequestEntityTooLarge || got != "the body is over 1 MiB\n" {
		t.Errorf("a 1 MiB + 1 body: %d %q", code, got)
	}
	if code, _ := r.signedHook(t, "order-to-order", "s", time.Now(), body[1:]); code != http.StatusAccepted {
		t.Errorf("a 1 MiB body: %d; want 202", code)
	}
}

// TestHooksOff: without a secret there are no webhooks.
func TestHooksOff(t *testing.T) {
	seedProject(t)
	r := startService(t, Config{})
	if code, body := r.signedHook(t, "order-to-order", "", time.Now(), ""); code != 404 || body != "webhooks are off: the service was started without a hook secret\n" {
		t.Errorf("a webhook: %d %q", code, body)
	}
}

// TestStatusJSON: /status.json gives every flow with its runs (worker, RFC 3339 times).
func TestStatusJSON(t *testing.T) {
	seedProject(t)
	r := startService(t, Config{})
	r.settle(t)
	_, body := r.get(t, "/status.json")
	var st struct {
		Worker string `json:"worker"`
		Flows  []struct {
			Flow    string `json:"flow"`
			Links   int    `json:"links"`
			NextRun string `json:"next_run"`
			Runs    []struct {
				Worker   string `json:"worker"`
				Started  string `json:"started"`
				Finished string `json:"finished"`
				Result   string `json:"result"`
			} `json:"runs"`
		} `json:"flows"`
	}
	if err := json.NewDecoder(bytes.NewReader([]byte(body))).Decode(&st); err != nil {
		t.Fatal(err)
	}
	links := map[string]int{}
	for _, f := range st.Flows {
		links[f.Flow] = f.Links
		if len(f.Runs) < 2 {
			t.Errorf("%s: %d runs; want at least 2", f.Flow, len(f.Runs))
			continue
		}
		for _, run := range f.Runs {
			_, err1 := time.Parse(time.RFC3339, run.Started)
			_, err2 := time.Parse(time.RFC3339, run.Finished)
			if run.Worker != "test-worker" || err1 != nil || err2 != nil || run.Result != "ok" {
				t.Errorf("%s: run %+v", f.Flow, run)
			}
		}
		if _, err := time.Parse(time.RFC3339, f.NextRun); err != nil {
			t.Errorf("%s: next run %q", f.Flow, f.NextRun)
		}
	}
	// On start every flow is due at once: the orders, which name the inventory items'
	// variants, run after the items.
	first := func(flow string) time.Time {
		r.mu.Lock()
		defer r.mu.Unlock()
		runs := r.runs[flow]
		return runs[len(runs)-1].Started
	}
	if inv, ord := first("product-to-inventory"), first("order-to-order"); !ord.After(inv) {
		t.Errorf("the first run of order-to-order started at %s, before product-to-inventory's at %s", ord, inv)
	}
	if links["product-to-sesamproducts"] != 11 || links["product-to-inventory"] != 11 || links["order-to-order"] != 7 {
		t.Errorf("links: %v", links)
	}
}

// TestReadStatus: made from the link state alone (what `dataflow status --json` prints while
// no service runs), the status lists each flow's runs from the run log with their counts and
// RFC 3339 times, newest first, and the waiting records and dead letters with their reasons.
func TestReadStatus(t *testing.T) {
	seedProject(t)
	r := startService(t, Config{})
	r.settle(t)
	refuseNewProduct(t)
	r.runAndWait(t, "product-to-sesamproducts")
	waitFor(t, "the service to be idle", r.idle)
	r.stop()

	p, err := loadSeedPlan(t)
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(context.Background(), ".dataflow/state.db", state.ReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	status, err := ReadStatus(context.Background(), p.project, st, time.Now(), 100)
	if err != nil {
		t.Fatal(err)
	}
	byFlow := map[string]FlowStatus{}
	for _, f := range status.Flows {
		byFlow[f.Flow] = f
	}
	sesam := byFlow["product-to-sesamproducts"]
	if len(sesam.Runs) != 3 || sesam.Runs[0].Result != "failed" || sesam.Runs[0].Counts.Failed != 1 || sesam.Runs[2].Counts.CreatedTarget != 11 {
		t.Errorf("product-to-sesamproducts's runs: %s", mustJSON(sesam.Runs))
	}
	if len(sesam.DeadLetters) != 1 || sesam.DeadLetters[0].Reason != "creating Sesamproducts: the shop refuses this product" {
		t.Errorf("dead letters: %+v", sesam.DeadLetters)
	}
	orders := byFlow["order-to-order"]
	if len(orders.Waiting) != 1 || orders.Waiting[0].Reason != "refers to 11, which flow product-to-inventory has not linked yet" || orders.Links != 7 {
		t.Errorf("order-to-order: %d links, waiting %+v", orders.Links, orders.Waiting)
	}
	for _, f := range status.Flows {
		for _, run := range f.Runs {
			if run.Finished == nil || run.Finished.Before(run.Started) || !strings.HasPrefix(run.ID, "#") {
				t.Errorf("%s: run %s", f.Flow, mustJSON(run))
			}
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestStatusQueuedAndRunning: the status shows a run in flight with its counts so far, and a
// run queued behind it, whoever queued it.
func TestStatusQueuedAndRunning(t *testing.T) {
	seedProject(t)
	r := startService(t, Config{})
	r.settle(t)
	execSQL(t, "testdata/local/custom-crm.db", `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000)
		INSERT INTO products (sku, name, unit_price, units_in_stock, updated_at)
		SELECT 'BULK-' || i, 'Bulk ' || i, 1.5, 1, '2030-01-01T00:00:00Z' FROM n`)
	r.Trigger(context.Background(), "product-to-sesamproducts", "test")
	waitFor(t, "the run to start", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.inflight["product-to-sesamproducts"] != nil
	})
	if queued, err := r.Trigger(context.Background(), "order-to-order", "test"); err != nil || !queued {
		t.Fatalf("queueing order-to-order: %v %v", queued, err)
	}
	st, err := r.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range st.Flows {
		switch f.Flow {
		case "product-to-sesamproducts":
			if f.Running == nil || f.Running.Worker != "test-worker" || f.Running.Finished != nil || f.Queued {
				t.Errorf("%s: running %s, queued %v; want a run in flight and none queued", f.Flow, mustJSON(f.Running), f.Queued)
			}
		case "order-to-order":
			if f.Running != nil || !f.Queued {
				t.Errorf("%s: running %s, queued %v; want a queued run", f.Flow, mustJSON(f.Running), f.Queued)
			}
		}
	}
	_, page := r.get(t, "/")
	if !strings.Contains(page, "running since") || !strings.Contains(page, "<td>queued</td>") {
		t.Errorf("the page shows neither the run in flight nor the queued one")
	}
}
