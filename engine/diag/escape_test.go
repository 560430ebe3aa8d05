package diag

import (
	"strings"
	"testing"
)

func TestEscape(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain text", "plain text"},
		{"Köln, 東京 and an emoji 🚀", "Köln, 東京 and an emoji 🚀"},
		{"\x1b]0;PWNED\a\x1b[2J", `\x1b]0;PWNED\x07\x1b[2J`},
		{"tab\tnew\nline\rcr", `tab\tnew\nline\rcr`},
		{"nul\x00 del\x7f", `nul\x00 del\x7f`},
		{"bad \xff\xfe utf-8 \xe2\x82", `bad \xff\xfe utf-8 \xe2\x82`},
		{"csi \u009b2J", `csi \u009b2J`},
		{"bidi \u202egnp.exe\u2066", `bidi \u202egnp.exe\u2066`},
		{`a literal \x1b`, `a literal \x1b`},
	} {
		if got := Escape(c.in); got != c.want {
			t.Errorf("Escape(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got, want := EscapeLines("one\x1b\ntwo\r\n"), "one\\x1b\ntwo\\r\n"; got != want {
		t.Errorf("EscapeLines = %q, want %q", got, want)
	}
}

// The reproduction of issue 13 item 5: a file whose line holds terminal commands is quoted
// with them escaped, and the caret, under the byte that is not UTF-8, is where the escaped
// line shows it.
func TestWriteTextEscapesTheQuotedLine(t *testing.T) {
	src := Sources{"f.yaml": []byte("dataflow: x\ndescription: \x1b]0;PWNED\a\x1b[2J \xff\n")}
	var ds Diagnostics
	ds.Errorf(Range{File: "f.yaml", Start: Pos{2, 29}, End: Pos{2, 29}}, "invalid UTF-8 (byte 0xff at offset 40)")
	// A range over escaped text widens with it: the title command, ESC to BEL.
	ds.Warnf(Range{File: "f.yaml", Start: Pos{2, 14}, End: Pos{2, 24}}, "the title \x1b]0;x\a in a summary").
		WithDetail("and \x1b[31m in a detail")
	var b strings.Builder
	if err := WriteText(&b, ds, src); err != nil {
		t.Fatal(err)
	}
	want := `f.yaml:2:29: error: invalid UTF-8 (byte 0xff at offset 40)
  2 | description: \x1b]0;PWNED\x07\x1b[2J \xff
    |                                      ^~~~
f.yaml:2:14: warning: the title \x1b]0;x\x07 in a summary
  2 | description: \x1b]0;PWNED\x07\x1b[2J \xff
    |              ^~~~~~~~~~~~~~~~
  and \x1b[31m in a detail
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

// A tab in the quoted line is one space, as wide as its column.
func TestWriteTextTabKeepsTheCaret(t *testing.T) {
	src := Sources{"f.yaml": []byte("a:\t\"x\x1by\"\n")}
	var ds Diagnostics
	ds.Errorf(Range{File: "f.yaml", Start: Pos{1, 4}, End: Pos{1, 9}}, "bad")
	var b strings.Builder
	WriteText(&b, ds, src)
	want := "f.yaml:1:4: error: bad\n  1 | a: \"x\\x1by\"\n    |    ^~~~~~~~\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestWriteGitHubEscapes(t *testing.T) {
	var ds Diagnostics
	ds.Errorf(Range{File: "f\x1b[2J.yaml", Start: Pos{1, 1}}, "unknown key \x1b]0;PWNED\a").WithDetail("100%%\u009b")
	var b strings.Builder
	WriteGitHub(&b, ds)
	want := "::error file=f\\x1b[2J.yaml,line=1,col=1::unknown key \\x1b]0;PWNED\\x07%0A100%25\\u009b\n"
	if b.String() != want {
		t.Errorf("got:\n%q\nwant:\n%q", b.String(), want)
	}
}
