package mapping

import (
	"strings"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/schema"
	"github.com/expr-lang/expr"
)

func record() *schema.Property {
	str := &schema.Property{Types: []string{schema.String}}
	return &schema.Property{Types: []string{schema.Object}, Properties: map[string]*schema.Property{
		"name":   str,
		"price":  {Types: []string{schema.Number}},
		"stock":  {Types: []string{schema.Integer, schema.Null}},
		"active": {Types: []string{schema.Boolean}},
		"total":  {Types: []string{schema.Object}, Properties: map[string]*schema.Property{"value": str}},
		"lines":  {Types: []string{schema.Array}, Items: &schema.Property{Types: []string{schema.Object}, Properties: map[string]*schema.Property{"sku": str}}},
	}}
}

func str(v string) config.Str { return config.Str{Value: v, Set: true} }

func TestCompileAndRunHelpers(t *testing.T) {
	env := NewEnv(record())
	for _, tc := range []struct {
		src  string
		rec  map[string]any
		want any
	}{
		{"amount(price)", map[string]any{"price": 8.9}, "8.90"},
		{"amount(stock)", map[string]any{"stock": 18}, "18.00"},
		{"amount(total.value)", map[string]any{"total": map[string]any{"value": "3.456"}}, "3.46"},
		{"decimal(total.value)", map[string]any{"total": map[string]any{"value": "10.50"}}, 10.5},
		{"blank(name)", map[string]any{"name": "  "}, true},
		{"blank(name)", map[string]any{"name": nil}, true},
		{"upper(name)", map[string]any{"name": "kaffe"}, "KAFFE"},
		{"stock ?? 0", map[string]any{"stock": nil}, 0},
		{`{"pending": "PENDING"}[name] ?? "UNKNOWN"`, map[string]any{"name": "x"}, "UNKNOWN"},
		{`repeat(name, 3)`, map[string]any{"name": "ab"}, "ababab"},
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

func TestCompileErrors(t *testing.T) {
	env := NewEnv(record())
	for _, tc := range []struct {
		src  string
		kind exprKind
		want string
	}{
		{"nme", exprKind{key: "to_target"}, `to_target: unknown property "nme"; did you mean "name"?`},
		{"total.valeu", exprKind{key: "to_target"}, `to_target: "total" has no property "valeu"; did you mean "value"?`},
		{"name.first", exprKind{key: "to_target"}, `to_target: "name" has no property "first"`},
		{"lines[0].skuu", exprKind{key: "to_target"}, `to_target: "lines" has no property "skuu"; did you mean "sku"?`},
		{"price + 1", exprKind{key: "when", boolean: true}, "when must be a boolean expression: it gives a number"},
		{"price +", exprKind{key: "to_target"}, "to_target: unexpected end of the expression"},
		{"name", exprKind{key: "to_target", want: schema.Integer}, "to_target gives a string, but the property is an integer"},
		{"price * 2", exprKind{key: "to_target", want: schema.Integer}, "to_target gives a number, but the property is an integer"},
		{"amount(active)", exprKind{key: "to_target"}, "to_target: amount takes a number, an integer or a numeric string, not a boolean"},
		{"upper(stock)", exprKind{key: "to_target"}, "to_target: upper takes a string here, not an integer"},
		{"stock + name", exprKind{key: "to_target"}, "to_target: cannot apply + to an integer and a string"},
		{"int(active)", exprKind{key: "to_target"}, "to_target: int cannot take a boolean"},
		{"len(stock)", exprKind{key: "to_target"}, "to_target: len cannot take an integer"},
		{"name[5]", exprKind{key: "to_target"}, "to_target: a string cannot be indexed by an integer"},
		{"filter(lines, 1)", exprKind{key: "to_target"}, "to_target: the condition must give a boolean, not an integer"},
		{"5 % 0", exprKind{key: "to_target"}, "to_target: an integer is divided by 0"},
		{"foo(name)", exprKind{key: "to_target"}, "to_target: unknown function foo"},
		{"uper(name)", exprKind{key: "to_target"}, `to_target: unknown function uper; did you mean "upper"?`},
		{"name | lowr()", exprKind{key: "to_target"}, `to_target: unknown function lowr; did you mean "lower"?`},
		{"amont(price)", exprKind{key: "to_target"}, `to_target: unknown function amont; did you mean "amount"?`},
		{"  ", exprKind{key: "to_target"}, "to_target must not be blank"},
		{strings.Repeat("1+", MaxExprNodes) + "1", exprKind{key: "to_target"}, "to_target: the expression is too long: it has more than 1000 parts (names, values, operators)"},
	} {
		var ds diag.Diagnostics
		compileExpr(str(tc.src), env, tc.kind, &ds)
		if len(ds) == 0 || ds[0].Summary != tc.want {
			t.Errorf("%q: got %v, want %q", tc.src, ds, tc.want)
		}
	}
	// repeat is bounded before it allocates; expressions that would allocate without end stop
	// at the evaluation's budget, with an error for the record, in bounded time.
	for _, src := range []string{
		"repeat(repeat(name, 1000000), 1000000)",
		"string(map(1..100000000, #))",
		"string(reduce(1..10000000, #acc + name, ''))",
		"join(map(1..100000000, name), ',')",
		"string(filter(1..1000000000, # > 0))",
	} {
		var ds diag.Diagnostics
		prog := compileExpr(str(src), env, exprKind{key: "to_target"}, &ds)
		if prog == nil {
			t.Errorf("%q does not compile: %v", src, ds)
			continue
		}
		start := time.Now()
		_, err := run(nil, prog, map[string]any{"name": "abc"})
		if want := "the expression builds more than 32 MiB of strings, lists and maps (the budget of one evaluation)"; err == nil || err.Error() != want {
			t.Errorf("%q: got %v, want %s", src, err, want)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("%q took %v", src, d) // a bound against hangs, not a performance check
		}
	}
	// Let variables are not record properties.
	var ds diag.Diagnostics
	compileExpr(str("let t = total; t.value"), env, exprKind{key: "to_target"}, &ds)
	if len(ds) > 0 {
		t.Errorf("let: %v", ds)
	}
}
