package httpconn

// Rate budgets: rate_limit {requests: 20, per: 2s} spreads a system's requests evenly (a token
// bucket of golang.org/x/time/rate with a burst of one, so that no window of `per` sees more
// than `requests`), shared by every connection the driver opens to the system, so that the
// flows of a run, and the jobs of dataflow serve, spend one budget. The budget also pauses
// every request to the system when a response says the server's own budget is spent:
// X-RateLimit-Remaining or RateLimit-Remaining 0 until its Reset, the RateLimit header's
// remaining=0 and reset=, and a Retry-After on a 429 or 503.

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// rateSettings are rate_limit's.
type rateSettings struct {
	requests int
	per      time.Duration
}

func (r rateSettings) String() string { return fmt.Sprintf("%d/%s", r.requests, r.per) }

// budget is the request budget of one system.
type budget struct {
	lim *rate.Limiter // nil: no rate_limit

	mu          sync.Mutex
	pausedUntil time.Time
}

func newBudget(r rateSettings) *budget {
	b := &budget{}
	if r.requests > 0 && r.per > 0 {
		b.lim = rate.NewLimiter(rate.Every(r.per/time.Duration(r.requests)), 1)
	}
	return b
}

// budgets holds the budget of each system a driver opened, by system and rate_limit, so that a
// system file whose rate_limit changes (a reload of dataflow serve) gets a budget of its own.
type budgets struct {
	mu sync.Mutex
	m  map[string]*budget
}

func (bs *budgets) of(system string, r rateSettings) *budget {
	if bs == nil {
		return newBudget(r)
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	key := system + "\x00" + r.String()
	if b := bs.m[key]; b != nil {
		return b
	}
	if bs.m == nil {
		bs.m = map[string]*budget{}
	}
	b := newBudget(r)
	bs.m[key] = b
	return b
}

// wait waits for the system's next request: past a pause the server asked for, then for the
// rate limit's next slot.
func (b *budget) wait(ctx context.Context, now func() time.Time, sleep func(context.Context, time.Duration) error) error {
	b.mu.Lock()
	until := b.pausedUntil
	b.mu.Unlock()
	if d := until.Sub(now()); d > 0 {
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
	if b.lim != nil {
		return b.lim.Wait(ctx)
	}
	return nil
}

// maxPause bounds a pause a response asks for: a header that says a day is more likely wrong
// than meant, and the request's retries are bounded on their own.
const maxPause = 10 * time.Minute

// observe reads what a response says of the server's budget.
func (b *budget) observe(status int, h http.Header, now time.Time) {
	var until time.Time
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		if d := retryAfter(h, now); d > 0 {
			until = now.Add(min(d, maxPause))
		}
	}
	for _, prefix := range []string{"X-RateLimit-", "RateLimit-"} {
		if rem := strings.TrimSpace(h.Get(prefix + "Remaining")); rem == "0" {
			if d, ok := resetIn(h.Get(prefix+"Reset"), now); ok {
				until = later(until, now.Add(min(d, maxPause)))
			}
		}
	}
	if v := h.Get("RateLimit"); v != "" {
		// draft-ietf-httpapi-ratelimit-headers: RateLimit: limit=100, remaining=0, reset=5
		params := map[string]string{}
		for _, p := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ';' }) {
			if k, val, ok := strings.Cut(strings.TrimSpace(p), "="); ok {
				params[strings.ToLower(k)] = strings.Trim(val, `"`)
			}
		}
		if params["remaining"] == "0" {
			if d, ok := resetIn(params["reset"], now); ok {
				until = later(until, now.Add(min(d, maxPause)))
			}
		}
	}
	if until.IsZero() {
		return
	}
	b.mu.Lock()
	b.pausedUntil = later(b.pausedUntil, until)
	b.mu.Unlock()
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// resetIn reads a reset time: seconds from now, or a Unix time (GitHub's X-RateLimit-Reset).
func resetIn(v string, now time.Time) (time.Duration, bool) {
	n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || n < 0 {
		return 0, false
	}
	if n > 1e9 {
		d := time.Unix(int64(n), 0).Sub(now)
		return max(d, 0), true
	}
	return time.Duration(n * float64(time.Second)), true
}
