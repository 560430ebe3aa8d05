package state

// The encoders of bases as they were before their key orders were cached (issue 19), the
// reference that the encoders must match byte for byte: copied, renamed, not to be changed.

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"math"
	"slices"
	"strconv"

	"github.com/dataflow-sync/dataflow/internal/jsontext"
)

// refKeyedBase is one property of a base with the number of its key.
type refKeyedBase struct {
	key int64
	b   Base
}

// refBinaryCodec encodes bases in binary form with reused buffers; one per writer.
type refBinaryCodec struct {
	buf     []byte
	entries []refKeyedBase
	unknown []string
	float   []byte
	slots   []refKeyedBase // by key number, for sort
}

// encode returns the binary form of b, with key the number of a property key. ok is false
// when b has a property that is not plain (see refPlainBase), which is stored as JSON text.
// unknown lists the keys that have no number, sorted, when there are such (and out is nil):
// the caller numbers them and calls again. The bytes are valid until the next call.
func (c *refBinaryCodec) encode(b map[string]Base, key func(string) (int64, bool)) (out []byte, unknown []string, ok bool) {
	c.entries, c.unknown = c.entries[:0], c.unknown[:0]
	var highest int64
	for k, v := range b {
		if !refPlainBase(v) {
			return nil, nil, false
		}
		n, known := key(k)
		if !known {
			c.unknown = append(c.unknown, k)
			continue
		}
		highest = max(highest, n)
		c.entries = append(c.entries, refKeyedBase{n, v})
	}
	if len(c.unknown) > 0 {
		slices.Sort(c.unknown)
		return nil, c.unknown, true
	}
	c.sort(highest)
	out = append(c.buf[:0], binaryBase)
	out = binary.AppendUvarint(out, uint64(highest))
	out = binary.AppendUvarint(out, uint64(len(c.entries)))
	var previous int64
	for _, e := range c.entries {
		step := e.key - previous
		previous = e.key
		head := byte(3 << 6)
		if step >= 1 && step <= 3 {
			head = byte(step-1) << 6
		}
		s, t := e.b.S, e.b.T
		var layout byte
		switch {
		case len(s) == 0 && len(t) == 0:
			layout = layoutNone
		case len(t) == 0:
			layout = layoutS
		case len(s) == 0:
			layout, s = layoutT, t
		case bytes.Equal(s, t):
			layout = layoutB
		default:
			layout = layoutST
		}
		var kind byte
		if layout != layoutNone {
			kind = c.kindOf(s)
		}
		out = append(out, head|layout<<3|kind)
		if head == 3<<6 {
			out = binary.AppendUvarint(out, uint64(step))
		}
		if layout == layoutST {
			kindT := c.kindOf(t)
			out = c.appendValue(c.appendValue(append(out, kindT), s, kind), t, kindT)
		} else if layout != layoutNone {
			out = c.appendValue(out, s, kind)
		}
	}
	c.buf = out
	return out, nil, true
}

// sort puts the entries in the order of their keys: by their place in a slice of the key
// numbers when they are about as many as the numbers (a flow's keys are numbered in a row),
// which costs no comparisons.
func (c *refBinaryCodec) sort(highest int64) {
	if n := len(c.entries); highest > int64(4*n+16) {
		slices.SortFunc(c.entries, func(a, b refKeyedBase) int { return cmp.Compare(a.key, b.key) })
		return
	}
	if int64(len(c.slots)) <= highest {
		c.slots = make([]refKeyedBase, highest+1)
	}
	for _, e := range c.entries {
		c.slots[e.key] = e
	}
	c.entries = c.entries[:0]
	for i := range c.slots[:highest+1] {
		if c.slots[i].key != 0 {
			c.entries = append(c.entries, c.slots[i])
			c.slots[i] = refKeyedBase{}
		}
	}
}

