package mapping

import (
	"strings"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

// FuzzExpr compiles arbitrary expressions against a typed record and runs those that compile
// on a record of the declared types and on one of nulls: compiling never panics, a diagnostic
// always has a summary, and running either gives a value or an error, never a panic or a hang.
func FuzzExpr(f *testing.F) {
	for _, seed := range []string{
		"amount(price)", "decimal(total.value)", "blank(name)", "upper(name) + \"-\" + string(stock)",
		"stock ?? 0", "price * 1.25", "active && stock > 0", `{"a": 1}[name] ?? 2`,
		"lines[0].sku", "len(lines)", "filter(lines, .sku != \"\")", "let t = total; t.value",
		"price / 0", "int(name)", "date(name)", "1..1000000", "repeat(name, 1000000)",
		"toJSON(lines)", "fromJSON(name)", "name[1:3]", "total.valeu", ")", "\"unterminated",
		strings.Repeat("(", 500) + "1" + strings.Repeat(")", 500),
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	env := NewEnv(record())
	records := []map[string]any{
		{"name": "Kaffe", "price": 8.9, "stock": 3, "active": true,
			"total": map[string]any{"value": "10.00"}, "lines": []any{map[string]any{"sku": "A"}}},
		{"name": nil, "price": nil, "stock": nil, "active": nil, "total": nil, "lines": nil},
	}
	f.Fuzz(func(t *testing.T, src string, boolean bool) {
		var ds diag.Diagnostics
		prog := compileExpr(str(src), env, exprKind{key: "to_target", boolean: boolean}, &ds)
		for _, d := range ds {
			if d.Summary == "" {
				t.Fatalf("empty summary for %q", src)
			}
		}
		if prog == nil {
			return
		}
		for _, rec := range records {
			runBounded(t, prog, rec)
		}
	})
}

// runBounded evaluates with a time bound: expressions such as 1..1e9 may be slow, but must end.
func runBounded(t *testing.T, prog *vm.Program, rec map[string]any) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("panic running %q: %v", prog.Source().String(), r)
			}
		}()
		expr.Run(prog, rec)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("running %q did not end", prog.Source().String())
	}
}
