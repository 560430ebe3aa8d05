package mapping

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/diag"
)

// exprAt parses a one-key YAML file holding src as to_target and returns the value with its
// positions, as the loader gives it to compileExpr. The value is single-quoted: its first
// character is in column 13.
func exprAt(t *testing.T, src string) config.Str {
	t.Helper()
	quoted := "'" + strings.ReplaceAll(src, "'", "''") + "'"
	f, ds := config.Parse("m.yaml", []byte("to_target: "+quoted+"\n"))
	if len(ds) > 0 {
		t.Fatal(ds)
	}
	n := f.Root.Get("to_target")
	return config.Str{Value: n.Value, Range: n.Range, Set: true, Node: n}
}

// TestNestingLimit: an expression nested past the limit is refused with a positioned error
// before the parser recurses, however deep it goes; one at the limit compiles.
func TestNestingLimit(t *testing.T) {
	env := NewEnv(record())
	const want = "to_target: the expression nests more than 256 levels deep"
	for _, tc := range []struct {
		name, src string
		col       int // of the level past the limit
	}{
		{"parentheses", strings.Repeat("(", 257) + "1" + strings.Repeat(")", 257), 13 + 256},
		{"brackets", strings.Repeat("[", 300) + strings.Repeat("]", 300), 13 + 256},
		{"minus", strings.Repeat("-", 257) + "1", 13 + 256},
		{"not", "x" + strings.Repeat(" !", 257) + "active", 13 + 1 + 2*256 + 1},
		{"minus and parentheses", strings.Repeat("-(", 129) + "1" + strings.Repeat(")", 129), 13 + 256},
		// A parenthesis inside a string literal is text: the level is counted after it.
		{"after a string", `"((((" + ` + strings.Repeat("(", 257) + "1" + strings.Repeat(")", 257), 13 + 9 + 256},
		// The 1.2 MB expression that overflowed the stack.
		{"600,000 parentheses", strings.Repeat("(", 600000) + "1" + strings.Repeat(")", 600000), 13 + 256},
		{"600,000 minus signs", strings.Repeat("-", 1200000) + "1", 13 + 256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := exprAt(t, tc.src)
			var ds diag.Diagnostics
			start := time.Now()
			if prog := compileExpr(s, env, exprKind{key: "to_target"}, &ds); prog != nil {
				t.Fatalf("compiled")
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
			if len(ds) != 1 {
				t.Fatalf("got %v", ds)
			}
			if got := ds[0].Error(); got != "m.yaml:1:"+itoa(tc.col)+": "+want {
				t.Errorf("got  %q\nwant %q", got, "m.yaml:1:"+itoa(tc.col)+": "+want)
			}
		})
	}
	// Deep but within the limit, and levels that end: both compile.
	for _, src := range []string{
		strings.Repeat("(", 256) + "1" + strings.Repeat(")", 256),
		strings.Repeat("(1) + ", 300) + "1",
		strings.Repeat("-(1) - ", 300) + "1",
		`"` + strings.Repeat("(", 1000) + `"`,
		"1 /* " + strings.Repeat("[", 1000) + " */",
	} {
		var ds diag.Diagnostics
		if compileExpr(exprAt(t, src), env, exprKind{key: "to_target"}, &ds); len(ds) > 0 && strings.Contains(ds[0].Summary, "levels deep") {
			t.Errorf("%.40s...: %v", src, ds)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
