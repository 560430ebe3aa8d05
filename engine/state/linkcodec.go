package state

// The compact form of a link row (schema 9). A link of a first sync is written once and read
// by every later run, and a run holds the pages of the link state it touches in its cache, so
// every byte of a row counts a million times:
//
//   - the base is binary, its property keys numbered in base_keys (a key is 20 to 40 bytes of
//     text in every row otherwise), its values compact JSON as the engine gave them, a string
//     without its quotes;
//   - a digest of 32 lower-case hex digits, as the engine makes them, is its 16 bytes;
//   - the time is an integer of nanoseconds, the side made a small integer.
//
// Whatever does not fit these forms is stored as schema 8 stored it (the base as JSON text,
// a digest or a time as text, the side made as text), so that any Link reads back exactly.

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/dataflow-sync/dataflow/internal/jsontext"
)

// binaryBase is the first byte of a base in binary form; a base as JSON text starts with '{'.
//
//	base  = 0x01 uvarint(highest key number) uvarint(count) entry*
//	entry = byte(step<<6 | layout<<3 | kind of the first value) [uvarint(step)] [byte(kind of T)] value*
//	value = uvarint(length) bytes for the kinds rawValue and stringValue, 8 bytes for floatValue
//
// Entries are in the order of their key numbers; step is the number's difference with the
// previous one's (the first one's with 0), 1 to 3 in the entry's first byte (as 0 to 2), or 3
// there and the difference in a uvarint. A base whose keys are numbered in a row, as a flow's
// are, spends one byte on an entry beside its values.
const binaryBase = 0x01

// Layouts of an entry: which of S and T it holds.
const (
	layoutNone = iota // Base{}
	layoutS           // S only
	layoutT           // T only
	layoutST          // S and T, different
	layoutB           // S and T, the same bytes: stored once
)

// Kinds of a value.
const (
	rawValue    = iota // compact JSON as it is
	stringValue        // a JSON string without backslashes: its content, the quotes added back
	trueValue
	falseValue
	nullValue
	floatValue // a number that encoding/json writes from its float64 as it is: the 8 bytes
)

// keyedBase is one property of a base with its key and the key's number.
type keyedBase struct {
	name string
	key  int64
	b    Base
}

// binaryCodec encodes bases in binary form with reused buffers; one per writer.
type binaryCodec struct {
	buf     []byte
	entries []keyedBase
	unknown []string
	float   []byte
	slots   []keyedBase // by key number, for sort
	// order is the keys of the last base encoded, with their numbers, in the order of the
	// numbers: the bases of a flow's links have the same keys, so the next base is looked up
	// key by key in this order, and needs neither numbering nor sorting. A key's number never
	// changes, so the order stays true as long as the codec is given the same numbering.
	order []keyedBase
	// orders counts the orders made; listKeys are the keys of the last base list encoded
	// (encodeList), and perm, for each entry of order number permOrder, the index of its value
	// in such a list.
	orders    int
	listKeys  []string
	perm      []int
	permOrder int
}

// encodeList is encode of a base as a list (Link.SetBaseList, SetBaseForms): b.at(i) is the
// base of b.keys[i]. When the last base encoded had these keys (the codec's order), its values
// are taken in the order of the keys' numbers without a map; ok is false when they are not
// known so, or when the base is not plain: encode the map then.
func (c *binaryCodec) encodeList(b *baseList) (out []byte, ok bool) {
	keys := b.keys
	if len(keys) == 0 || len(keys) != b.size() || len(keys) != len(c.order) {
		return nil, false
	}
	if !c.permFor(keys) {
		return nil, false
	}
	c.entries = c.entries[:0]
	for j, e := range c.order {
		e.b = b.at(c.perm[j])
		c.entries = append(c.entries, e)
	}
	return c.write()
}

// permFor makes perm for keys and the codec's order, unless it is made for them already; it
// is false when keys are not order's keys.
func (c *binaryCodec) permFor(keys []string) bool {
	// The same keys (the slice a flow's links share) and the same order as last time.
	if len(c.listKeys) == len(keys) && &c.listKeys[0] == &keys[0] && c.permOrder == c.orders {
		return true
	}
	at := make(map[string]int, len(keys))
	for i, k := range keys {
		at[k] = i
	}
	if len(at) != len(keys) {
		return false // a key twice
	}
	c.perm = c.perm[:0]
	for _, e := range c.order {
		i, ok := at[e.name]
		if !ok {
			return false
		}
		c.perm = append(c.perm, i)
	}
	c.listKeys, c.permOrder = keys, c.orders
	return true
}

