package httpconn

// The client sends the requests of one system: auth and extra headers on every request, a
// timeout per try, retries (retry.go), at most `concurrency` requests in flight, TLS always
// verified, redirects followed only within the host, and response bodies read up to a cap.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// maxBody bounds a response body; a larger one is an error, not an exhausted memory.
	maxBody = 64 << 20
	// maxRedirects bounds the redirects followed within the host.
	maxRedirects = 5
)

// client sends requests to one system.
type client struct {
	s        *settings
	red      *redactor
	http     *http.Client
	sem      chan struct{} // one token per request in flight
	maxBody  int64
	readOnly bool
	auth     authenticator // nil: the static credentials of s.header, if any
	budget   *budget       // the system's rate budget, shared with its other connections
	sent     atomic.Int64  // requests sent, for the run's summary

	// The clock, the pause between tries and the jitter of backoffs; tests replace them.
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func(d time.Duration) time.Duration // uniform in [0, d]
}

func newClient(s *settings, red *redactor, roots *x509.CertPool, readOnly bool, b *budget) *client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   s.concurrency,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Verification is never turned off; ca_file adds roots for a private CA.
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots},
	}
	c := &client{
		s:        s,
		red:      red,
		sem:      make(chan struct{}, s.concurrency),
		maxBody:  maxBody,
		readOnly: readOnly,
		budget:   b,
		now:      time.Now,
		sleep:    sleep,
		jitter:   func(d time.Duration) time.Duration { return time.Duration(rand.Int64N(int64(d) + 1)) },
	}
	c.http = &http.Client{Transport: tr, CheckRedirect: checkRedirect}
	return c
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close releases idle connections.
func (c *client) close() {
	c.http.CloseIdleConnections()
}

// redirectError is a redirect the client refuses to follow.
type redirectError struct{ msg string }

func (e *redirectError) Error() string { return e.msg }

// checkRedirect follows at most maxRedirects redirects, only to the host (and scheme) of the
// request, and only keeping its method: credentials never go to another host, a record is not
// written elsewhere, and a write is not turned into a read (a 302 after a POST).
func checkRedirect(req *http.Request, via []*http.Request) error {
	first := via[0].URL
	if !strings.EqualFold(req.URL.Host, first.Host) || req.URL.Scheme != first.Scheme {
		return &redirectError{fmt.Sprintf("refused a redirect to another host (%s); redirects are followed only within %s://%s", origin(req.URL), first.Scheme, first.Host)}
	}
	if req.Method != via[0].Method {
		return &redirectError{fmt.Sprintf("refused a redirect that turns %s into %s", via[0].Method, req.Method)}
	}
	if len(via) > maxRedirects {
		return &redirectError{fmt.Sprintf("stopped after %d redirects", maxRedirects)}
	}
	return nil
}

// origin is scheme://host of a URL.
func origin(u *url.URL) string { return u.Scheme + "://" + u.Host }

// call is one logical request, tried up to retry.attempts times.
type call struct {
	what   string // "squarespace Sesamproducts", for messages
	method string
	url    *url.URL
	body   []byte      // nil: no body
	header http.Header // headers of this request (the idempotency key)
	// repeatable: sending the request again cannot do its work twice: reads, updates (a patch
	// sets values), deletes, creates with an idempotency key. A create without a key is tried
	// again only when the server surely did not act on it.
	repeatable bool
	// anonymous: sent without the authenticator's credentials (the login request itself).
	anonymous bool
	// probe: a request that changes nothing whatever its method (auth.check), sent in a dry
	// run too.
	probe bool
}

// op names the request for messages: the system, entity, method and URL without the query.
func (cl *call) op() string {
	u := *cl.url
	u.RawQuery, u.ForceQuery, u.Fragment, u.User = "", false, "", nil
	return cl.what + ": " + cl.method + " " + u.String()
}

