package state

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// numbering numbers keys as a Tx does, for the codec's tests.
type numbering struct {
	ids   map[string]int64
	names keyNames
}

func (n *numbering) known(k string) (int64, bool) {
	id, ok := n.ids[k]
	return id, ok
}

func (n *numbering) add(keys []string) {
	if n.ids == nil {
		n.ids, n.names = map[string]int64{}, keyNames{{}}
	}
	for _, k := range keys {
		n.ids[k] = int64(len(n.names))
		n.names = append(n.names, keyName{k, true})
	}
}

// binaryRoundTrip encodes b in binary form and decodes it; ok is false for a base the binary
// form does not hold.
func binaryRoundTrip(t *testing.T, c *binaryCodec, n *numbering, b map[string]Base) (map[string]Base, bool) {
	t.Helper()
	out, unknown, ok := c.encode(b, n.known)
	if len(unknown) > 0 {
		n.add(unknown)
		out, unknown, ok = c.encode(b, n.known)
	}
	if !ok {
		return nil, false
	}
	if len(unknown) > 0 || out[0] != binaryBase {
		t.Fatalf("encode(%v) = %q, unknown %q", b, out, unknown)
	}
	if h := highestKey(out); h >= int64(len(n.names)) {
		t.Fatalf("highest key %d of %d", h, len(n.names))
	}
	got, err := decodeBinary(append([]byte(nil), out...), n.names)
	if err != nil {
		t.Fatalf("decode(encode(%v)): %v", b, err)
	}
	return got, true
}

// stored is what a Store gives back of a base: an absent or empty value is absent.
func storedForm(b map[string]Base) map[string]Base {
	m := make(map[string]Base, len(b))
	for k, v := range b {
		if len(v.S) == 0 {
			v.S = nil
		}
		if len(v.T) == 0 {
			v.T = nil
		}
		m[k] = v
	}
	return m
}

// TestBinaryBaseRoundTrip: the binary form gives back exactly the base it was given (which the
// JSON form gives back too), and refuses what it cannot hold, which is stored as JSON.
func TestBinaryBaseRoundTrip(t *testing.T) {
	var (
		c binaryCodec
		n numbering
	)
	bases := append([]map[string]Base{benchBase()}, codecBases...)
	bases = append(bases,
		map[string]Base{"floats": {S: json.RawMessage(`23.450000000000003`), T: json.RawMessage(`-1.2345678901234567e-7`)},
			"ints":           {S: json.RawMessage(`123456789012`), T: json.RawMessage(`12345678901234567890`)},
			"not as written": {S: json.RawMessage(`1.0000000000`), T: json.RawMessage(`1E+21`)},
			"big":            {S: json.RawMessage(`1e+21`), T: json.RawMessage(`100000000000000000000`)}},
		map[string]Base{"escaped": {S: json.RawMessage(`"a\"b"`), T: json.RawMessage(`"\\"`)}, "empty string": {S: json.RawMessage(`""`)}},
	)
	for _, b := range bases {
		got, ok := binaryRoundTrip(t, &c, &n, b)
		if !ok {
			for _, v := range b {
				if !plainBase(v) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("encode(%v) refused a plain base", b)
			}
			continue
		}
		if want := storedForm(b); !reflect.DeepEqual(got, want) {
			t.Errorf("decode(encode(%v)) =\n %v\nwant\n %v", b, got, want)
		}
	}
}

// The benchmark's base, 12 properties, takes a little more than its values.
func TestBinaryBaseSize(t *testing.T) {
	var (
		c binaryCodec
		n numbering
	)
	b := benchBase()
	n.add(nil)
	out, unknown, _ := c.encode(b, n.known)
	n.add(unknown)
	out, _, _ = c.encode(b, n.known)
	values := 0
	for _, v := range b {
		values += len(v.S)
	}
	// 3 bytes of head, an entry's byte and a length byte per property, strings without quotes.
	if len(out) > values+3+2*len(b) {
		t.Errorf("the binary base of %d bytes of values takes %d bytes: %q", values, len(out), out)
	}
}

