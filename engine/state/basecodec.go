package state

// The stored form of a link's base: compact JSON with sorted keys, {"<key>":{"s":<JSON>,
// "t":<JSON>},...}, as encoding/json writes a map[string]storedBase (without HTML escaping):
// a value that is the same on both sides, as most are, is stored once, {"<key>":{"b":<JSON>}}
// (from state schema 5), which makes the links a third smaller. Every
// run reads the base of every link it looks at, and writes one per link it syncs, so the
// common shape is encoded and decoded here by hand: the bytes are exactly encoding/json's, and
// whatever is not the common shape (other members of a Base, escaped keys, a value that is not
// valid compact JSON) goes through encoding/json as before, with its results and errors.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/dataflow-sync/dataflow/internal/jsontext"
	"slices"
	"unicode/utf8"
)

// storedBase is a Base as stored: B holds S and T when they are equal.
type storedBase struct {
	S json.RawMessage `json:"s,omitempty"`
	T json.RawMessage `json:"t,omitempty"`
	B json.RawMessage `json:"b,omitempty"`
	E *Elements       `json:"e,omitempty"`
}

// stored folds equal S and T into B.
func stored(b Base) storedBase {
	if len(b.S) > 0 && bytes.Equal(b.S, b.T) {
		return storedBase{B: b.S, E: b.E}
	}
	return storedBase{S: b.S, T: b.T, E: b.E}
}

// unfold is the Base of a stored one: B stands for S and T where they are absent.
func (sb storedBase) unfold() Base {
	b := Base{S: sb.S, T: sb.T, E: sb.E}
	if sb.B != nil {
		if b.S == nil {
			b.S = sb.B
		}
		if b.T == nil {
			b.T = sb.B
		}
	}
	return b
}

// baseCodec encodes and decodes bases, reusing its buffers; one per Tx or per read.
type baseCodec struct {
	buf []byte
	// keys are the keys of the last base encoded, sorted: the bases of a flow's links have the
	// same keys, so the next one is looked up key by key in this order, without sorting; values
	// are its values in that order.
	keys   []string
	values []Base
	// names interns the keys read, so that the links of a flow share their key strings.
	names map[string]string
}

// encode returns the stored text of a base.
func (c *baseCodec) encode(b map[string]Base) (string, error) {
	if len(b) == 0 {
		return "{}", nil
	}
	if !c.sameKeys(b) {
		c.keys = c.keys[:0]
		for k := range b {
			c.keys = append(c.keys, k)
		}
		slices.Sort(c.keys)
		c.values = c.values[:0]
		for _, k := range c.keys {
			c.values = append(c.values, b[k])
		}
	}
	for _, v := range c.values {
		if !plainBase(v) {
			return encodeBaseJSON(b)
		}
	}
	out := append(c.buf[:0], '{')
	for i, k := range c.keys {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendKey(out, k)
		out = append(out, ':', '{')
		// The members of storedBase in its order, as encoding/json writes them.
		sb := stored(c.values[i])
		first := true
		for _, m := range [...]struct {
			name string
			v    json.RawMessage
		}{{`"s":`, sb.S}, {`"t":`, sb.T}, {`"b":`, sb.B}} {
			if len(m.v) == 0 {
				continue
			}
			if !first {
				out = append(out, ',')
			}
			out = append(append(out, m.name...), m.v...)
			first = false
		}
		out = append(out, '}')
	}
	out = append(out, '}')
	c.buf = out
	return string(out), nil
}

// sameKeys reports whether b has the keys of the last base encoded, and then puts its values
// in values, in their order.
func (c *baseCodec) sameKeys(b map[string]Base) bool {
	if len(b) != len(c.keys) {
		return false
	}
	c.values = c.values[:0]
	for _, k := range c.keys {
		v, ok := b[k]
		if !ok {
			return false
		}
		c.values = append(c.values, v)
	}
	return true // as many keys, all of keys: the same keys
}

