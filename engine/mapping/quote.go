package mapping

// Quoting helpers for the filter languages of APIs: a value put into a filter by string
// concatenation (`'email="' + term + '"'`) breaks on a value that holds a quote, and lets a
// record's value change the filter (`x" || email != "`). Each helper gives the literal of one
// syntax, so that the value stays one value:
//
//	quote(v)       "..." with \" and \\ escaped, and control characters as \n, \t, \u0001: a
//	               double-quoted literal of JavaScript, JSON and PocketBase filters
//	sqlQuote(v)    '...' with ' doubled: a string literal of OData $filter and SQL
//	queryEscape(v) the value escaped for a URL query (space as +, & and = escaped)
//
// Numbers and booleans are quoted as their text (18, true); null is an error, as a filter
// that compares with "" instead of null would find other records.

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
)

// QuoteFunctions are the quoting helpers, for the expressions of mappings and of connectors
// (the http connector's query values and paths).
func QuoteFunctions() []expr.Option {
	return []expr.Option{
		expr.Function("quote", quoteFunc("quote", QuoteDouble), new(func(any) string)),
		expr.Function("sqlQuote", quoteFunc("sqlQuote", QuoteSingle), new(func(any) string)),
		expr.Function("queryEscape", quoteFunc("queryEscape", url.QueryEscape), new(func(any) string)),
	}
}

func quoteFunc(name string, f func(string) string) func(args ...any) (any, error) {
	return func(args ...any) (any, error) {
		s, err := quotedText(args[0])
		if err != nil {
			return nil, &EvalError{Msg: fmt.Sprintf("%s: %s", name, err)}
		}
		return f(s), nil
	}
}

// quotedText is the text of a scalar to quote.
func quotedText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case nil:
		return "", fmt.Errorf("the value is null; compare with null in the filter itself, or use ?? to give a default")
	}
	return "", fmt.Errorf("%s is not text, a number or a boolean", Canonical(v))
}

// QuoteDouble returns s as a double-quoted literal: \ and " escaped with a backslash, control
// characters as \n, \r, \t or \uXXXX, everything else (UTF-8 included) as it is.
func QuoteDouble(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' {
				fmt.Fprintf(&b, `\u%04x`, r)
				continue
			}
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// QuoteSingle returns s as a single-quoted literal with each ' doubled (OData, SQL).
func QuoteSingle(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
