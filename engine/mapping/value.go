package mapping

import (
	"encoding/json"
	"fmt"
	"github.com/dataflow-sync/dataflow/internal/jsontext"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/schema"
)

// Values in records are JSON-like: nil, bool, int64 (int from expressions), float64, string,
// []any and map[string]any. This file reads and writes them at dotted paths, converts them
// between JSON types, and gives them a canonical form for comparison.

// Get returns the value at a dotted path. A path through a list maps every element: the result
// is the list of the elements' values.
func Get(rec map[string]any, path string) any {
	if !strings.Contains(path, ".") {
		// Most paths name a property of the record itself (an updated stamp, a merge key):
		// no segments to split, nothing allocated.
		return rec[path]
	}
	return get(rec, strings.Split(path, "."))
}

func get(v any, segs []string) any {
	if len(segs) == 0 {
		return v
	}
	switch x := v.(type) {
	case map[string]any:
		return get(x[segs[0]], segs[1:])
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = get(e, segs)
		}
		return out
	}
	return nil
}

// Set stores v at a dotted path of rec, creating objects on the way. Through a list it sets
// the value in every element (creating one element when the list is empty); when v is itself a
// list of the same length as the elements (a value that came from a list), element i gets v[i].
func Set(rec map[string]any, path string, v any) {
	set(rec, strings.Split(path, "."), v, nil)
}

// SetShaped is Set for a path whose list segments are known (arrays[i] is true when segment i
// is a list): missing lists are created as lists, not objects.
func SetShaped(rec map[string]any, path string, v any, arrays []bool) {
	set(rec, strings.Split(path, "."), v, arrays)
}

func set(m map[string]any, segs []string, v any, arrays []bool) {
	key := segs[0]
	if len(segs) == 1 {
		m[key] = v
		return
	}
	isList := len(arrays) > 0 && arrays[0]
	var rest []bool
	if len(arrays) > 0 {
		rest = arrays[1:]
	}
	if m[key] == nil && isList {
		m[key] = []any{}
	}
	switch next := m[key].(type) {
	case map[string]any:
		set(next, segs[1:], v, rest)
	case []any:
		if len(next) == 0 {
			next = []any{map[string]any{}}
			m[key] = next
		}
		vals, perElement := v.([]any)
		perElement = perElement && len(vals) == len(next) && len(segs) > 1
		for i, e := range next {
			em, ok := e.(map[string]any)
			if !ok {
				em = map[string]any{}
				next[i] = em
			}
			if perElement {
				set(em, segs[1:], vals[i], rest)
			} else {
				set(em, segs[1:], v, rest)
			}
		}
	default:
		child := map[string]any{}
		m[key] = child
		set(child, segs[1:], v, rest)
	}
}

// Clone deep-copies a value, so that a record can be changed without touching the one read.
func Clone(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = Clone(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = Clone(e)
		}
		return l
	}
	return v
}

// Canonical returns the value's canonical JSON: map keys sorted, numbers in their shortest
// exact form with integral floats written as integers (so 18 and 18.0 are equal), text escaped
// as encoding/json escapes it. Two values are the same exactly when their canonical forms are.
func Canonical(v any) []byte {
	n := 32
	switch x := v.(type) {
	case string:
		n = len(x) + 2 // quoted, one allocation unless it needs escapes
	case map[string]any:
		n = 32 * len(x) // most records' properties take less: one allocation
	case []any:
		n = 16 * len(x)
	}
	return AppendCanonical(make([]byte, 0, n), v)
}

// AppendCanonical appends the value's canonical JSON (see Canonical) to dst, so that a caller
// computing many (record digests) can reuse one buffer.
func AppendCanonical(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case bool:
		return strconv.AppendBool(dst, x)
	case int:
		return strconv.AppendInt(dst, int64(x), 10)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case float64:
		return appendNumber(dst, x)
	case json.Number:
		return appendJSONNumber(dst, x)
	case string:
		return appendString(dst, x)
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendCanonical(dst, e)
		}
		return append(dst, ']')
	case map[string]any:
		return appendMap(dst, x)
	}
	enc, err := json.Marshal(v)
	if err != nil {
		enc, _ = json.Marshal(fmt.Sprint(v))
	}
	return append(dst, enc...)
}