// encode returns the binary form of b, with key the number of a property key. ok is false
// when b has a property that is not plain (see plainBase), which is stored as JSON text.
// unknown lists the keys that have no number, sorted, when there are such (and out is nil):
// the caller numbers them and calls again. The bytes are valid until the next call. A codec
// must be given the same numbering on every call (see order).
func (c *binaryCodec) encode(b map[string]Base, key func(string) (int64, bool)) (out []byte, unknown []string, ok bool) {
	if !c.inOrder(b) {
		c.entries, c.unknown = c.entries[:0], c.unknown[:0]
		var highest int64
		for k, v := range b {
			if !plainBase(v) {
				return nil, nil, false
			}
			n, known := key(k)
			if !known {
				c.unknown = append(c.unknown, k)
				continue
			}
			highest = max(highest, n)
			c.entries = append(c.entries, keyedBase{k, n, v})
		}
		if len(c.unknown) > 0 {
			slices.Sort(c.unknown)
			return nil, c.unknown, true
		}
		c.sort(highest)
		c.order = append(c.order[:0], c.entries...)
		c.orders++
	}
	out, ok = c.write()
	return out, nil, ok
}

// write encodes c.entries, in the order of their key numbers; ok is false when a value is not
// plain.
func (c *binaryCodec) write() (out []byte, ok bool) {
	var highest int64
	if len(c.entries) > 0 {
		highest = c.entries[len(c.entries)-1].key
	}
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
		if e.b.E != nil {
			return nil, false // not plain
		}
		var (
			kind, kindT byte
			f, fT       float64
		)
		if layout != layoutNone {
			// Checked as plainBase checks, once for a value stored once.
			if kind, f, ok = c.classify(s); !ok {
				return nil, false
			}
		}
		if layout == layoutST {
			if kindT, fT, ok = c.classify(t); !ok {
				return nil, false
			}
		}
		out = append(out, head|layout<<3|kind)
		if head == 3<<6 {
			out = binary.AppendUvarint(out, uint64(step))
		}
		if layout == layoutST {
			out = appendValue(appendValue(append(out, kindT), s, kind, f), t, kindT, fT)
		} else if layout != layoutNone {
			out = appendValue(out, s, kind, f)
		}
	}
	c.buf = out
	return out, true
}

// inOrder reports whether b has the keys of order, and then puts its properties in entries in
// that order.
func (c *binaryCodec) inOrder(b map[string]Base) bool {
	if len(b) == 0 || len(b) != len(c.order) {
		return false
	}
	c.entries = c.entries[:0]
	for _, e := range c.order {
		v, ok := b[e.name]
		if !ok {
			return false
		}
		e.b = v
		c.entries = append(c.entries, e)
	}
	return true // as many keys, all of order's: the same keys
}

// sort puts the entries in the order of their keys: by their place in a slice of the key
// numbers when they are about as many as the numbers (a flow's keys are numbered in a row),
// which costs no comparisons.
func (c *binaryCodec) sort(highest int64) {
	if n := len(c.entries); highest > int64(4*n+16) {
		slices.SortFunc(c.entries, func(a, b keyedBase) int { return cmp.Compare(a.key, b.key) })
		return
	}
	if int64(len(c.slots)) <= highest {
		c.slots = make([]keyedBase, highest+1)
	}
	for _, e := range c.entries {
		c.slots[e.key] = e
	}
	c.entries = c.entries[:0]
	for i := range c.slots[:highest+1] {
		if c.slots[i].key != 0 {
			c.entries = append(c.entries, c.slots[i])
			c.slots[i] = keyedBase{}
		}
	}
}

// classify checks that v is valid compact JSON, as compactJSON does, and returns the kind it
// is stored as, with its number for a floatValue: one pass over a string, the commonest value.
func (c *binaryCodec) classify(v []byte) (kind byte, f float64, ok bool) {
	switch {
	case len(v) == 0:
		return 0, 0, false
	case v[0] == '"':
		end, escaped, ok := skipString(v, 0)
		if !ok || end != len(v) {
			return 0, 0, false
		}
		if escaped {
			return rawValue, 0, true
		}
		return stringValue, 0, true
	case string(v) == "true":
		return trueValue, 0, true
	case string(v) == "false":
		return falseValue, 0, true
	case string(v) == "null":
		return nullValue, 0, true
	case v[0] == '-' || isDigit(v[0]):
		if end, _, ok := jsontext.SkipNumber(v, 0); !ok || end != len(v) {
			return 0, 0, false
		}
		// Longer than its 8 bytes, and given back exactly: a float64 that encoding/json wrote.
		if len(v) > 9 {
			if f, err := strconv.ParseFloat(string(v), 64); err == nil {
				c.float = appendJSONFloat(c.float[:0], f)
				if bytes.Equal(c.float, v) {
					return floatValue, f, true
				}
			}
		}
		return rawValue, 0, true
	}
	return rawValue, 0, compactJSON(v)
}