// kindOf is the kind a compact JSON value is stored as.
func (c *refBinaryCodec) kindOf(v []byte) byte {
	switch {
	case v[0] == '"':
		if bytes.IndexByte(v, '\\') < 0 {
			return stringValue
		}
	case string(v) == "true":
		return trueValue
	case string(v) == "false":
		return falseValue
	case string(v) == "null":
		return nullValue
	case len(v) > 9 && (v[0] == '-' || isDigit(v[0])):
		// Longer than its 8 bytes, and given back exactly: a float64 that encoding/json wrote.
		if f, err := strconv.ParseFloat(string(v), 64); err == nil {
			c.float = appendJSONFloat(c.float[:0], f)
			if bytes.Equal(c.float, v) {
				return floatValue
			}
		}
	}
	return rawValue
}

func (c *refBinaryCodec) appendValue(out, v []byte, kind byte) []byte {
	switch kind {
	case stringValue:
		v = v[1 : len(v)-1]
	case rawValue:
	case floatValue:
		f, _ := strconv.ParseFloat(string(v), 64) // checked by kindOf
		return binary.LittleEndian.AppendUint64(out, math.Float64bits(f))
	default:
		return out
	}
	return append(binary.AppendUvarint(out, uint64(len(v))), v...)
}

// refBaseCodec encodes and decodes bases, reusing its buffers; one per Tx or per read.
type refBaseCodec struct {
	buf  []byte
	keys []string
	// names interns the keys read, so that the links of a flow share their key strings.
	names map[string]string
}

// encode returns the stored text of a base.
func (c *refBaseCodec) encode(b map[string]Base) (string, error) {
	if len(b) == 0 {
		return "{}", nil
	}
	c.keys = c.keys[:0]
	for k, v := range b {
		if !refPlainBase(v) {
			return encodeBaseJSON(b)
		}
		c.keys = append(c.keys, k)
	}
	slices.Sort(c.keys)
	out := append(c.buf[:0], '{')
	for i, k := range c.keys {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendKey(out, k)
		out = append(out, ':', '{')
		// The members of storedBase in its order, as encoding/json writes them.
		sb := stored(b[k])
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

// refPlainBase reports whether a Base holds nothing but S and T, each absent or valid compact
// JSON, which is written as it is.
func refPlainBase(v Base) bool {
	if len(v.S) > 0 && !refCompactJSON(v.S) || len(v.T) > 0 && !refCompactJSON(v.T) {
		return false
	}
	// Every member of a Base but S and T (TestPlainBaseKnowsEveryMember): a look through
	// reflect took a tenth of a PutLink.
	return v.E == nil
}

// refCompactJSON reports whether b is one valid JSON value without whitespace outside strings:
// what encoding/json's compaction (of a json.RawMessage) leaves as it is.
func refCompactJSON(b []byte) bool {
	end, ok := refSkipValue(b, 0, 0)
	return ok && end == len(b)
}

// refMaxDepth bounds the nesting refSkipValue follows (encoding/json's limit is 10,000).
const refMaxDepth = 10000

// refSkipValue checks the JSON value starting at s[p], without whitespace, and returns the
// index after it. It accepts exactly what encoding/json's scanner accepts, bytes of strings
// included (any byte from 0x20, valid UTF-8 or not), and ok is false for anything else.
func refSkipValue(s []byte, p, depth int) (int, bool) {
	if p >= len(s) || depth > refMaxDepth {
		return p, false
	}
	switch c := s[p]; {
	case c == '"':
		p++
		for p < len(s) {
			switch c := s[p]; {
			case c == '"':
				return p + 1, true
			case c == '\\':
				if p+1 >= len(s) {
					return p, false
				}
				switch s[p+1] {
				case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
					p += 2
				case 'u':
					if p+6 > len(s) {
						return p, false
					}
					for _, h := range s[p+2 : p+6] {
						if !isHex(h) {
							return p, false
						}
					}
					p += 6
				default:
					return p, false
				}
			case c < 0x20:
				return p, false
			default:
				p++
			}
		}
		return p, false
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
			if p, ok = refSkipValue(s, p, depth+1); !ok || p >= len(s) || s[p] != ':' {
				return p, false
			}
			if p, ok = refSkipValue(s, p+1, depth+1); !ok || p >= len(s) {
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
			if p, ok = refSkipValue(s, p, depth+1); !ok || p >= len(s) {
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