// stackEntries is the size of the objects appendMap sorts on the stack: a record's properties.
const stackEntries = 32

// appendMap appends an object's canonical form, its keys sorted. An object of up to
// stackEntries keys is read once into arrays on the stack (no key slice, no lookup per key)
// and sorted as a permutation of their indices, each packed with the key's first seven bytes
// into one integer: the sort moves no pointers (no write barriers while the collector runs)
// and compares whole keys only when their first seven bytes are the same.
func appendMap(dst []byte, m map[string]any) []byte {
	if len(m) > stackEntries {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return appendObject(dst, keys, m)
	}
	var keys [stackEntries]string
	var vals [stackEntries]any
	var order [stackEntries]uint64 // keyPrefix<<8 | index
	n := 0
	for k, v := range m {
		if n == stackEntries { // only if the map grew while it was read
			break
		}
		keys[n], vals[n] = k, v
		order[n] = keyPrefix(k)<<8 | uint64(n)
		n++
	}
	// Insertion sort: records have few properties.
	for i := 1; i < n; i++ {
		o := order[i]
		j := i
		for ; j > 0 && keyBefore(o, order[j-1], &keys); j-- {
			order[j] = order[j-1]
		}
		order[j] = o
	}
	dst = append(dst, '{')
	for i, o := range order[:n] {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, keys[uint8(o)])
		dst = append(dst, ':')
		dst = AppendCanonical(dst, vals[uint8(o)])
	}
	return append(dst, '}')
}

// keyBefore reports whether the key of o sorts before that of p (as strings compare,
// bytewise), o and p being appendMap's packed prefixes and indices.
func keyBefore(o, p uint64, keys *[stackEntries]string) bool {
	if o>>8 != p>>8 {
		return o < p
	}
	return keys[uint8(o)] < keys[uint8(p)]
}

// keyPrefix is the first seven bytes of s, big-endian, zeros past its end: a smaller prefix
// is a smaller key; equal prefixes say nothing (the keys may differ later, or one may end in
// zero bytes where the other ends).
func keyPrefix(s string) uint64 {
	var p uint64
	for i := range 7 {
		p <<= 8
		if i < len(s) {
			p |= uint64(s[i])
		}
	}
	return p
}

// RecordCanon appends the canonical form of records that share their properties, as the
// records of one entity do: a record's keys are sorted, and written as JSON, only when they
// differ from the last record's. The form is Canonical's. A RecordCanon is not safe for
// concurrent use.
type RecordCanon struct {
	keys []string // the last record's keys, sorted
	// heads holds each key as the object's text has it before the value, `"key":` (after a
	// comma but for the first), the text of key i ending at ends[i].
	heads []byte
	ends  []int
}

// Append appends rec's canonical form to dst.
func (c *RecordCanon) Append(dst []byte, rec map[string]any) []byte {
	if len(rec) == len(c.keys) {
		// As many keys as the last record's, each of them present: the same keys. Each is
		// looked up once, for its value.
		if out, ok := c.append(dst, rec); ok {
			return out
		}
	}
	c.keys = c.keys[:0]
	for k := range rec {
		c.keys = append(c.keys, k)
	}
	slices.Sort(c.keys)
	c.heads, c.ends = c.heads[:0], c.ends[:0]
	for i, k := range c.keys {
		if i > 0 {
			c.heads = append(c.heads, ',')
		}
		c.heads = appendString(c.heads, k)
		c.heads = append(c.heads, ':')
		c.ends = append(c.ends, len(c.heads))
	}
	out, _ := c.append(dst, rec)
	return out
}

