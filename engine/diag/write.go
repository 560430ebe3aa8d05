package diag

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Sources holds the text of the files diagnostics point into, by the name used in Range.File,
// so that the text writer can quote the offending line.
type Sources map[string][]byte

// Line returns line n (1-based) of file without its line ending, as it is in the file (bytes
// that are not UTF-8 included: the writers escape it for display). Lines end with \n, \r\n or
// a lone \r, as YAML counts them.
func (s Sources) Line(file string, n int) (string, bool) {
	src, ok := s[file]
	if !ok || n < 1 {
		return "", false
	}
	starts := LineStarts(src)
	if n > len(starts) {
		return "", false
	}
	return lineAt(src, starts, n), true
}

// LineStarts returns the byte offset of the start of each line of src.
func LineStarts(src []byte) []int {
	starts := []int{0}
	for i := 0; i < len(src); i++ {
		switch src[i] {
		case '\n':
			starts = append(starts, i+1)
		case '\r':
			if i+1 < len(src) && src[i+1] == '\n' {
				i++
			}
			starts = append(starts, i+1)
		}
	}
	return starts
}

// lineAt returns line n (1-based) given the line starts, without its ending.
func lineAt(src []byte, starts []int, n int) string {
	end := len(src)
	if n < len(starts) {
		end = starts[n]
	}
	return strings.TrimRight(string(src[starts[n-1]:end]), "\r\n")
}

// LineAt returns line n (1-based) of src given its LineStarts, or false past the end.
func LineAt(src []byte, starts []int, n int) (string, bool) {
	if n < 1 || n > len(starts) {
		return "", false
	}
	return lineAt(src, starts, n), true
}

// Formats lists the names WriteFormat accepts.
var Formats = []string{"text", "json", "github"}

// WriteFormat writes ds in the named format: text, json or github.
func WriteFormat(w io.Writer, format string, ds Diagnostics, src Sources) error {
	switch format {
	case "text":
		return WriteText(w, ds, src)
	case "json":
		return WriteJSON(w, ds)
	case "github":
		return WriteGitHub(w, ds)
	}
	return fmt.Errorf("unknown format %q; use text, json or github", format)
}

// WriteText prints each diagnostic like a compiler: "file:line:col: error: summary", the source
// line with a caret under the offending text, and the detail sentence.
func WriteText(w io.Writer, ds Diagnostics, src Sources) error {
	var b strings.Builder
	for _, d := range ds {
		// Names, messages and the quoted line may hold what a file or a server put there:
		// all of it is escaped (Escape), so that no excerpt can drive the terminal.
		fmt.Fprintf(&b, "%s: %s: %s\n", Escape(d.Subject.String()), d.Severity, Escape(d.Summary))
		if line, ok := src.Line(d.Subject.File, d.Subject.Start.Line); ok && d.Subject.Start.Col > 0 {
			writeSnippet(&b, d.Subject, line)
		}
		if d.Detail != "" {
			fmt.Fprintf(&b, "  %s\n", Escape(d.Detail))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeSnippet quotes the line with a caret under the range's columns. The line is escaped,
// which widens what it escapes (ESC is the four characters \x1b), so the caret is placed by
// the columns of the escaped text. A tab is shown as one space, as wide as the column it is.
func writeSnippet(b *strings.Builder, r Range, line string) {
	num := strconv.Itoa(r.Start.Line)
	pad := strings.Repeat(" ", len(num))
	line, cols := escapeColumns(strings.ReplaceAll(line, "\t", " "))
	fmt.Fprintf(b, "  %s | %s\n", num, line)
	lineLen := len(cols) - 1 // runes of the file's line
	col := func(c int) int { // 1-based column of the file's line -> 0-based offset of the shown one
		if c-1 < len(cols) {
			return cols[c-1]
		}
		return cols[len(cols)-1] + c - len(cols)
	}
	width := 1
	if r.End.Line == r.Start.Line && r.End.Col > r.Start.Col {
		width = r.End.Col - r.Start.Col
	} else if r.End.Line > r.Start.Line {
		width = lineLen - r.Start.Col + 1
	}
	if max := lineLen - r.Start.Col + 1; width > max {
		width = max
	}
	if width < 1 {
		width = 1
	}
	start, end := col(r.Start.Col), col(r.Start.Col+width)
	if end <= start {
		end = start + 1
	}
	fmt.Fprintf(b, "  %s | %s^%s\n", pad, strings.Repeat(" ", start), strings.Repeat("~", end-start-1))
}

type jsonDiagnostic struct {
	Severity  string `json:"severity"`
	File      string `json:"file"`
	Line      int    `json:"line,omitempty"`
	Column    int    `json:"column,omitempty"`
	EndLine   int    `json:"endLine,omitempty"`
	EndColumn int    `json:"endColumn,omitempty"`
	Summary   string `json:"summary"`
	Detail    string `json:"detail,omitempty"`
}

// WriteJSON writes {"errors": n, "warnings": n, "diagnostics": [...]} for tools.
func WriteJSON(w io.Writer, ds Diagnostics) error {
	out := struct {
		Errors      int              `json:"errors"`
		Warnings    int              `json:"warnings"`
		Diagnostics []jsonDiagnostic `json:"diagnostics"`
	}{Diagnostics: []jsonDiagnostic{}}
	out.Errors, out.Warnings = ds.Count()
	for _, d := range ds {
		out.Diagnostics = append(out.Diagnostics, jsonDiagnostic{
			Severity: d.Severity.String(), File: d.Subject.File,
			Line: d.Subject.Start.Line, Column: d.Subject.Start.Col,
			EndLine: d.Subject.End.Line, EndColumn: d.Subject.End.Col,
			Summary: d.Summary, Detail: d.Detail,
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// WriteGitHub writes GitHub Actions workflow commands, which GitHub shows as annotations on the
// pull request's lines: ::error file=F,line=L,col=C::message
func WriteGitHub(w io.Writer, ds Diagnostics) error {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "::%s file=%s", d.Severity, ghProperty(Escape(d.Subject.File)))
		if d.Subject.Start.Line > 0 {
			fmt.Fprintf(&b, ",line=%d", d.Subject.Start.Line)
		}
		if d.Subject.Start.Col > 0 {
			fmt.Fprintf(&b, ",col=%d", d.Subject.Start.Col)
		}
		if d.Subject.End.Line > 0 {
			fmt.Fprintf(&b, ",endLine=%d", d.Subject.End.Line)
			if d.Subject.End.Line == d.Subject.Start.Line && d.Subject.End.Col > 0 {
				fmt.Fprintf(&b, ",endColumn=%d", d.Subject.End.Col)
			}
		}
		// GitHub shows the log (and the annotation) with its ANSI codes: the message is
		// escaped like the text output's, then for the workflow command (%0A for newlines).
		msg := Escape(d.Summary)
		if d.Detail != "" {
			msg += "\n" + Escape(d.Detail)
		}
		fmt.Fprintf(&b, "::%s\n", ghData(msg))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

var (
	ghDataEscaper     = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
	ghPropertyEscaper = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C")
)

func ghData(s string) string     { return ghDataEscaper.Replace(s) }
func ghProperty(s string) string { return ghPropertyEscaper.Replace(s) }