func FuzzBinaryBase(f *testing.F) {
	var (
		c binaryCodec
		n numbering
	)
	f.Add("name", []byte(`"x"`), []byte(`"y"`), "other", []byte(`23.450000000000003`))
	f.Add("a<b", []byte(`{"a":1}`), []byte(nil), "\u2028", []byte(`[`))
	f.Add("n", []byte(`-0`), []byte(`1e-7`), "m", []byte(`null`))
	f.Fuzz(func(t *testing.T, k1 string, s1, t1 []byte, k2 string, s2 []byte) {
		b := map[string]Base{k1: {S: s1, T: t1}, k2: {S: s2}}
		if got, ok := binaryRoundTrip(t, &c, &n, b); ok && !reflect.DeepEqual(got, storedForm(b)) {
			t.Fatalf("decode(encode(%v)) = %v", b, got)
		}
	})
}

// FuzzBinaryBaseDecode: any bytes decode to a base or an error, never a panic.
func FuzzBinaryBaseDecode(f *testing.F) {
	var (
		c binaryCodec
		n numbering
	)
	n.add([]string{"a", "b", "c"})
	for _, b := range codecBases {
		if out, _, ok := c.encode(b, func(string) (int64, bool) { return 2, true }); ok && len(b) < 2 {
			f.Add(append([]byte(nil), out...))
		}
	}
	f.Add([]byte{binaryBase, 3, 2, 0x21, 1, 'x', 0x45, 1, '1', 2})
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) == 0 || raw[0] != binaryBase {
			return
		}
		highestKey(raw)
		if b, err := decodeBinary(raw, n.names); err == nil && b == nil {
			t.Fatalf("decode(%q) gave a nil map", raw)
		}
	})
}

func TestPackedFields(t *testing.T) {
	for _, s := range []string{"", "0123456789abcdef0123456789abcdef", "0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcde", "zz",
		"0123456789abcdef0123456789abcdeg", "0123456789abcdef0123456789abcde/", "f0e1d2c3b4a5968778695a4b3c2d1e0f"} {
		var buf [16]byte
		packed := packDigest(buf[:], s)
		if got, err := unpackDigest(packed); err != nil || got != s {
			t.Errorf("digest %q comes back as %q, %v", s, got, err)
		}
		b, isBytes := packed.([]byte)
		if compact := len(s) == 32 && lowerHex(s); isBytes != compact || isBytes && len(b) != 16 {
			t.Errorf("digest %q is stored as %T %v, want 16 bytes only for 32 lower-case hex digits", s, packed, packed)
		}
	}
	for _, s := range []string{"a", "ab", "0a1b", "000000000000000000000000", "5f3c2a1b9e8d7c6b5a493827", "A0", "abc", "s1", "-1"} {
		if got, err := unpackDigest(packID(s)); err != nil || got != s {
			t.Errorf("id %q comes back as %q, %v", s, got, err)
		}
	}
	for _, tm := range []time.Time{{}, t0, time.Unix(0, 0).UTC(), time.Date(1601, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)} {
		if got, err := unpackTime(packTime(tm)); err != nil || !got.Equal(tm) || got.Location() != time.UTC && !tm.IsZero() {
			t.Errorf("time %v comes back as %v, %v", tm, got, err)
		}
	}
	for _, m := range []string{"", Source, Target, "other"} {
		if got, err := unpackMade(packMade(m)); err != nil || got != m {
			t.Errorf("made %q comes back as %q, %v", m, got, err)
		}
	}
	if _, err := unpackMade(int64(7)); err == nil || err.Error() != "the side made is stored as 7" {
		t.Errorf("made 7: %v", err)
	}
}

// TestPackIDInto: the target id written into a Tx's buffer is stored as packID stores it.
func TestPackIDInto(t *testing.T) {
	var buf []byte
	for _, id := range []string{"", "a", "ab", "AB", "0g", "00ff", "abc", "65a1f0c2d3e4b5a697887766", "x1", "ffff", "t1"} {
		want, got := packID(id), packIDInto(&buf, id)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("packIDInto(%q) = %#v, packID gives %#v", id, got, want)
		}
	}
}
