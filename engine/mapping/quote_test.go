package mapping

import (
	"testing"

	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/expr-lang/expr"
)

// TestQuoteHelpers: each helper keeps a value with quotes, backslashes and control characters
// one literal of its syntax, so that it cannot end the literal and change the filter.
func TestQuoteHelpers(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`quote("ann@example.com")`, `"ann@example.com"`},
		{`quote("x\" || email != \"")`, `"x\" || email != \""`},
		{`quote("back\\slash")`, `"back\\slash"`},
		{`quote("line\nbreak\t\u0001")`, `"line\nbreak\t\u0001"`},
		{`quote("Zoë")`, `"Zoë"`},
		{`quote(18)`, `"18"`},
		{`quote(1.5)`, `"1.5"`},
		{`quote(true)`, `"true"`},
		{`sqlQuote("O'Brien")`, `'O''Brien'`},
		{`sqlQuote("''")`, `''''''`},
		{`queryEscape("a b&c=d/é")`, `a+b%26c%3Dd%2F%C3%A9`},
		{`'email=' + quote("a\"b")`, `email="a\"b"`},
	} {
		prog, err := expr.Compile(tc.src, QuoteFunctions()...)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		got, err := expr.Run(prog, nil)
		if err != nil || got != tc.want {
			t.Errorf("%s = %v, %v; want %s", tc.src, got, err, tc.want)
		}
	}
	prog, err := expr.Compile(`quote(x)`, append(QuoteFunctions(), expr.Env(map[string]any{"x": nil}))...)
	if err != nil {
		t.Fatal(err)
	}
	_, err = expr.Run(prog, map[string]any{"x": nil})
	if err == nil || err.Error() != "quote: the value is null; compare with null in the filter itself, or use ?? to give a default (1:1)\n | quote(x)\n | ^" {
		t.Errorf("null: %q", err)
	}
}

// TestQuoteInMappingExpressions: the helpers are there in a mapping's expressions, typed and
// budgeted like the others.
func TestQuoteInMappingExpressions(t *testing.T) {
	env := NewEnv(record())
	for _, tc := range []struct {
		src  string
		rec  map[string]any
		want any
	}{
		{`"name eq " + sqlQuote(name)`, map[string]any{"name": "O'Brien"}, `name eq 'O''Brien'`},
		{`quote(price)`, map[string]any{"price": 8.5}, `"8.5"`},
		{`queryEscape(name)`, map[string]any{"name": "a&b"}, `a%26b`},
	} {
		var ds diag.Diagnostics
		prog := compileExpr(str(tc.src), env, exprKind{key: "to_target"}, &ds)
		if len(ds) > 0 {
			t.Errorf("%s: %v", tc.src, ds)
			continue
		}
		got, err := expr.Run(prog, tc.rec)
		if err != nil || got != tc.want {
			t.Errorf("%s = %#v, %v; want %#v", tc.src, got, err, tc.want)
		}
	}
}
