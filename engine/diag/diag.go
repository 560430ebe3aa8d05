// Package diag is dataflow's one type for problems found in user files: a position (file, line,
// column), a severity, a terse summary and a detail sentence that says how to fix it. Loaders and
// validators collect every problem they find into Diagnostics instead of stopping at the first;
// writers in this package print them for humans (compiler style), machines (JSON) and CI
// annotations (GitHub). It knows nothing about YAML or the mapping language.
package diag

import (
	"fmt"
	"sort"
	"strings"
)

// Severity tells whether a problem makes a file invalid.
type Severity int

const (
	// Error makes the file invalid: validate exits 1.
	Error Severity = iota
	// Warning is worth fixing but does not make the file invalid.
	Warning
)

func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "error"
}

// Pos is a position in a file. Line and Col are 1-based; Col counts runes, not bytes.
type Pos struct {
	Line int
	Col  int
}

// Range is the span of source text a diagnostic points at. End is exclusive and may equal Start
// (a point); End.Line may be 0 when only the start is known.
type Range struct {
	File  string
	Start Pos
	End   Pos
}

// String renders the range as file:line:col, the form editors and terminals make clickable.
func (r Range) String() string {
	switch {
	case r.Start.Line == 0:
		return r.File
	case r.Start.Col == 0:
		return fmt.Sprintf("%s:%d", r.File, r.Start.Line)
	}
	return fmt.Sprintf("%s:%d:%d", r.File, r.Start.Line, r.Start.Col)
}

// Diagnostic is one problem, pointed at the exact key or value that causes it.
type Diagnostic struct {
	Severity Severity
	Summary  string // one line, lower case, no final period: "unknown key \"nmae\""
	Detail   string // how to fix it, full sentences; may be empty
	Subject  Range
}

func (d *Diagnostic) Error() string {
	return d.Subject.String() + ": " + d.Summary
}

// Diagnostics is a list of problems. It is an error so that a function can return every
// problem it found through one error value.
type Diagnostics []*Diagnostic

// Errorf appends an error at r.
func (ds *Diagnostics) Errorf(r Range, format string, args ...any) *Diagnostic {
	d := &Diagnostic{Severity: Error, Summary: fmt.Sprintf(format, args...), Subject: r}
	*ds = append(*ds, d)
	return d
}

// Warnf appends a warning at r.
func (ds *Diagnostics) Warnf(r Range, format string, args ...any) *Diagnostic {
	d := &Diagnostic{Severity: Warning, Summary: fmt.Sprintf(format, args...), Subject: r}
	*ds = append(*ds, d)
	return d
}

// WithDetail sets the fix sentence and returns d, for chaining after Errorf.
func (d *Diagnostic) WithDetail(format string, args ...any) *Diagnostic {
	d.Detail = fmt.Sprintf(format, args...)
	return d
}

// HasErrors reports whether any diagnostic is an Error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// Err returns ds as an error when it holds an Error, else nil.
func (ds Diagnostics) Err() error {
	if ds.HasErrors() {
		return ds
	}
	return nil
}

func (ds Diagnostics) Error() string {
	var errs []string
	for _, d := range ds {
		if d.Severity == Error {
			errs = append(errs, d.Error())
		}
	}
	switch len(errs) {
	case 0:
		return "no errors"
	case 1:
		return errs[0]
	}
	return fmt.Sprintf("%s (and %d more errors)", errs[0], len(errs)-1)
}

// Sort orders diagnostics by file, line and column, keeping the order of equal positions, so
// that output reads top to bottom whatever order the checks ran in.
func (ds Diagnostics) Sort() {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i].Subject, ds[j].Subject
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Start.Line != b.Start.Line {
			return a.Start.Line < b.Start.Line
		}
		return a.Start.Col < b.Start.Col
	})
}

// Count returns the number of errors and warnings.
func (ds Diagnostics) Count() (errors, warnings int) {
	for _, d := range ds {
		if d.Severity == Error {
			errors++
		} else {
			warnings++
		}
	}
	return errors, warnings
}

// Plural returns "1 error" or "3 errors".
func Plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// Quote quotes a name for a message the way the summaries do: "name".
func Quote(s string) string { return fmt.Sprintf("%q", s) }

// JoinQuoted lists names for a message: `"a", "b" or "c"` with conjunction "or".
func JoinQuoted(names []string, conjunction string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = Quote(n)
	}
	if len(q) <= 1 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " " + conjunction + " " + q[len(q)-1]
}
