package config

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/diag"
)

func env(vars map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestExpand(t *testing.T) {
	vars := env(map[string]string{"DB": "crm.db", "EMPTY": "", "KEY": "s3cret"})
	for _, tc := range []struct {
		in, want, missing, bad string
	}{
		{in: "plain.db", want: "plain.db"},
		{in: "${DB}", want: "crm.db"},
		{in: "${DB:-x.db}", want: "crm.db"},
		{in: "${NOPE:-testdata/local/x.db}", want: "testdata/local/x.db"},
		{in: "${EMPTY:-fallback}", want: "fallback"},
		{in: "${EMPTY}", want: ""},
		{in: "Bearer ${KEY}", want: "Bearer s3cret"},
		{in: "${NOPE}", want: "", missing: "NOPE"},
		{in: "cost $5 and $$HOME", want: "cost $5 and $HOME"},
		{in: "${DB", want: "${DB", bad: "${DB"},
		{in: "${1X}", want: "${1X}", bad: "${1X}"},
		{in: "${}", want: "${}", bad: "${}"},
		{in: "a${DB}b${NOPE:-}c", want: "acrm.dbbc"},
	} {
		got, missing, bad := Expand(tc.in, vars)
		if got != tc.want || strings.Join(missing, ",") != tc.missing || bad != tc.bad {
			t.Errorf("Expand(%q) = %q, %v, %q; want %q, %q, %q", tc.in, got, missing, bad, tc.want, tc.missing, tc.bad)
		}
	}
}

// TestPosAt checks that an offset inside a scalar maps to the right file column for every
// scalar style: the caret of an expression error must land on the offending character.
func TestPosAt(t *testing.T) {
	src := `plain: a + b
double: "a + \"b\" + c"
single: 'it''s + c'
block: |
  first
    second + c
folded: >
  name +

  * sku
multi: "a +
  \"b\" * c"
plainmulti: a +
  b * c
crlf: x
`
	f, ds := Parse("m.yaml", []byte(src))
	if len(ds) > 0 {
		t.Fatal(ds)
	}
	for _, tc := range []struct {
		key  string
		char string // the character whose position is asked, found in the value
		line int
		col  int
	}{
		{"plain", "b", 1, 12},
		{"double", "c", 2, 22},
		{"single", "c", 3, 18},
		{"block", "f", 5, 3},
		{"block", "c", 6, 14},
		{"folded", "*", 10, 3},
		{"multi", "*", 12, 9},
		{"plainmulti", "*", 14, 5},
	} {
		n := f.Root.Get(tc.key)
		off := strings.LastIndex(n.Value, tc.char)
		if off < 0 {
			t.Fatalf("%s: %q not in %q", tc.key, tc.char, n.Value)
		}
		off = len([]rune(n.Value[:off]))
		got := n.PosAt(off)
		if got.Line != tc.line || got.Col != tc.col {
			t.Errorf("%s: %q at %d:%d, want %d:%d", tc.key, tc.char, got.Line, got.Col, tc.line, tc.col)
		}
	}
}

// TestLoneCarriageReturns: YAML counts a lone \r as a line break, and so must positions.
func TestLoneCarriageReturns(t *testing.T) {
	f, ds := Parse("m.yaml", []byte("a: 1\rb: two\r\nc: 3\n"))
	if len(ds) > 0 {
		t.Fatal(summaries(ds))
	}
	for key, line := range map[string]int{"a": 1, "b": 2, "c": 3} {
		n := f.Root.Get(key)
		text, ok := f.line(n.Range.Start.Line)
		if n.Range.Start.Line != line || !ok || !strings.HasPrefix(text, key+":") {
			t.Errorf("%s at line %d (%q), want %d", key, n.Range.Start.Line, text, line)
		}
	}
}

func TestScalarRangeCoversQuotedValue(t *testing.T) {
	f, _ := Parse("m.yaml", []byte("a: \"x \\\" y\"  # comment\nb: plain value\n"))
	if r := f.Root.Get("a").Range; r.Start.Col != 4 || r.End.Col != 12 {
		t.Errorf("quoted range = %v..%v", r.Start, r.End)
	}
	if r := f.Root.Get("b").Range; r.Start.Col != 4 || r.End.Col != 15 {
		t.Errorf("plain range = %v..%v", r.Start, r.End)
	}
}

func summaries(ds diag.Diagnostics) string {
	var s []string
	for _, d := range ds {
		s = append(s, fmt.Sprintf("%s: %s", d.Subject, d.Summary))
	}
	return strings.Join(s, "\n")
}

func TestParseProblems(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"empty", "", "m.yaml: file is empty"},
		{"comment only", "# nothing\n", "m.yaml: file is empty"},
		{"syntax", "a: b\n  c: d\n", "m.yaml:2:3: invalid YAML: mapping values are not allowed in this context"},
		{"tab", "a:\n\tb: c\n", "m.yaml:2:1: invalid YAML: found character that cannot start any token"},
		{"duplicate", "a: 1\nb: 2\na: 3\n", "m.yaml:3:1: duplicate key \"a\""},
		{"two documents", "a: 1\n---\nb: 2\n", "m.yaml:2:1: a second YAML document in one file"},
		{"bad utf8", "a: \xff\xfe\n", "m.yaml:1:4: invalid UTF-8 (byte 0xff at offset 3)"},
		{"complex key", "? [a, b]\n: c\n", "m.yaml:1:3: a key must be a plain name, not a list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ds := Parse("m.yaml", []byte(tc.src))
			if got := summaries(ds); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestMergeKeysAndAliases(t *testing.T) {
	src := `base: &base {sync: both, create: never}
flow:
  <<: *base
  create: always
  id: x
list: [*base, *base]
`
	f, ds := Parse("m.yaml", []byte(src))
	if len(ds) > 0 {
		t.Fatal(summaries(ds))
	}
	flow := f.Root.Get("flow")
	if flow.Get("create").Value != "always" || flow.Get("sync").Value != "both" || flow.Get("id").Value != "x" {
		t.Errorf("merge: %v", flow.JSON())
	}
	if l := f.Root.Get("list"); len(l.Items) != 2 || l.Items[1].Get("create").Value != "never" {
		t.Errorf("aliases: %v", l.JSON())
	}
}

// TestHostileYAML: inputs built to exhaust memory or the stack give an error, quickly.
func TestHostileYAML(t *testing.T) {
	var bomb strings.Builder
	bomb.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 12; i++ {
		fmt.Fprintf(&bomb, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	deep := strings.Repeat("[", 5000) + strings.Repeat("]", 5000)
	deepMap := ""
	for i := 0; i < 200; i++ {
		deepMap += strings.Repeat("  ", i) + "k:\n"
	}
	for _, tc := range []struct{ name, src, want string }{
		{"alias bomb", bomb.String(), "the file expands to more than 200000 values"},
		{"deep flow", deep, "nests deeper than"},
		{"deep block", deepMap, "nests deeper than"},
		{"huge", "a: " + strings.Repeat("x", MaxFileSize), "file is larger than 8 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, ds := Parse("m.yaml", []byte(tc.src))
			if !strings.Contains(summaries(ds), tc.want) {
				t.Errorf("got %q, want it to contain %q", summaries(ds), tc.want)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}