// append appends rec's canonical form with the last record's keys, or gives dst as it was and
// false when rec lacks one of them.
func (c *RecordCanon) append(dst []byte, rec map[string]any) ([]byte, bool) {
	start := len(dst)
	dst = append(dst, '{')
	from := 0
	for i, k := range c.keys {
		v, ok := rec[k]
		if !ok {
			return dst[:start], false
		}
		dst = append(dst, c.heads[from:c.ends[i]]...)
		from = c.ends[i]
		dst = AppendCanonical(dst, v)
	}
	return append(dst, '}'), true
}

// appendObject appends the canonical form of m, its keys in the order of keys (sorted).
func appendObject(dst []byte, keys []string, m map[string]any) []byte {
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = AppendCanonical(dst, m[k])
	}
	return append(dst, '}')
}

// appendString appends s as a JSON string exactly as json.Marshal writes it (HTML-safe): what
// Canonical has always written (through json.Marshal), without its allocations.
func appendString(dst []byte, s string) []byte { return jsontext.AppendString(dst, s, true) }

func appendNumber(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.AppendInt(dst, int64(f), 10)
	}
	if out, ok := appendCents(dst, f); ok {
		return out
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// appendCents appends f as strconv's shortest form ('g', -1) writes it when f is a number of
// one or two decimals (a price, a weight) from 0.01 up to a million, which it writes without
// an exponent: the integer part, a point, the decimals without a trailing zero. Such an f is
// the double nearest to cents/100 for the integer cents = round(f*100), and no other number of
// two decimals is that near (doubles below a million are far closer than 0.01 to each other),
// so those digits are the shortest that give f back. Other numbers are left to strconv (ok
// false).
func appendCents(dst []byte, f float64) ([]byte, bool) {
	a := math.Abs(f)
	if !(a >= 0.01 && a < 1e6) {
		return dst, false
	}
	cents := math.Round(a * 100)
	if cents/100 != a { // not a number of two decimals (the division is correctly rounded)
		return dst, false
	}
	c := int64(cents)
	if f < 0 {
		dst = append(dst, '-')
	}
	dst = strconv.AppendInt(dst, c/100, 10)
	dst = append(dst, '.', byte('0'+c/10%10))
	if c%10 != 0 {
		dst = append(dst, byte('0'+c%10))
	}
	return dst, true
}

// appendJSONNumber appends a JSON number's canonical form: an integer's or a float's when one
// holds it exactly, so that 18 and json.Number("18.0") are the same; else its exact text, an
// integer in its shortest digits.
func appendJSONNumber(dst []byte, n json.Number) []byte {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return strconv.AppendInt(dst, i, 10)
	}
	if f, ok := exactFloat(n); ok {
		return appendNumber(dst, f)
	}
	r, ok := ratOf(n)
	if !ok {
		return appendString(dst, string(n)) // not a number, or a huge exponent: compared as text
	}
	if r.IsInt() {
		return r.Num().Append(dst, 10)
	}
	return append(dst, strings.ToLower(string(n))...)
}