// appendValue appends a value of a kind (its number f for a floatValue).
func appendValue(out, v []byte, kind byte, f float64) []byte {
	switch kind {
	case stringValue:
		v = v[1 : len(v)-1]
	case rawValue:
	case floatValue:
		return binary.LittleEndian.AppendUint64(out, math.Float64bits(f))
	default:
		return out
	}
	return append(binary.AppendUvarint(out, uint64(len(v))), v...)
}

// appendJSONFloat appends a float64 as encoding/json writes it.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 is written e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// highestKey returns the highest key number a base in binary form uses, 0 for another form.
func highestKey(raw []byte) int64 {
	if len(raw) == 0 || raw[0] != binaryBase {
		return 0
	}
	n, w := binary.Uvarint(raw[1:])
	if w <= 0 || n > math.MaxInt64 {
		return 0
	}
	return int64(n)
}

var errShortBase = errors.New("base: the stored base is truncated")

// decodeBinary decodes a base in binary form, with names the keys by number. The values are
// slices of one new buffer.
func decodeBinary(raw []byte, names keyNames) (map[string]Base, error) {
	d := binaryDecoder{raw: raw, p: 1}
	if _, ok := d.uvarint(); !ok {
		return nil, errShortBase
	}
	count, ok := d.uvarint()
	if !ok || count > uint64(len(raw)) {
		return nil, errShortBase
	}
	m := make(map[string]Base, count)
	// The values with their quotes, literals and floats back take at most this many bytes.
	d.buf = make([]byte, 0, len(raw)+int(count)*24)
	var key uint64
	for i := uint64(0); i < count; i++ {
		if d.p >= len(raw) {
			return nil, errShortBase
		}
		head := raw[d.p]
		d.p++
		step := uint64(head>>6) + 1
		if step == 4 {
			var ok bool
			if step, ok = d.uvarint(); !ok {
				return nil, errShortBase
			}
		}
		key += step
		if key >= uint64(len(names)) || !names[key].set {
			return nil, fmt.Errorf("base: the key number %d is not in the state's table of keys", key)
		}
		b, err := d.property(head)
		if err != nil {
			return nil, err
		}
		m[names[key].name] = b
	}
	if d.p != len(raw) {
		return nil, fmt.Errorf("base: %d bytes after the last property", len(raw)-d.p)
	}
	return m, nil
}

// binaryDecoder reads a base in binary form: raw from p on, the values written back as JSON
// into buf.
type binaryDecoder struct {
	raw []byte
	p   int
	buf []byte
}

func (d *binaryDecoder) uvarint() (uint64, bool) {
	n, w := binary.Uvarint(d.raw[min(d.p, len(d.raw)):])
	if w <= 0 {
		return 0, false
	}
	d.p += w
	return n, true
}

// property reads the values of a property whose entry's head byte is head, as its layout
// says: none, the source's, the target's, one for both, or both.
func (d *binaryDecoder) property(head byte) (Base, error) {
	var (
		b   Base
		err error
	)
	switch layout, kind := head>>3&7, head&7; layout {
	case layoutNone:
	case layoutS:
		b.S, err = d.value(kind)
	case layoutT:
		b.T, err = d.value(kind)
	case layoutB:
		b.S, err = d.value(kind)
		b.T = b.S
	case layoutST:
		if d.p >= len(d.raw) {
			return Base{}, errShortBase
		}
		kindT := d.raw[d.p]
		d.p++
		if b.S, err = d.value(kind); err == nil {
			b.T, err = d.value(kindT)
		}
	default:
		err = fmt.Errorf("base: unknown layout %d", layout)
	}
	return b, err
}

// value reads a value of the given kind and gives it as JSON, a slice of buf.
func (d *binaryDecoder) value(kind byte) (json.RawMessage, error) {
	start := len(d.buf)
	switch kind {
	case trueValue:
		d.buf = append(d.buf, "true"...)
	case falseValue:
		d.buf = append(d.buf, "false"...)
	case nullValue:
		d.buf = append(d.buf, "null"...)
	case floatValue:
		if len(d.raw)-d.p < 8 {
			return nil, errShortBase
		}
		f := math.Float64frombits(binary.LittleEndian.Uint64(d.raw[d.p:]))
		d.p += 8
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("base: a number is stored as %v", f)
		}
		d.buf = appendJSONFloat(d.buf, f)
	case rawValue, stringValue:
		n, ok := d.uvarint()
		if !ok || n == 0 && kind == rawValue || n > uint64(len(d.raw)-d.p) {
			return nil, errShortBase
		}
		v := d.raw[d.p : d.p+int(n)]
		d.p += int(n)
		if kind == stringValue {
			d.buf = append(append(append(d.buf, '"'), v...), '"')
		} else {
			d.buf = append(d.buf, v...)
		}
	default:
		return nil, fmt.Errorf("base: unknown kind of value %d", kind)
	}
	return d.buf[start:len(d.buf):len(d.buf)], nil
}