// plainBase reports whether a Base holds nothing but S and T, each absent or valid compact
// JSON, which is written as it is.
func plainBase(v Base) bool {
	if len(v.S) > 0 && !compactJSON(v.S) {
		return false
	}
	// T is mostly S again: checked once.
	if len(v.T) > 0 && !bytes.Equal(v.T, v.S) && !compactJSON(v.T) {
		return false
	}
	// Every member of a Base but S and T (TestPlainBaseKnowsEveryMember): a look through
	// reflect took a tenth of a PutLink.
	return v.E == nil
}

// encodeBaseJSON is the encoding of a base by encoding/json.
func encodeBaseJSON(b map[string]Base) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Values are stored as given: escaping <, > and & would change the bytes the engine
	// compares with the current values.
	enc.SetEscapeHTML(false)
	folded := make(map[string]storedBase, len(b))
	for k, v := range b {
		folded[k] = stored(v)
	}
	if err := enc.Encode(folded); err != nil {
		return "", err
	}
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// appendKey appends a map key as encoding/json writes it without HTML escaping.
func appendKey(dst []byte, s string) []byte { return jsontext.AppendString(dst, s, false) }

// decode decodes a stored base. The map is never nil, so that the engine can fill it. The
// values are slices of one copy of the text.
func (c *baseCodec) decode(s []byte) (map[string]Base, error) {
	if len(s) == 0 || string(s) == "{}" {
		return make(map[string]Base), nil
	}
	if m, ok := c.decodePlain(s); ok {
		return m, nil
	}
	return decodeBaseJSON(s)
}

// decodeBaseJSON is the decoding of a base by encoding/json.
func decodeBaseJSON(s []byte) (map[string]Base, error) {
	var folded map[string]storedBase
	if err := json.Unmarshal(s, &folded); err != nil {
		return nil, fmt.Errorf("base: %w", err)
	}
	m := make(map[string]Base, len(folded))
	for k, v := range folded {
		m[k] = v.unfold()
	}
	return m, nil
}

// decodePlain decodes a base of the form encode writes by hand: an object of objects with
// members "s" and "t" whose values are valid compact JSON, keys without escapes. ok is false
// for anything else.
func (c *baseCodec) decodePlain(s []byte) (m map[string]Base, ok bool) {
	p := 0
	if s[p] != '{' {
		return nil, false
	}
	p++
	m = make(map[string]Base, bytes.Count(s, []byte(`":{`)))
	for {
		if p >= len(s) {
			return nil, false
		}
		if s[p] == '}' && p == 1 {
			p++
			break
		}
		key, n, ok := plainString(s[p:])
		if !ok || p+n+1 >= len(s) || s[p+n] != ':' || s[p+n+1] != '{' {
			return nil, false
		}
		p += n + 2
		var b storedBase
		for first := true; ; first = false {
			if p >= len(s) {
				return nil, false
			}
			if s[p] == '}' && first {
				break
			}
			if p+4 >= len(s) || s[p] != '"' || (s[p+1] != 's' && s[p+1] != 't' && s[p+1] != 'b') || s[p+2] != '"' || s[p+3] != ':' {
				return nil, false
			}
			which := s[p+1]
			p += 4
			end, ok := skipValue(s, p, 0)
			if !ok {
				return nil, false
			}
			v := json.RawMessage(s[p:end:end])
			switch which {
			case 's':
				b.S = v
			case 't':
				b.T = v
			default:
				b.B = v
			}
			p = end
			if p < len(s) && s[p] == ',' {
				p++
				continue
			}
			break
		}
		if p >= len(s) || s[p] != '}' {
			return nil, false
		}
		p++
		m[c.intern(key)] = b.unfold()
		if p < len(s) && s[p] == ',' {
			p++
			continue
		}
		if p < len(s) && s[p] == '}' {
			p++
			break
		}
		return nil, false
	}
	if p != len(s) {
		return nil, false
	}
	return m, true
}