// response is a response read whole.
type response struct {
	status int
	header http.Header
	body   []byte
	url    *url.URL // the URL that answered, after redirects
}

// do sends the request, trying again after failures that may pass (retry.go), and returns
// the 2xx response or the failure as a *requestError. A 401 or 403 to credentials obtained
// during the run (a login, OAuth2) has them renewed and the request sent again, once.
func (c *client) do(ctx context.Context, cl *call) (*response, error) {
	if c.readOnly && cl.method != http.MethodGet && !cl.anonymous && !cl.probe {
		return nil, fmt.Errorf("%s: a read-only connection (a dry run) does not write", cl.op())
	}
	// Requests and the waits between them end at an interrupt, also inside a batch that is
	// being finished (connector.Finishing): a Retry-After of a minute must not hold off SIGINT.
	ctx, stop := connector.Interruptible(ctx)
	defer stop()
	start := c.now()
	var waited time.Duration
	renewed := false
	for attempt := 1; ; attempt++ {
		var cred credential
		if c.auth != nil && !cl.anonymous {
			var err error
			if cred, err = c.auth.current(ctx); err != nil {
				return nil, fmt.Errorf("%s: %w", cl.op(), err)
			}
		}
		resp, f := c.try(ctx, cl, cred)
		if f == nil {
			return resp, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", cl.op(), err)
		}
		f.op, f.attempts, f.elapsed = cl.op(), attempt, c.now().Sub(start)
		if (f.status == http.StatusUnauthorized || f.status == http.StatusForbidden) && c.auth != nil && !cl.anonymous && !renewed {
			renewed = true
			again, err := c.auth.renew(ctx, cred.gen)
			if err != nil {
				return nil, fmt.Errorf("%s: %s, and renewing the credentials failed: %w", cl.op(), f.problem, err)
			}
			if again {
				attempt--
				continue
			}
		}
		if !f.retriable || c.s.retryFor == 0 && attempt >= c.s.attempts || attempt >= maxTries {
			return nil, f
		}
		wait, stop := c.backoff(attempt, f.retryAfter, waited, f.elapsed)
		if stop != "" {
			f.note = stop
			return nil, f
		}
		if err := c.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("%s: %w", cl.op(), err)
		}
		waited += wait
	}
}

// maxTries bounds the tries of a request whose retries are bounded by time (retry.retry_for).
const maxTries = 10_000

// try sends the request once, with the credentials cred.
func (c *client) try(ctx context.Context, cl *call, cred credential) (*response, *requestError) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, &requestError{problem: ctx.Err().Error(), cause: ctx.Err()}
	}
	defer func() { <-c.sem }()
	if c.budget != nil {
		if err := c.budget.wait(ctx, c.now, c.sleep); err != nil {
			return nil, &requestError{problem: err.Error(), cause: ctx.Err()}
		}
	}
	actx, cancel := context.WithTimeout(ctx, c.s.timeout)
	defer cancel()
	var wrote atomic.Bool
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) },
	})
	var body io.Reader = http.NoBody
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	u := cl.url
	if len(cred.query) > 0 {
		withKey := *cl.url
		q := withKey.Query()
		for k, vs := range cred.query {
			q[k] = vs
		}
		withKey.RawQuery = q.Encode()
		u = &withKey
	}
	req, err := http.NewRequestWithContext(actx, cl.method, u.String(), body)
	if err != nil {
		return nil, &requestError{problem: c.red.text(err.Error())}
	}
	for k, vs := range c.s.header {
		req.Header[k] = vs
	}
	for k, vs := range cred.header {
		req.Header[k] = vs
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	if cl.body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range cl.header {
		req.Header[k] = vs
	}
	c.sent.Add(1)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportFailure(ctx, actx, err, cl.repeatable || !wrote.Load(), "")
	}
	defer resp.Body.Close()
	if c.budget != nil {
		c.budget.observe(resp.StatusCode, resp.Header, c.now())
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		// The server answered: it acted on the request, so only a repeatable one is sent again.
		return nil, c.transportFailure(ctx, actx, err, cl.repeatable, fmt.Sprintf("the %d response broke off after %d bytes: ", resp.StatusCode, len(data)))
	}
	if int64(len(data)) > c.maxBody {
		return nil, &requestError{problem: fmt.Sprintf("the response is larger than %s", size(c.maxBody))}
	}
	r := &response{status: resp.StatusCode, header: resp.Header, body: data, url: resp.Request.URL}
	if r.status >= 200 && r.status < 300 {
		return r, nil
	}
	return r, c.statusFailure(cl, r)
}

