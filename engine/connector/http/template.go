package httpconn

// Path templates: literal text with {expr} parts, like /v2/commerce/products/{id}. Each part's
// value is escaped, so an id with a slash or a question mark stays one path segment and a value
// with & stays one query value: path escaping before the first literal `?` (commas kept, for
// `{join(ids, ",")}`), query escaping after it. `{{` and `}}` are literal braces.

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dataflow-sync/dataflow/engine/config"
)

// template is a parsed path template.
type template struct {
	parts []part
}

// part is literal text or an expression.
type part struct {
	lit   string
	prog  *program
	query bool // after the template's first literal `?`: the value is query-escaped
}

// mentions reports whether any part uses name.
func (t *template) mentions(name string) bool {
	for _, p := range t.parts {
		if p.prog != nil && p.prog.mentions[name] {
			return true
		}
	}
	return false
}

// compileTemplate parses and compiles the template in the scalar n.
func (c *compiler) compileTemplate(n *config.Node, key string, sc scope) *template {
	s := n.Value
	t := &template{}
	var lit strings.Builder
	query := false
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{lit: lit.String()})
			lit.Reset()
		}
	}
	ok := true
	for i := 0; i < len(s); {
		switch ch := s[i]; {
		case ch == '{' && strings.HasPrefix(s[i:], "{{"):
			lit.WriteByte('{')
			i += 2
		case ch == '}' && strings.HasPrefix(s[i:], "}}"):
			lit.WriteByte('}')
			i += 2
		case ch == '{':
			end := closingBrace(s, i)
			off := utf8.RuneCountInString(s[:i])
			if end < 0 {
				c.ds.Errorf(rangeIn(n, off, off+1), "%s: this { has no closing }", key).
					WithDetail("A path is text with {expression} parts, like /products/{id}; write {{ for a literal brace.")
				return nil
			}
			flush()
			src := s[i+1 : end]
			p := c.compile(n, src, off+1, key, sc, false)
			if p == nil {
				ok = false
			}
			t.parts = append(t.parts, part{prog: p, query: query})
			i = end + 1
		case ch == '}':
			off := utf8.RuneCountInString(s[:i])
			c.ds.Errorf(rangeIn(n, off, off+1), "%s: this } has no opening {", key).
				WithDetail("Write }} for a literal brace.")
			return nil
		default:
			if ch == '?' {
				query = true
			}
			lit.WriteByte(ch)
			i++
		}
	}
	flush()
	if !ok {
		return nil
	}
	return t
}

// closingBrace returns the index of the } that closes the { at s[open], skipping braces inside
// nested braces and string literals of the expression, or -1.
func closingBrace(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch ch := s[i]; ch {
		case '"', '\'', '`':
			for i++; i < len(s) && s[i] != ch; i++ {
				if s[i] == '\\' && ch != '`' {
					i++
				}
			}
			if i >= len(s) {
				return -1
			}
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// expand evaluates the template with vars and returns the path text.
func (t *template) expand(vars map[string]any) (string, error) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.prog == nil {
			b.WriteString(p.lit)
			continue
		}
		v, err := p.prog.run(vars)
		if err != nil {
			return "", err
		}
		s, err := pathText(v)
		if err != nil {
			return "", fmt.Errorf("path part {%s}: %w", p.prog.src, err)
		}
		if p.query {
			b.WriteString(url.QueryEscape(s))
		} else {
			b.WriteString(escapeSegment(s))
		}
	}
	return b.String(), nil
}

// pathText is the text of a value in a path: lists are joined with commas.
func pathText(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", fmt.Errorf("the value is null")
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			s, err := scalarText(e)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	case []string:
		return strings.Join(x, ","), nil
	}
	return scalarText(v)
}

// scalarText is the text of a scalar value in a URL.
func scalarText(v any) (string, error) {
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
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", fmt.Errorf("%v is not a number a URL can hold", x)
		}
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	case fmt.Stringer:
		return x.String(), nil
	}
	return "", fmt.Errorf("%s cannot be part of a URL", resultKind(v))
}

// escapeSegment escapes a value for a path: one segment, commas kept, and never `.` or `..`
// (which a server would resolve to another path).
func escapeSegment(s string) string {
	switch s {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	return strings.ReplaceAll(url.PathEscape(s), "%2C", ",")
}
