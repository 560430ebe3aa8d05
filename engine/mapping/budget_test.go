package mapping

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/diag"
)

// doublings is the expression: a 1 MB string doubled 13 times, 8 GB in the end.
func doublings() string {
	var b strings.Builder
	b.WriteString(`let v0 = repeat("x", 1000000); `)
	for i := 1; i <= 13; i++ {
		b.WriteString("let v" + itoa(i) + " = v" + itoa(i-1) + " + v" + itoa(i-1) + "; ")
	}
	b.WriteString("v13")
	return b.String()
}

// hostileExprs build far more than the budget, each with another operator or builtin.
var hostileExprs = []string{
	doublings(),
	`join(map(1..300, repeat("x", 1000000)), "")`,
	`map(1..8000, repeat("x", 1000000))`,
	`let s = repeat("x", 1000000); join(map(1..300, s), "")`,
	`let s = repeat("x", 1000000); string(map(1..300, s))`,
	`let s = repeat("x", 1000000); toJSON(map(1..300, s))`,
	`let s = repeat("x", 1000000); map(1..300, upper(s))`,
	`let s = repeat("x", 1000000); map(1..300, lower(s) + "")`,
	`let s = repeat("x", 1000); replace(s, "x", repeat("y", 100000))`,
	`let s = repeat("x", 1000000); replace(s, "", s)`,
	`let s = repeat(",", 1000000); map(1..100, split(s, ","))`,
	`let s = repeat("x", 1000000); map(1..100, split(s, ""))`,
	`let s = repeat("x", 1000000); map(1..300, toBase64(s))`,
	`let s = repeat("x", 1000000); reduce(1..300, #acc + s, "")`,
	`let l = 1..1000000; map(1..300, concat(l, l))`,
	`let l = map(1..1000, 1..1000); flatten(map(1..100, l))`,
	`let l = 1..1000000; map(1..300, reverse(l))`,
	`let l = 1..1000000; map(1..300, sort(l))`,
	`let l = 1..100000; map(l, map(l, #))`,
	`let l = 1..100000; sum(l, count(l, true))`,
	`let l = 1..100000; map(l, [#, #, #, #, #, #, #, #, #, #, #, #, #, #, #, #, #, #, #, #, #, #, #, #])`,
	`let l = 1..200000; map(l, ({"a": #, "b": #, "c": #, "d": #, "e": #, "f": #, "g": #, "h": #}))`,
	`let l = 1..3000000; groupBy(l, #)`,
	`1..100000000`,
	`let s = "[" + repeat("0,", 1000000) + "0]"; map(1..100, fromJSON(s))`,
	`let s = repeat("a", 1000000); map(1..300, s[0:] + "")`,
	`let m = fromPairs(map(1..100000, [string(#), #])); map(1..300, keys(m))`,
	`let m = fromPairs(map(1..100000, [string(#), #])); map(1..300, toPairs(m))`,
	`let s = repeat("x", 100000); reduce(1..100000, [#acc], [s])`,
	`string(reduce(1..5000, [#acc, #acc], 1))`,
	`let s = repeat("2006", 1000000); map(1..300, now().Format(s))`,
	// Loops that read a long value on every turn: the reading is charged as steps.
	`let s = repeat("x", 16000000); count(1..1000000, indexOf(s, "y") > 0)`,
	`let s = repeat("x", 16000000); let t = repeat("x", 15999999) + "x"; count(1..1000000, s == t)`,
	`let s = repeat("x", 16000000); count(1..1000000, s contains "y")`,
	`let s = repeat("x", 1000000); count(1..1000000, s matches "y")`,
	`let s = repeat("x", 16000000); count(1..1000000, len(split(s, "y")) > 1)`,
	`let s = repeat("x", 16000000); count(1..1000000, len(s) > 1)`,
	`let l = 1..1000000; count(1..1000000, 5000000 in l)`,
}

// TestBudgetHostile: each hostile expression ends with the budget's error, builds at most a
// few times the budget, and ends promptly.
func TestBudgetHostile(t *testing.T) {
	env := NewEnv(record())
	const want = "the expression builds more than 32 MiB of strings, lists and maps (the budget of one evaluation)"
	const wantSteps = "the expression takes more than 1000000 steps (the budget of one evaluation)"
	const wantDeep = "the expression builds a value nested more than 1000 levels deep (the budget of one evaluation)"
	for _, src := range hostileExprs {
		var ds diag.Diagnostics
		prog := compileExpr(str(src), env, exprKind{key: "to_target"}, &ds)
		if prog == nil {
			t.Errorf("%s: %v", src, ds)
			continue
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		_, err := run(nil, prog, map[string]any{"name": "abc"})
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		if err == nil || err.Error() != want && err.Error() != wantSteps && err.Error() != wantDeep {
			t.Errorf("%s:\n got %v\nwant %s", src, err, want)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*MaxEvalBytes {
			t.Errorf("%s: allocated %d MiB", src, alloc>>20)
		}
		if took > 10*time.Second {
			t.Errorf("%s: took %v", src, took)
		}
	}
}

// TestBudgetEnough: expressions of ordinary size are not touched by the budget.
func TestBudgetEnough(t *testing.T) {
	env := NewEnv(record())
	for _, tc := range []struct {
		src  string
		want any
	}{
		{`name + "-" + name`, "abc-abc"},
		{`len(repeat("x", 1000000) + repeat("y", 1000000))`, int64(2000000)},
		{`len(join(map(1..1000, name), ","))`, int64(3999)},
		{`sum(1..1000000)`, int64(500000500000)},
		{`len(map(1..400000, # * 2))`, int64(400000)},
		{`count(1..900000, # % 2 == 0)`, int64(450000)},
		{`len(split(repeat("a,", 100000), ","))`, int64(100001)},
		{`upper(name) + string(len(lines ?? []))`, "ABC0"},
		{`toJSON({"a": [1, 2]})`, "{\n  \"a\": [\n    1,\n    2\n  ]\n}"},
		{`reduce(1..10, #acc + #, 0)`, int64(55)},
		{`price + 1`, 2.5},
		{`stock + 1`, int64(3)},
	} {
		var ds diag.Diagnostics
		prog := compileExpr(str(tc.src), env, exprKind{key: "to_target"}, &ds)
		if prog == nil {
			t.Errorf("%s: %v", tc.src, ds)
			continue
		}
		got, err := run(nil, prog, map[string]any{"name": "abc", "price": 1.5, "stock": 2})
		if err != nil || got != tc.want {
			t.Errorf("%s = %#v, %v; want %#v", tc.src, got, err, tc.want)
		}
	}
}
