package httpconn

// Retries: a request that failed in a way that may pass (a 5xx, a 429, a timeout, a reset
// connection) is sent again after an exponential backoff with full jitter (a random wait
// between 0 and base_delay·2^(try-1)), or after the wait the server asks for in Retry-After
// (seconds or an HTTP date). The waits of one request add up to at most retry.max_wait: a
// Retry-After beyond what is left stops the retries at once instead of hammering the server.

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// requestError is a request that failed.
type requestError struct {
	op       string // "squarespace Sesamproducts: GET https://api.squarespace.com/v2/commerce/products"
	status   int    // the HTTP status, 0 when there was no response
	problem  string // "503 Service Unavailable", "the connection was reset"
	message  string // the server's message
	note     string // why the retries stopped early, or were not made
	attempts int
	elapsed  time.Duration
	// retriable: sending the request again may succeed. perRecord: the server refused this
	// record (a 4xx); the other records of the batch go on.
	retriable, perRecord bool
	retryAfter           time.Duration // -1: no Retry-After
	cause                error         // the context's error when the run was cancelled
}

func (e *requestError) Error() string {
	var b strings.Builder
	if e.op != "" {
		b.WriteString(e.op + ": ")
	}
	b.WriteString(e.problem)
	if e.attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts over %s", e.attempts, roundDuration(e.elapsed))
	}
	if e.note != "" {
		b.WriteString(" (" + e.note + ")")
	}
	if e.message != "" {
		b.WriteString(": " + e.message)
	}
	return b.String()
}

func (e *requestError) Unwrap() error { return e.cause }

// roundDuration rounds a duration for messages: 1m2s, 1.5s, 120ms.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// statusOf returns the HTTP status of a failed request, 0 when it had no response.
func statusOf(err error) int {
	var re *requestError
	if errors.As(err, &re) {
		return re.status
	}
	return 0
}

// perRecord reports whether err is the server refusing one record (a 4xx other than 408, 409,
// 425 and 429): that record fails and the batch goes on.
func perRecord(err error) bool {
	var re *requestError
	return errors.As(err, &re) && re.perRecord
}

// refusedValues reports whether err is a read the server refused for the values it carries (a
// find's search terms, a get's ids): a 4xx other than those that say the request itself is
// wrong whatever its values (401, 403, 405, 406, 407: credentials, method or headers; 404 and
// 410: the collection's path) or that may pass (408, 409, 425, 429: retried, then the
// batch's). One CRM email holding a `"` made a find fail with 400 and failed the whole flow.
func refusedValues(err error) bool {
	var re *requestError
	if !errors.As(err, &re) || re.status < 400 || re.status > 499 {
		return false
	}
	switch re.status {
	case 401, 403, 404, 405, 406, 407, 408, 409, 410, 425, 429, 431:
		return false
	}
	return true
}

// maxAlone bounds the keys of a refused read that are asked for again one at a time to find
// the one the server refuses: beyond it, every key of the read is reported.
const maxAlone = 25

// backoff returns the wait before try attempt+1, given the waits so far, or why the retries
// stop: a Retry-After beyond retry.max_wait, or the budget spent.
func (c *client) backoff(attempt int, retryAfter, waited, elapsed time.Duration) (time.Duration, string) {
	if c.s.retryFor > 0 {
		// Bounded by time: tries go on until retry_for has passed since the first.
		left := c.s.retryFor - elapsed
		switch {
		case retryAfter > left:
			return 0, fmt.Sprintf("the server asks to wait %s, more than the %s left of retry.retry_for %s", roundDuration(retryAfter), roundDuration(max(left, 0)), c.s.retryFor)
		case left <= 0:
			return 0, fmt.Sprintf("retry.retry_for %s spent", c.s.retryFor)
		case retryAfter >= 0:
			return retryAfter, ""
		}
		ceiling := c.s.retryFor
		if shift := attempt - 1; shift < 40 && c.s.baseDelay <= ceiling>>shift {
			ceiling = c.s.baseDelay << shift
		}
		return min(c.jitter(min(ceiling, maxBackoff)), left), ""
	}
	left := c.s.maxWait - waited
	if retryAfter >= 0 {
		if retryAfter > left {
			return 0, fmt.Sprintf("the server asks to wait %s, more than the %s left of retry.max_wait %s", roundDuration(retryAfter), roundDuration(max(left, 0)), c.s.maxWait)
		}
		return retryAfter, ""
	}
	if left <= 0 {
		return 0, fmt.Sprintf("retry.max_wait %s spent", c.s.maxWait)
	}
	ceiling := c.s.maxWait // base_delay·2^(attempt-1), without overflowing
	if shift := attempt - 1; shift < 40 && c.s.baseDelay <= ceiling>>shift {
		ceiling = c.s.baseDelay << shift
	}
	return min(c.jitter(ceiling), left), ""
}

// maxBackoff bounds one wait of retries bounded by retry.retry_for, so that a long retry_for
// does not make the waits long too.
const maxBackoff = 30 * time.Second

// maxRetryAfter bounds a Retry-After in seconds before it becomes a duration.
const maxRetryAfter = 7 * 24 * 3600

// retryAfter reads the Retry-After header: seconds, or an HTTP date. -1 when there is none.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return -1
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return -1
		}
		return time.Duration(min(secs, maxRetryAfter)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return min(d, maxRetryAfter*time.Second)
	}
	return -1
}