// decode parses a JSON response; its errors name the request and show how the body starts.
func (c *client) decode(cl *call, r *response) (any, error) {
	v, err := decodeJSON(r.body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (%s)", cl.op(), err, excerpt(r.body, c.red))
	}
	return v, nil
}

func size(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// transportFailure describes a request that got no (whole) response. canRetry tells whether
// sending it again is safe.
func (c *client) transportFailure(ctx, actx context.Context, err error, canRetry bool, prefix string) *requestError {
	f := &requestError{retriable: canRetry, retryAfter: -1} // no Retry-After: back off
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its message repeats the URL with its query
	}
	var re *redirectError
	var cve *tls.CertificateVerificationError
	var rhe tls.RecordHeaderError
	var dns *net.DNSError
	switch {
	case ctx.Err() != nil:
		f.problem, f.cause, f.retriable = ctx.Err().Error(), ctx.Err(), false
	case errors.As(err, &re):
		f.problem, f.retriable = re.msg, false
	case errors.Is(actx.Err(), context.DeadlineExceeded):
		f.problem = fmt.Sprintf("no response within %s (timeout)", c.s.timeout)
	case errors.As(err, &cve):
		f.problem, f.retriable = "the server's TLS certificate is not trusted: "+cve.Err.Error(), false
		f.note = "TLS verification is always on; for a private CA set ca_file"
	case errors.As(err, &rhe):
		f.problem, f.retriable = "the server does not speak TLS (is base_url http://?)", false
	case errors.As(err, &dns) && dns.IsNotFound:
		f.problem, f.retriable = "no such host "+dns.Name, false
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		f.problem = "the server closed the connection without a whole response"
	case errors.Is(err, syscall.ECONNRESET):
		f.problem = "the connection was reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		f.problem = "connection refused"
	default:
		f.problem = err.Error()
	}
	f.problem = prefix + f.problem
	if !canRetry && f.cause == nil && f.note == "" && !errors.As(err, &re) {
		f.note = "not sent again: the server may have done the create, and without an idempotency key a second one could duplicate it; the next run finds the record"
	}
	return f
}

// statusFailure describes a response with a status other than 2xx.
func (c *client) statusFailure(cl *call, r *response) *requestError {
	f := &requestError{status: r.status, problem: statusText(r.status), message: serverMessage(r.body, c.red, c.s.errorExpr), retryAfter: -1}
	switch code := r.status; {
	case code == http.StatusRequestTimeout, code == http.StatusConflict, code == http.StatusTooEarly,
		code == http.StatusTooManyRequests, code == http.StatusServiceUnavailable:
		// The server did not act on the request (or asks to wait): sending it again is safe.
		f.retriable = true
	case code == http.StatusNotImplemented || code == http.StatusHTTPVersionNotSupported:
	case code >= 500:
		f.retriable = cl.repeatable
		if !cl.repeatable {
			f.note = "not sent again: the server may have done the create; the next run finds the record"
		}
	case code >= 400:
		f.perRecord = true
	default:
		f.problem = fmt.Sprintf("unexpected %s", statusText(r.status))
	}
	if f.retriable {
		f.retryAfter = retryAfter(r.header, c.now())
	}
	return f
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return fmt.Sprintf("status %d", code)
}
