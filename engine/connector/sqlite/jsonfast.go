package sqlite

import (
	"strconv"
	"unicode/utf8"

	"github.com/dataflow-sync/dataflow/internal/jsontext"
)

// decodeFast decodes JSON text into record values as decodeJSONStd does (encoding/json with
// numbers as int64 when they are integers that fit, else float64), for the text a JSON column
// usually holds: one value, strings without \u escapes, in valid UTF-8, not nested deeper
// than maxFastDepth. ok is false for anything else (an error among it), which decodeJSONStd
// then decodes or refuses as it always has.
func decodeFast(b []byte) (v any, ok bool) {
	d := fastDecoder{s: b}
	d.space()
	if v, ok = d.value(0); !ok {
		return nil, false
	}
	d.space()
	return v, d.p == len(d.s)
}

const maxFastDepth = 500

type fastDecoder struct {
	s []byte
	p int
}

func (d *fastDecoder) space() {
	for d.p < len(d.s) {
		switch d.s[d.p] {
		case ' ', '\t', '\n', '\r':
			d.p++
		default:
			return
		}
	}
}

func (d *fastDecoder) value(depth int) (any, bool) {
	if d.p >= len(d.s) || depth > maxFastDepth {
		return nil, false
	}
	switch c := d.s[d.p]; {
	case c == '{':
		d.p++
		m := make(map[string]any)
		d.space()
		if d.p < len(d.s) && d.s[d.p] == '}' {
			d.p++
			return m, true
		}
		for {
			d.space()
			k, ok := d.str()
			if !ok {
				return nil, false
			}
			d.space()
			if d.p >= len(d.s) || d.s[d.p] != ':' {
				return nil, false
			}
			d.p++
			d.space()
			v, ok := d.value(depth + 1)
			if !ok {
				return nil, false
			}
			m[k] = v
			if end, ok := d.after('}'); !ok {
				return nil, false
			} else if end {
				return m, true
			}
		}
	case c == '[':
		d.p++
		l := make([]any, 0)
		d.space()
		if d.p < len(d.s) && d.s[d.p] == ']' {
			d.p++
			return l, true
		}
		for {
			d.space()
			v, ok := d.value(depth + 1)
			if !ok {
				return nil, false
			}
			l = append(l, v)
			if end, ok := d.after(']'); !ok {
				return nil, false
			} else if end {
				return l, true
			}
		}
	case c == '"':
		return d.str()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	}
	return nil, false
}

// after reads what follows a member of an object or an element of a list: a comma, when
// more follow, or close, at the end (end is true). ok is false for anything else.
func (d *fastDecoder) after(close byte) (end, ok bool) {
	d.space()
	if d.p >= len(d.s) {
		return false, false
	}
	switch d.s[d.p] {
	case ',':
		d.p++
		return false, true
	case close:
		d.p++
		return true, true
	}
	return false, false
}

func (d *fastDecoder) literal(lit string) bool {
	if len(d.s)-d.p < len(lit) || string(d.s[d.p:d.p+len(lit)]) != lit {
		return false
	}
	d.p += len(lit)
	return true
}

// str reads a string: without escapes it is the text as it is; the escapes \", \\, \/, \b,
// \f, \n, \r and \t are undone; \u escapes, control characters and invalid UTF-8 are not
// handled here.
func (d *fastDecoder) str() (string, bool) {
	if d.p >= len(d.s) || d.s[d.p] != '"' {
		return "", false
	}
	open := d.p + 1
	start := open
	var buf []byte // the text so far, once an escape is met
	for i := start; i < len(d.s); i++ {
		switch c := d.s[i]; {
		case c == '"':
			if !utf8.Valid(d.s[open:i]) { // escapes are ASCII: the text is valid when this is
				return "", false
			}
			d.p = i + 1
			if buf == nil {
				return string(d.s[start:i]), true
			}
			return string(append(buf, d.s[start:i]...)), true
		case c == '\\':
			if i+1 >= len(d.s) {
				return "", false
			}
			var r byte
			switch d.s[i+1] {
			case '"', '\\', '/':
				r = d.s[i+1]
			case 'b':
				r = '\b'
			case 'f':
				r = '\f'
			case 'n':
				r = '\n'
			case 'r':
				r = '\r'
			case 't':
				r = '\t'
			default:
				return "", false
			}
			buf = append(buf, d.s[start:i]...)
			buf = append(buf, r)
			i++
			start = i + 1
		case c < 0x20:
			return "", false
		}
	}
	return "", false
}

// number reads a JSON number: an int64 when the text is an integer that fits, else a float64
// that holds it exactly; any other number (10000000000000000001) is left to decodeJSONStd,
// which keeps it exact.
func (d *fastDecoder) number() (any, bool) {
	s, start := d.s, d.p
	p, integer, ok := jsontext.SkipNumber(s, start)
	if !ok {
		return nil, false
	}
	text := string(s[start:p])
	d.p = p
	if integer {
		if i, err := strconv.ParseInt(text, 10, 64); err == nil {
			return i, true
		}
	}
	f, exact := jsontext.ExactFloat(text)
	if !exact {
		return nil, false
	}
	return f, true
}
