package mapping

import (
	"fmt"
	"runtime"
	"runtime/metrics"
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
	// The hostile cases of the budget and of the nesting limit.
	for _, seed := range append(hostileExprs,
		strings.Repeat("(", 100000)+"1"+strings.Repeat(")", 100000), strings.Repeat("-", 100000)+"1",
		strings.Repeat("[", 300)+strings.Repeat("]", 300), strings.Repeat("!", 300)+"active",
		"price / 0", "0 / 0 * price", "[1, price / 0]", `{"a": -price / 0}`, `int("abc")`, `foo(name)`,
	) {
		f.Add(seed, false)
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
			// The budget's rewrite must not refuse what expr-lang accepts: only dataflow's own
			// checks (members, nesting) refuse more.
			if msg := fmt.Sprint(ds); len(src) < 10000 && !strings.Contains(msg, "has no property") && !strings.Contains(msg, "levels deep") {
				opts := append(functions(), expr.Env(env.vars), expr.MaxNodes(MaxExprNodes))
				if boolean {
					opts = append(opts, expr.AsBool())
				}
				if _, err := expr.Compile(src, opts...); err == nil {
					t.Errorf("%q compiles with expr-lang alone, but not with the budget: %v", src, ds)
				}
			}
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

// exprGen builds an expression from fuzz bytes: each byte picks the next production, so that
// the fuzzer combines the builtins that build strings, lists and maps with loops and big counts.
type exprGen struct {
	data []byte
	pos  int
}

func (g *exprGen) next() int {
	if g.pos >= len(g.data) {
		return 0
	}
	g.pos++
	return int(g.data[g.pos-1])
}

var genCounts = []string{"0", "1", "2", "3", "10", "1000", "100000", "1000000", "3000000"}

func (g *exprGen) count() string { return genCounts[g.next()%len(genCounts)] }

// str gives a string expression; inLoop says whether # is an element.
func (g *exprGen) str(depth int, inLoop bool) string {
	if depth > 6 {
		return `name`
	}
	d := depth + 1
	switch g.next() % 17 {
	case 0:
		return `"x"`
	case 1:
		return g.str(d, inLoop) + " + " + g.str(d, inLoop)
	case 2:
		return "repeat(" + g.str(d, inLoop) + ", " + g.count() + ")"
	case 3:
		return "join(" + g.list(d, inLoop) + ", " + g.str(d, inLoop) + ")"
	case 4:
		return "upper(" + g.str(d, inLoop) + ")"
	case 5:
		return "replace(" + g.str(d, inLoop) + ", " + g.str(d, inLoop) + ", " + g.str(d, inLoop) + ")"
	case 6:
		return "string(" + g.list(d, inLoop) + ")"
	case 7:
		return "toJSON(" + g.list(d, inLoop) + ")"
	case 8:
		return "toBase64(" + g.str(d, inLoop) + ")"
	case 9:
		return "reduce(" + g.list(d, inLoop) + ", #acc + " + g.str(d, true) + `, "")`
	case 10:
		if inLoop {
			return "string(#)"
		}
		return "name"
	case 11:
		return "lower(trim(" + g.str(d, inLoop) + "))"
	case 12:
		return "(let s = " + g.str(d, inLoop) + "; s + s)"
	case 13:
		return "string(fromJSON(toJSON(" + g.list(d, inLoop) + ")))"
	case 14:
		return "now().Format(" + g.str(d, inLoop) + ")"
	case 15:
		// Reading long values on every turn of a loop.
		s := g.str(d, inLoop)
		return "string(count(" + g.list(d, inLoop) + ", indexOf(" + s + `, "y") >= 0 || ` + s + " == " + s + " || " + s + ` contains "x"))`
	}
	return "name"
}

// list gives a list expression.
func (g *exprGen) list(depth int, inLoop bool) string {
	if depth > 6 {
		return "[name]"
	}
	d := depth + 1
	switch g.next() % 14 {
	case 0:
		return "1.." + g.count()
	case 1:
		return "map(" + g.list(d, inLoop) + ", " + g.str(d, true) + ")"
	case 2:
		return "filter(" + g.list(d, inLoop) + ", true)"
	case 3:
		return "concat(" + g.list(d, inLoop) + ", " + g.list(d, inLoop) + ")"
	case 4:
		return "flatten([" + g.list(d, inLoop) + ", " + g.list(d, inLoop) + "])"
	case 5:
		return "split(" + g.str(d, inLoop) + ", " + g.str(d, inLoop) + ")"
	case 6:
		return "[" + g.str(d, inLoop) + ", " + g.str(d, inLoop) + "]"
	case 7:
		return "reverse(" + g.list(d, inLoop) + ")"
	case 8:
		return "map(" + g.list(d, inLoop) + ", " + g.list(d, true) + ")"
	case 9:
		return "keys(groupBy(" + g.list(d, inLoop) + ", #))"
	case 10:
		return "toPairs(fromPairs(map(" + g.list(d, inLoop) + ", [string(#), #])))"
	case 11:
		return "(let l = " + g.list(d, inLoop) + "; concat(l, l, l))"
	case 12:
		return "take(" + g.list(d, inLoop) + ", " + g.count() + ")"
	}
	return "lines ?? []"
}

// FuzzExprBudget builds expressions from the builtins that build values and checks that an
// evaluation never allocates more than a constant factor of its budget, never panics, and
// that a failure is either the budget's error or another record error.
func FuzzExprBudget(f *testing.F) {
	for _, seed := range []string{
		"", "\x02\x00\x07", "\x01\x01\x01\x01\x01\x01\x01\x02\x00\x07", "\x03\x01\x00\x07\x02\x00\x07\x00",
		"\x09\x08\x00\x08\x01\x02\x00\x07", "\x06\x03\x00\x05\x00\x00", "\x0c\x0c\x0c\x0c\x0c\x0c\x02\x00\x07",
		"\x07\x0b\x0b\x0b\x0b\x00\x08", "\x05\x02\x00\x06\x00\x02\x00\x07",
	} {
		f.Add([]byte(seed))
	}
	env := NewEnv(record())
	rec := map[string]any{"name": "Kaffe", "lines": []any{map[string]any{"sku": "A"}}}
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &exprGen{data: data}
		src := g.str(0, false)
		if g.next()%2 == 1 {
			src = "len(" + g.list(0, false) + ")"
		}
		var ds diag.Diagnostics
		prog := compileExpr(str(src), env, exprKind{key: "to_target"}, &ds)
		if prog == nil {
			return
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		base := heapObjects()
		done := make(chan error, 1)
		go func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("panic running %q: %v", src, r)
				}
				close(done)
			}()
			_, err := run(nil, prog, rec)
			done <- err
		}()
		// The heap is sampled while the evaluation runs: what it holds at its peak, garbage not
		// yet collected included (the collector lets it grow to twice what is live), must stay within a
		// few budgets.
		peak := base
		deadline := time.After(20 * time.Second)
	wait:
		for {
			select {
			case <-done:
				break wait
			case <-deadline:
				t.Fatalf("running %q did not end", src)
			case <-time.After(200 * time.Microsecond):
				peak = max(peak, heapObjects())
			}
		}
		runtime.ReadMemStats(&after)
		if held := peak - min(base, peak); held > 8*MaxEvalBytes {
			t.Errorf("%s: held %d MiB, more than 8 times the budget", src, held>>20)
		}
		// Allocations that are garbage at once (a call's arguments) are not charged, but they
		// are bounded by the steps.
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16*MaxEvalBytes {
			t.Errorf("%s: allocated %d MiB, more than 16 times the budget", src, alloc>>20)
		}
	})
}

// heapObjects is the memory of the heap's objects, live or not yet swept.
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