func formatNumber(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "null"
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// Empty reports whether a value counts as empty for "a non-empty value beats an empty one":
// null, "", an empty list or object.
func Empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// Coerce converts v to the JSON type t ("" keeps it as it is). nil stays nil. It fails when
// the value cannot be represented: "abc" as an integer, 1.5 as an integer.
func Coerce(v any, t string) (any, error) {
	if v == nil || t == "" {
		return normalize(v), nil
	}
	v = normalize(v)
	// A path through a list gives a list of values; each is converted.
	if list, ok := v.([]any); ok && t != schema.Array && t != schema.Object {
		return coerceEach(list, t)
	}
	// A value already of the type is returned as the interface it came in: boxing it again
	// would allocate.
	switch t {
	case schema.String:
		return coerceString(v)
	case schema.Integer:
		return coerceInteger(v)
	case schema.Number:
		return coerceNumber(v)
	case schema.Boolean:
		return coerceBoolean(v)
	case schema.Object:
		if x, ok := v.(map[string]any); ok {
			return x, nil
		}
	case schema.Array:
		if x, ok := v.([]any); ok {
			return x, nil
		}
	default:
		return v, nil
	}
	return nil, cannotBe(v, t)
}

// coerceEach converts each value of list to t.
func coerceEach(list []any, t string) (any, error) {
	out := make([]any, len(list))
	for i, e := range list {
		c, err := Coerce(e, t)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

func coerceString(v any) (any, error) {
	switch x := v.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return formatNumber(x), nil
	case json.Number:
		return string(x), nil
	}
	return nil, cannotBe(v, schema.String)
}

func coerceInteger(v any) (any, error) {
	switch x := v.(type) {
	case int64:
		return v, nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), nil
		}
		if x == math.Trunc(x) {
			return nil, fmt.Errorf("%s cannot be held exactly as an integer", formatNumber(x))
		}
		return nil, fmt.Errorf("%s is not an integer", formatNumber(x))
	case json.Number:
		return exactInteger(x)
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case string:
		s := strings.TrimSpace(x)
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
		if isJSONNumber(s) {
			if v, err := exactInteger(json.Number(s)); err == nil {
				return v, nil
			}
		}
		return nil, fmt.Errorf("%q is not an integer", x)
	}
	return nil, cannotBe(v, schema.Integer)
}

func coerceNumber(v any) (any, error) {
	switch x := v.(type) {
	case int64, float64, json.Number:
		return v, nil
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case string:
		s := strings.TrimSpace(x)
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
		if !isJSONNumber(s) {
			return nil, fmt.Errorf("%q is not a number", x)
		}
		// A text a float64 does not hold exactly stays exact.
		return normalize(json.Number(s)), nil
	}
	return nil, cannotBe(v, schema.Number)
}

func coerceBoolean(v any) (any, error) {
	switch x := v.(type) {
	case bool:
		return v, nil
	case int64:
		if x == 0 || x == 1 {
			return x == 1, nil
		}
	case float64:
		if x == 0 || x == 1 {
			return x == 1, nil
		}
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true", "1", "yes", "y", "t":
			return true, nil
		case "false", "0", "no", "n", "f", "":
			return false, nil
		}
	}
	return nil, fmt.Errorf("%s is not a boolean", Canonical(v))
}

// cannotBe is the error of a value that has no form of type t.
func cannotBe(v any, t string) error {
	return fmt.Errorf("%s cannot be %s", Canonical(v), article(t))
}

// normalize maps the Go types expressions and drivers produce onto the record value types.
func normalize(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case float32:
		return float64(x)
	case uint:
		return int64(x)
	case json.Number:
		// A number an int64 or a float64 holds exactly becomes one; another (an id such as
		// 10000000000000000001) stays its exact text, never a rounded value.
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		if f, ok := exactFloat(x); ok {
			return f
		}
		return x
	case []byte:
		return string(x)
	}
	return v
}

// exactInteger is a JSON number as an integer property's value: an int64 when one holds it, else
// the exact json.Number of an integer beyond int64's range; a fraction cannot be held exactly.
func exactInteger(n json.Number) (any, error) {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return i, nil
	}
	r, ok := ratOf(n)
	if !ok {
		return nil, fmt.Errorf("%s cannot be held exactly as an integer", n)
	}
	if !r.IsInt() {
		return nil, fmt.Errorf("%s is not an integer: it cannot be held exactly as one", n)
	}
	if r.Num().IsInt64() {
		return r.Num().Int64(), nil
	}
	return json.Number(r.Num().String()), nil
}

// isJSONNumber reports whether s is a number in JSON's syntax (no NaN, Inf, hex or spaces).
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - start
	}
	if n := digits(); n == 0 || n > 1 && s[i-n] == '0' {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}
