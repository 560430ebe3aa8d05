package mapping

// The messages of expressions that do not compile: expr-lang's words rewritten for the
// people who write mappings, at the position inside the YAML file.

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/expr-lang/expr/file"
)

// reportExprError reports an expression that expr-lang refused, in the words of expr_message.go.
func reportExprError(s config.Str, kind exprKind, err error, env *Env, ds *diag.Diagnostics) {
	var fe *file.Error
	r := s.Range
	msg := err.Error()
	if errors.As(err, &fe) {
		msg = fe.Message
		r = rangeInExpr(s, fe.From, fe.To)
	}
	raw := msg
	msg = readableExprMessage(msg)
	switch m := unknownName.FindStringSubmatch(msg); {
	case m != nil:
		d := ds.Errorf(r, "%s: unknown property %q%s", kind.key, m[1], diag.DidYouMean(m[1], varNames(env)))
		if kind.other != nil && kind.other.Properties[m[1]] != nil && kind.over != "" {
			d.WithDetail("%s is an expression over %s; %q is a property of the %s.", kind.key, kind.over, m[1], kind.otherLabel)
		}
	case strings.HasPrefix(raw, "expected bool"):
		got := strings.TrimPrefix(raw, "expected bool, but got ")
		if name, ok := goKindNames[got]; ok {
			got = name
		}
		d := ds.Errorf(s.Range, "%s must be a boolean expression: it gives %s", kind.key, got)
		switch src := strings.TrimSpace(s.Value); {
		case len(src) > 40:
			d.WithDetail("Compare the value with something, e.g. (...) > 0, or use a boolean property.")
		case got == "a string":
			d.WithDetail("Compare the value with something, e.g. %s == \"yes\", or use a boolean property.", src)
		default:
			d.WithDetail("Compare the value with something, e.g. %s > 0, or use a boolean property.", parenthesize(src))
		}
	default:
		d := ds.Errorf(r, "%s: %s", kind.key, msg)
		if kind.boolean && strings.Contains(msg, "mismatched type") {
			d.WithDetail("A when expression is a condition over the source record's properties, e.g. stock > 0 or status == \"1\"; check the property's type in the entity schema.")
		}
	}
}

var (
	unexpectedToken = regexp.MustCompile(`unexpected token [A-Za-z]+\("((?:[^"\\]|\\.)*)"\)`)
	goTypeWord      = regexp.MustCompile(`\b(int|int64|float64|bool|string|map\[string\]interface \{\}|\[\]interface \{\})\b`)
)

// readableExprMessage puts expr-lang's wording in the terms of the mapping language: JSON
// types instead of Go types, the offending text instead of the token kind, sentences instead
// of Go's phrases, and a position as a column.
func readableExprMessage(msg string) string {
	msg = strings.ReplaceAll(msg, "unexpected token EOF", "unexpected end of the expression")
	msg = unexpectedToken.ReplaceAllString(msg, `unexpected "$1"`)
	rewritten := false
	for _, r := range exprRewrites {
		if m := r.re.FindStringSubmatchIndex(msg); m != nil {
			var parts []any
			for i := 2; i < len(m); i += 2 {
				part := ""
				if m[i] >= 0 { // an optional group that did not match is empty
					part = msg[m[i]:m[i+1]]
				}
				if slices.Contains(r.types, i/2) {
					part = withArticle(jsonTypeWords(part))
				}
				parts = append(parts, part)
			}
			msg = msg[:m[0]] + fmt.Sprintf(r.format, parts...) + msg[m[1]:]
			rewritten = true
			break
		}
	}
	if !rewritten {
		msg = jsonTypeWords(msg)
	}
	// expr-lang names the last overload it tried; dataflow's functions take any of theirs.
	if m := ownOverloads.FindStringSubmatch(msg); m != nil {
		msg = m[1] + " takes a number, an integer or a numeric string, not " + m[2]
	}
	if m := exprPosition.FindStringSubmatch(msg); m != nil {
		at := " (at column " + m[2] + ")"
		if m[1] != "1" {
			at = " (at line " + m[1] + ", column " + m[2] + ")"
		}
		msg = strings.TrimSuffix(msg, m[0]) + at
	}
	return msg
}

// jsonTypeWords names Go's types in a message by their JSON types.
func jsonTypeWords(msg string) string {
	return goTypeWord.ReplaceAllStringFunc(msg, func(t string) string {
		switch t {
		case "int", "int64":
			return "integer"
		case "float64":
			return "number"
		case "bool":
			return "boolean"
		case "map[string]interface {}":
			return "mapping"
		case "[]interface {}":
			return "list"
		}
		return t
	})
}

// exprRewrites turn expr-lang's messages into sentences; the parts whose numbers are in types
// are types, which get an article.
var exprRewrites = []struct {
	re     *regexp.Regexp
	format string
	types  []int
}{
	{regexp.MustCompile(`^invalid operation: (\S+) \(mismatched types (.+) and (.+)\)`), "cannot apply %s to %s and %s", []int{2, 3}},
	// A json.Number is a number no integer or float holds exactly (an id of 20 digits).
	{regexp.MustCompile(`^invalid operation: (?:json\.Number (\S+) [^()]+|[^()]+ (\S+) json\.Number)`), "cannot apply %s%s to a number that no integer or float holds exactly; string(...) gives its digits", nil},
	{regexp.MustCompile(`^interface conversion: interface \{\} is json\.Number, not [^()]+`), "a number that no integer or float holds exactly cannot be used here; string(...) gives its digits", nil},
	{regexp.MustCompile(`^interface conversion: interface \{\} is ([^()]+), not ([^()]+)`), "%s is used where %s is expected", []int{1, 2}},
	{regexp.MustCompile(`^cannot use (.+) as argument \(type (.+)\) to call (\S+)\s*`), "%[3]s takes %[2]s here, not %[1]s", []int{1, 2}},
	{regexp.MustCompile(`^invalid argument for (\S+) \(type (.+)\)`), "%s cannot take %s", []int{2}},
	{regexp.MustCompile(`^predicate should return boolean \(got (.+)\)`), "the condition must give a boolean, not %s", []int{1}},
	{regexp.MustCompile(`^array elements can only be selected using an integer \(got (.+)\)`), "a list's elements are selected by an integer, not by %s", []int{1}},
	{regexp.MustCompile(`^type (.+)\[(.+)\] is undefined`), "%s cannot be indexed by %s", []int{1, 2}},
	{regexp.MustCompile(`^index out of range: (-?\d+) \(array length is (\d+)\)`), "index %s is out of range: the list has %s elements", nil},
	{regexp.MustCompile(`^(?:runtime error: )?integer divide by zero`), "an integer is divided by 0", nil},
	{regexp.MustCompile(`^compilation failed: expression exceeds maximum allowed nodes`), fmt.Sprintf("the expression is too long: it has more than %d parts (names, values, operators)", MaxExprNodes), nil},
}

var ownOverloads = regexp.MustCompile(`^(amount|decimal) takes .+ here, not (.+)$`)

// exprPosition is the position expr-lang appends to a run-time message: (line:column).
var exprPosition = regexp.MustCompile(` ?\((\d+):(\d+)\)$`)

// withArticle puts "a" or "an" before a type's name, "a" before a compound one's.
func withArticle(t string) string {
	switch t {
	case "integer":
		return "an integer"
	case "interface {}", "unknown":
		return "a value of any type"
	}
	if t != "" && strings.ContainsRune("aeiou", rune(t[0])) {
		return "an " + t
	}
	return "a " + t
}