// intern returns the key as a string, the same string for the same key.
func (c *baseCodec) intern(key []byte) string {
	if k, ok := c.names[string(key)]; ok {
		return k
	}
	if c.names == nil {
		c.names = make(map[string]string)
	}
	k := string(key)
	if len(c.names) < 10000 { // keys are a flow's property keys; a corrupt file has others
		c.names[k] = k
	}
	return k
}

// plainString reads a JSON string without escapes at the start of s and returns its content
// and the length of the string with its quotes.
func plainString(s []byte) ([]byte, int, bool) {
	if len(s) == 0 || s[0] != '"' {
		return nil, 0, false
	}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return s[1:i], i + 1, utf8.Valid(s[1:i])
		case c == '\\' || c < 0x20:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// compactJSON reports whether b is one valid JSON value without whitespace outside strings:
// what encoding/json's compaction (of a json.RawMessage) leaves as it is.
func compactJSON(b []byte) bool {
	end, ok := skipValue(b, 0, 0)
	return ok && end == len(b)
}

// maxDepth bounds the nesting skipValue follows (encoding/json's limit is 10,000).
const maxDepth = 10000

// skipValue checks the JSON value starting at s[p], without whitespace, and returns the
// index after it. It accepts exactly what encoding/json's scanner accepts, bytes of strings
// included (any byte from 0x20, valid UTF-8 or not), and ok is false for anything else.
func skipValue(s []byte, p, depth int) (int, bool) {
	if p >= len(s) || depth > maxDepth {
		return p, false
	}
	switch c := s[p]; {
	case c == '"':
		end, _, ok := skipString(s, p)
		return end, ok
	case c == '{':
		p++
		if p < len(s) && s[p] == '}' {
			return p + 1, true
		}
		for {
			if p >= len(s) || s[p] != '"' {
				return p, false
			}
			var ok bool
			if p, ok = skipValue(s, p, depth+1); !ok || p >= len(s) || s[p] != ':' {
				return p, false
			}
			if p, ok = skipValue(s, p+1, depth+1); !ok || p >= len(s) {
				return p, false
			}
			switch s[p] {
			case ',':
				p++
			case '}':
				return p + 1, true
			default:
				return p, false
			}
		}
	case c == '[':
		p++
		if p < len(s) && s[p] == ']' {
			return p + 1, true
		}
		for {
			var ok bool
			if p, ok = skipValue(s, p, depth+1); !ok || p >= len(s) {
				return p, false
			}
			switch s[p] {
			case ',':
				p++
			case ']':
				return p + 1, true
			default:
				return p, false
			}
		}
	case c == 't':
		return literal(s, p, "true")
	case c == 'f':
		return literal(s, p, "false")
	case c == 'n':
		return literal(s, p, "null")
	case c == '-' || c >= '0' && c <= '9':
		end, _, ok := jsontext.SkipNumber(s, p)
		return end, ok
	}
	return p, false
}

// skipString checks the JSON string starting at s[p] (a quote) as skipValue does and returns
// the index after it, and whether it has an escape.
func skipString(s []byte, p int) (end int, escaped, ok bool) {
	p++
	for p < len(s) {
		switch c := s[p]; {
		case c == '"':
			return p + 1, escaped, true
		case c == '\\':
			escaped = true
			if p+1 >= len(s) {
				return p, escaped, false
			}
			switch s[p+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p += 2
			case 'u':
				if p+6 > len(s) {
					return p, escaped, false
				}
				for _, h := range s[p+2 : p+6] {
					if !isHex(h) {
						return p, escaped, false
					}
				}
				p += 6
			default:
				return p, escaped, false
			}
		case c < 0x20:
			return p, escaped, false
		default:
			p++
		}
	}
	return p, escaped, false
}

func literal(s []byte, p int, lit string) (int, bool) {
	if len(s)-p < len(lit) || string(s[p:p+len(lit)]) != lit {
		return p, false
	}
	return p + len(lit), true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
