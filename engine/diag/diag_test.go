package diag

import (
	"strings"
	"testing"
)

var src = Sources{"m.yaml": []byte("dataflow: x\nflows:\n  - id: a\n    sync: bth\n")}

func sample() Diagnostics {
	var ds Diagnostics
	ds.Errorf(Range{File: "m.yaml", Start: Pos{4, 11}, End: Pos{4, 14}}, "invalid sync %q; did you mean %q?", "bth", "both").
		WithDetail("Use one of: both, to-target, to-source.")
	ds.Warnf(Range{File: "m.yaml", Start: Pos{1, 1}, End: Pos{1, 9}}, "a warning, with: punctuation")
	return ds
}

func TestWriteText(t *testing.T) {
	var b strings.Builder
	if err := WriteText(&b, sample(), src); err != nil {
		t.Fatal(err)
	}
	want := `m.yaml:4:11: error: invalid sync "bth"; did you mean "both"?
  4 |     sync: bth
    |           ^~~
  Use one of: both, to-target, to-source.
m.yaml:1:1: warning: a warning, with: punctuation
  1 | dataflow: x
    | ^~~~~~~~
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestWriteTextWithoutSource(t *testing.T) {
	var ds Diagnostics
	ds.Errorf(Range{File: "gone.yaml", Start: Pos{3, 2}}, "lost")
	ds.Errorf(Range{File: "whole.yaml"}, "file is empty")
	var b strings.Builder
	WriteText(&b, ds, src)
	want := "gone.yaml:3:2: error: lost\nwhole.yaml: error: file is empty\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestCaretClampedToLine(t *testing.T) {
	var ds Diagnostics
	ds.Errorf(Range{File: "m.yaml", Start: Pos{4, 11}, End: Pos{6, 1}}, "spans lines")
	var b strings.Builder
	WriteText(&b, ds, src)
	if !strings.Contains(b.String(), "    |           ^~~\n") {
		t.Errorf("caret should stop at the end of the line:\n%s", b.String())
	}
}

func TestWriteGitHub(t *testing.T) {
	var b strings.Builder
	WriteGitHub(&b, sample())
	want := "::error file=m.yaml,line=4,col=11,endLine=4,endColumn=14::invalid sync \"bth\"; did you mean \"both\"?%0AUse one of: both, to-target, to-source.\n" +
		"::warning file=m.yaml,line=1,col=1,endLine=1,endColumn=9::a warning, with: punctuation\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	var ds Diagnostics
	ds.Errorf(Range{File: "a,b:c%.yaml", Start: Pos{1, 1}}, "%s", "100%\r\nsure")
	b.Reset()
	WriteGitHub(&b, ds)
	// A summary is one line: a line break in it came from a file and is shown escaped; the
	// break between summary and detail is GitHub's %0A.
	if want := "::error file=a%2Cb%3Ac%25.yaml,line=1,col=1::100%25\\r\\nsure\n"; b.String() != want {
		t.Errorf("escaping: got %q want %q", b.String(), want)
	}
}

func TestWriteJSON(t *testing.T) {
	var b strings.Builder
	WriteJSON(&b, sample())
	want := `{
  "errors": 1,
  "warnings": 1,
  "diagnostics": [
    {
      "severity": "error",
      "file": "m.yaml",
      "line": 4,
      "column": 11,
      "endLine": 4,
      "endColumn": 14,
      "summary": "invalid sync \"bth\"; did you mean \"both\"?",
      "detail": "Use one of: both, to-target, to-source."
    },
    {
      "severity": "warning",
      "file": "m.yaml",
      "line": 1,
      "column": 1,
      "endLine": 1,
      "endColumn": 9,
      "summary": "a warning, with: punctuation"
    }
  ]
}
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	WriteJSON(&b, nil)
	if want := "{\n  \"errors\": 0,\n  \"warnings\": 0,\n  \"diagnostics\": []\n}\n"; b.String() != want {
		t.Errorf("empty: got %q", b.String())
	}
}

func TestWriteFormatUnknown(t *testing.T) {
	err := WriteFormat(&strings.Builder{}, "xml", nil, nil)
	if err == nil || err.Error() != `unknown format "xml"; use text, json or github` {
		t.Errorf("err = %v", err)
	}
}

func TestErrorAndSort(t *testing.T) {
	ds := Diagnostics{
		{Severity: Error, Summary: "b", Subject: Range{File: "b.yaml", Start: Pos{1, 1}}},
		{Severity: Warning, Summary: "w", Subject: Range{File: "a.yaml", Start: Pos{9, 1}}},
		{Severity: Error, Summary: "a2", Subject: Range{File: "a.yaml", Start: Pos{2, 5}}},
		{Severity: Error, Summary: "a1", Subject: Range{File: "a.yaml", Start: Pos{2, 1}}},
	}
	ds.Sort()
	var order []string
	for _, d := range ds {
		order = append(order, d.Summary)
	}
	if got := strings.Join(order, " "); got != "a1 a2 w b" {
		t.Errorf("order = %s", got)
	}
	if got := ds.Error(); got != "a.yaml:2:1: a1 (and 2 more errors)" {
		t.Errorf("Error() = %q", got)
	}
	if ds.Err() == nil || (Diagnostics{ds[2]}).Err() != nil {
		t.Error("Err must be nil exactly when there are no errors")
	}
	if e, w := ds.Count(); e != 3 || w != 1 {
		t.Errorf("Count = %d, %d", e, w)
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"source", "target", "to_target", "to_source", "properties", "name", "sync"}
	for _, tc := range []struct{ in, want string }{
		{"sorce", "source"},
		{"taget", "target"},
		{"to_taget", "to_target"},
		{"propreties", "properties"},
		{"nmae", "name"},
		{"Name", "name"},
		{"synk", "sync"},
		{"x", ""},
		{"completely", ""},
		{"name", ""}, // an exact match is not a suggestion
	} {
		if got := Suggest(tc.in, names); got != tc.want {
			t.Errorf("Suggest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := DidYouMean("bth", []string{"both", "to-target"}); got != `; did you mean "both"?` {
		t.Errorf("DidYouMean = %q", got)
	}
	if got := JoinQuoted([]string{"a", "b", "c"}, "or"); got != `"a", "b" or "c"` {
		t.Errorf("JoinQuoted = %q", got)
	}
}
