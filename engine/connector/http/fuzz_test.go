package httpconn

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/stamp"
)

// FuzzResponse feeds arbitrary bodies and headers to what reads responses: JSON, records,
// server messages, Link and Retry-After headers. None may panic; what they return for a
// message never holds the canary secret (nor its first 10 characters, nor its base64) however
// the body carries it; and a number is decoded to the same decimal as its text.
//
//	go test ./engine/connector/http/ -run XXX -fuzz FuzzResponse -fuzztime 3000x
func FuzzResponse(f *testing.F) {
	const canary = "CanaryFuzzSecret42"
	for _, s := range []string{`{"items": [{"id": 1}], "next": "c"}`, `[1, {"id": null}]`, `{"error": {"message": "x"}}`,
		`{"errors": ["a"]}`, `1e400`, `{"a": `, "\xff\xfe", `<https://x/y?p=2>; rel="next last", <a,b>; rel=next`,
		`Wed, 21 Oct 2015 07:28:00 GMT`, `-5`, `99999999999999999999`, `10000000000000000001`, `0.30000000000000000001`,
		`{"message": "bad token CanaryFuzzSecret42"}`, `{"message": "bad token Canary\u0046uzzSecret42"}`,
		`{"error": "token canaryfuzzsecret42 expired"}`, `CANARYFUZZSECRET42`, `{"detail": "CanaryFuzz..."}`,
		`{"message": "Q2FuYXJ5RnV6elNlY3JldDQy"}`, `dG9rZW49Q2FuYXJ5RnV6elNlY3JldDQy`, strings.Repeat("x", 490) + canary,
		`{"data":[],"next_cursor":"2"}`} {
		f.Add([]byte(s), s, "items")
	}
	red := newRedactor([]string{canary}, [][2]string{{"u", "p"}})
	forms := []string{canary, canary[:10], strings.ToLower(canary[:10]), strings.ToUpper(canary[:10]),
		base64.StdEncoding.EncodeToString([]byte(canary)), base64.RawURLEncoding.EncodeToString([]byte(canary))}
	f.Fuzz(func(t *testing.T, body []byte, header, path string) {
		var outs []string
		v, err := decodeJSON(body)
		if err == nil {
			records(v, path)
			at(v, path)
			id := idText(v)
			if isNumber(v) {
				// The id of a number is the same decimal as its text; a json.Number's is the text.
				text := string(bytes.TrimSpace(body))
				_, isJSONNumber := v.(json.Number)
				if c, err := stamp.Compare(id, text); isJSONNumber && id != text || err == nil && c != 0 {
					t.Errorf("the number %s (%T) reads as %s", text, v, id)
				}
			}
		} else {
			outs = append(outs, red.err(fmt.Errorf("GET /x: %w (%s)", err, excerpt(body, red))).Error())
		}
		outs = append(outs, excerpt(body, red))
		m := serverMessage(body, red, nil)
		if len(m) > maxMessage+3 {
			t.Errorf("message of %d bytes", len(m))
		}
		outs = append(outs, m)
		for _, out := range outs {
			for _, form := range forms {
				if strings.Contains(out, form) {
					t.Errorf("%q of the secret in %q", form, out)
				}
			}
		}
		h := http.Header{"Link": {header}, "Retry-After": {header}}
		nextLink(&response{header: h, url: &url.URL{Scheme: "https", Host: "x"}})
		if d := retryAfter(h, time.Now()); d > maxRetryAfter*time.Second {
			t.Errorf("Retry-After %v", d)
		}
	})
}

func isNumber(v any) bool {
	switch v.(type) {
	case int64, float64, json.Number:
		return true
	}
	return false
}

// FuzzTemplate compiles arbitrary path templates and expands them with arbitrary values. None
// may panic, and a problem is a diagnostic inside the value.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"/items/{id}", "/a/{{b}}/{join(ids, \",\")}?q={id}", "/{", "/}", "/{\"}\"}", "/{{", "/{'", "/{`a`}", "/{ {\"a\": 1}.a }", "/é/{id + \"ü\"}"} {
		f.Add(s, "a/b?c")
	}
	f.Fuzz(func(t *testing.T, tmpl, id string) {
		n := &config.Node{Kind: config.Scalar, Tag: "!!str", Value: tmpl}
		var ds diag.Diagnostics
		c := &compiler{ds: &ds}
		tp := c.compileTemplate(n, "get.path", getScope(1))
		if tp == nil {
			if len(ds) == 0 {
				t.Errorf("%q: refused without a diagnostic", tmpl)
			}
			return
		}
		out, err := tp.expand(map[string]any{nameID: id, nameIDs: []any{id, id}, nameNow: "now"})
		if err == nil && strings.Contains(out, "/"+id+"/") && strings.Contains(id, "/") {
			t.Errorf("%q: the id %q was not escaped: %s", tmpl, id, out)
		}
	})
}