// maxMessage bounds the server's message in an error.
const maxMessage = 500

// serverMessage is what the server said about a failure (errorMessage), else its text,
// redacted and then truncated to 500 bytes (so that no part of an echoed secret shows).
func serverMessage(body []byte, red *redactor, custom *respProgram) string {
	var msg string
	if v, err := decodeJSON(body); err == nil {
		msg = errorMessage(v, custom)
	}
	if msg == "" {
		msg = string(body[:min(len(body), maxRedacted)])
	}
	msg = red.text(msg)
	msg = strings.ToValidUTF8(msg, "?")
	msg = strings.Join(strings.Fields(msg), " ")
	if len(msg) > maxMessage {
		cut := maxMessage
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "..."
	}
	return msg
}

// errorMessage is the message of an error body with the fields it names: the system's error
// expression when it gives text (or a list of texts), else the common shapes: a message
// (message, error, detail, error.message, errors[0].message, error_description, title) and
// field details, "field: message", from PocketBase's data.<field>.message, a list of errors
// with a field (errors[].field/path/name/source.pointer and message/detail), RFC 7807's
// errors[] and invalid-params[], and an object of errors by field ({"errors": {"email":
// ["is taken"]}}).
func errorMessage(v any, custom *respProgram) string {
	if custom != nil {
		if out, err := custom.run(v); err == nil {
			if s := textOf(out); s != "" {
				return s
			}
		}
	}
	msg := messageIn(v)
	fields := fieldErrors(v)
	switch {
	case len(fields) == 0:
		return msg
	case msg == "" || slices.ContainsFunc(fields, func(f string) bool { return f == msg || strings.HasSuffix(f, ": "+msg) }):
		// The message is one of the fields' (errors[0].message): the fields say it all.
		return strings.Join(fields, "; ")
	}
	return msg + " (" + strings.Join(fields, "; ") + ")"
}

// textOf is the text of an error expression's result: a string, or strings joined with "; ".
func textOf(v any) string {
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x)
	case []any:
		var parts []string
		for _, e := range x {
			if s := textOf(e); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, "; ")
	}
	return ""
}

func messageIn(v any) string {
	for _, path := range []string{"message", "error", "detail", "error.message", "errors.0.message", "errors.0", "error_description", "title"} {
		if s, ok := at(v, path); ok {
			if text, ok := s.(string); ok && strings.TrimSpace(text) != "" {
				return text
			}
		}
	}
	return ""
}

// maxFields bounds the field details of one message.
const maxFields = 10

// fieldErrors lists "field: message" for each field an error body names, in its order (objects
// by key).
func fieldErrors(v any) []string {
	var out []string
	add := func(field string, msg any) {
		text := fieldText(msg)
		if field == "" || text == "" || len(out) >= maxFields {
			return
		}
		out = append(out, field+": "+text)
	}
	byField := func(m map[string]any) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			add(k, m[k])
		}
	}
	// PocketBase: {"data": {"company": {"code": "...", "message": "..."}}, "message": ...}
	if d, ok := at(v, "data"); ok {
		if m, ok := d.(map[string]any); ok && allFieldErrors(m) {
			byField(m)
		}
	}
	for _, key := range []string{"errors", "invalid-params", "invalid_params", "error.errors", "error.details", "details", "fieldErrors", "field_errors"} {
		e, ok := at(v, key)
		if !ok {
			continue
		}
		switch x := e.(type) {
		case []any:
			for _, item := range x {
				m, ok := item.(map[string]any)
				if !ok {
					continue
				}
				field := ""
				for _, k := range []string{"field", "path", "name", "param", "property", "source.pointer", "source.parameter", "loc"} {
					if f, ok := at(m, k); ok {
						if field = fieldName(f); field != "" {
							break
						}
					}
				}
				for _, k := range []string{"message", "reason", "detail", "msg", "description", "title"} {
					if msg, ok := m[k]; ok && fieldText(msg) != "" {
						add(field, msg)
						break
					}
				}
			}
		case map[string]any:
			byField(x)
		}
	}
	return out
}

// allFieldErrors reports whether every value of m is an error of a field: an object with a
// message (PocketBase's data), so that a data object of records is not read as errors.
func allFieldErrors(m map[string]any) bool {
	if len(m) == 0 {
		return false
	}
	for _, v := range m {
		o, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if _, ok := o["message"].(string); !ok {
			return false
		}
	}
	return true
}

// fieldName is the text of a field reference: a name, a JSON pointer (/data/attributes/email
// is email), or a list of path parts (FastAPI's loc: ["body", "email"]).
func fieldName(v any) string {
	switch x := v.(type) {
	case string:
		if strings.HasPrefix(x, "/") {
			parts := strings.Split(x, "/")
			return parts[len(parts)-1]
		}
		return x
	case []any:
		var parts []string
		for _, p := range x {
			if s, err := scalarText(p); err == nil && s != "body" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, ".")
	}
	return ""
}

// fieldText is the message of a field's error: text, an object's message, or a list of them.
func fieldText(v any) string {
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x)
	case map[string]any:
		for _, k := range []string{"message", "msg", "reason", "detail"} {
			if s, ok := x[k].(string); ok && strings.TrimSpace(s) != "" {
				return strings.TrimSpace(s)
			}
		}
	case []any:
		var parts []string
		for _, e := range x {
			if s := fieldText(e); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, ", ")
	}
	return ""
}