// packID returns the stored form of a target id: the bytes of an even number of lower-case
// hex digits, as systems make ids (24 digits in Squarespace and MongoDB), the text of anything
// else. The index of target ids is only looked up, never read in order, so ids may be blobs.
func packID(s string) any {
	if len(s) < 2 || len(s)%2 != 0 || !lowerHex(s) {
		return s
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return s
	}
	return b
}

// packIDInto is packID writing the bytes into *buf (grown as needed), valid until the next
// call: a Tx writes a target id per link, and SQLite copies what it binds.
func packIDInto(buf *[]byte, s string) any {
	if b, ok := decodeIDInto(buf, s); ok {
		return b
	}
	return s
}

// decodeIDInto writes the bytes of an id of an even number of lower-case hex digits into *buf
// and returns them; ok is false for any other id.
func decodeIDInto(buf *[]byte, s string) (b []byte, ok bool) {
	if len(s) < 2 || len(s)%2 != 0 {
		return nil, false
	}
	b = slices.Grow((*buf)[:0], len(s)/2)[:len(s)/2]
	for i := range b {
		hi, lo := lowerNibble(s[2*i]), lowerNibble(s[2*i+1])
		if hi > 15 || lo > 15 {
			return nil, false
		}
		b[i] = hi<<4 | lo
	}
	*buf = b
	return b, true
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isDigit(c) && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// packDigest returns the stored form of a digest: the 16 bytes of 32 lower-case hex digits
// (written into buf), the text of anything else.
func packDigest(buf []byte, s string) any {
	if !decodeDigest(buf, s) {
		return s
	}
	return buf[:16]
}

// decodeDigest writes the 16 bytes of a digest of 32 lower-case hex digits into buf; it is
// false for anything else. Decoded here rather than by encoding/hex, which would want the text
// as bytes (a copy) and a check of its case first: one pass, no allocation.
func decodeDigest(buf []byte, s string) bool {
	if len(s) != 32 || len(buf) < 16 {
		return false
	}
	b := buf[:16]
	for i := range b {
		hi, lo := lowerNibble(s[2*i]), lowerNibble(s[2*i+1])
		if hi > 15 || lo > 15 {
			return false
		}
		b[i] = hi<<4 | lo
	}
	return true
}

// lowerNibble is the value of a lower-case hex digit, 255 for any other byte: by a table, as
// a run decodes the 64 digits of a link's two digests and those of its target id per record
// (the comparisons cost bench i 0.12 s of CPU at 200k links).
func lowerNibble(c byte) byte { return lowerNibbles[c] }

var lowerNibbles = func() (t [256]byte) {
	for c := range t {
		switch {
		case isDigit(byte(c)):
			t[c] = byte(c) - '0'
		case c >= 'a' && c <= 'f':
			t[c] = byte(c) - 'a' + 10
		default:
			t[c] = 255
		}
	}
	return t
}()

// unpackDigest is the digest (or the target id) of its stored form.
func unpackDigest(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case []byte:
		return hex.EncodeToString(v), nil
	}
	return "", fmt.Errorf("a digest is stored as %T", v)
}

// The range of times stored as nanoseconds since 1970: about the years 1678 to 2262.
var (
	minNanos = time.Unix(0, math.MinInt64).Add(time.Second)
	maxNanos = time.Unix(0, math.MaxInt64).Add(-time.Second)
)

// packTime is the stored form of a time: nil for none, its nanoseconds since 1970 (UTC),
// else its text.
func packTime(t time.Time) any {
	switch {
	case t.IsZero():
		return nil
	case t.Before(minNanos) || t.After(maxNanos):
		return formatTime(t)
	}
	return t.UnixNano()
}

func unpackTime(v any) (time.Time, error) {
	switch v := v.(type) {
	case nil:
		return time.Time{}, nil
	case int64:
		return time.Unix(0, v).UTC(), nil
	case string:
		return parseTime(v)
	}
	return time.Time{}, fmt.Errorf("a time is stored as %T", v)
}

// packMade is the stored form of Link.Made: 0 for "", 1 for Source, 2 for Target, else the
// text.
func packMade(s string) any {
	switch s {
	case "":
		return int64(0)
	case Source:
		return int64(1)
	case Target:
		return int64(2)
	}
	return s
}

func unpackMade(v any) (string, error) {
	switch v := v.(type) {
	case int64:
		switch v {
		case 0:
			return "", nil
		case 1:
			return Source, nil
		case 2:
			return Target, nil
		}
	case string:
		return v, nil
	}
	return "", fmt.Errorf("the side made is stored as %v", v)
}
