package httpconn

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/diag"
)

// FuzzResponse feeds arbitrary bodies and headers to what reads responses: JSON, records,
// server messages, Link and Retry-After headers. None may panic.
//
//	go test ./engine/connector/http/ -run XXX -fuzz FuzzResponse -fuzztime 30s
func FuzzResponse(f *testing.F) {
	for _, s := range []string{`{"items": [{"id": 1}], "next": "c"}`, `[1, {"id": null}]`, `{"error": {"message": "x"}}`,
		`{"errors": ["a"]}`, `1e400`, `{"a": `, "\xff\xfe", `<https://x/y?p=2>; rel="next last", <a,b>; rel=next`,
		`Wed, 21 Oct 2015 07:28:00 GMT`, `-5`, `99999999999999999999`} {
		f.Add([]byte(s), s, "items")
	}
	red := newRedactor([]string{"secret"}, [][2]string{{"u", "p"}})
	f.Fuzz(func(t *testing.T, body []byte, header, path string) {
		v, err := decodeJSON(body)
		if err == nil {
			records(v, path)
			at(v, path)
			idText(v)
		}
		excerpt(body, red)
		if m := serverMessage(body, red); len(m) > maxMessage+3 {
			t.Errorf("message of %d bytes", len(m))
		}
		h := http.Header{"Link": {header}, "Retry-After": {header}}
		nextLink(&response{header: h, url: &url.URL{Scheme: "https", Host: "x"}})
		if d := retryAfter(h, time.Now()); d > maxRetryAfter*time.Second {
			t.Errorf("Retry-After %v", d)
		}
	})
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
