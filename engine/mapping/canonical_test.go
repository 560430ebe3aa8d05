package mapping

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// valueGen builds record values from a stream of bytes (a fuzzer's input or a random
// source's): every type Canonical knows and some it does not, objects of up to 40 keys (on both
// sides of the number the sorting buffer holds), keys that share long prefixes, differ only
// after eight bytes, hold zero bytes, are empty or not ASCII.
type valueGen struct {
	data []byte
	rnd  *rand.Rand // used when data is nil
}

func (g *valueGen) byte() byte {
	if g.rnd != nil {
		return byte(g.rnd.Uint32())
	}
	if len(g.data) == 0 {
		return 0
	}
	b := g.data[0]
	g.data = g.data[1:]
	return b
}

func (g *valueGen) uint64() uint64 {
	var u uint64
	for range 8 {
		u = u<<8 | uint64(g.byte())
	}
	return u
}

var genKeys = []string{
	"", "a", "b", "id", "sku", "name", "price", "price_eur", "updated", "updated_at", "updated_by",
	"aaaaaaaa", "aaaaaaaab", "aaaaaaaa\x00", "aaaaaaa", "a\x00", "a\x00\x00", "\x00", "\xff", "é", "日本",
	"<&>", `q"uote`, "x\ny", "weight_kg", "A", "Z", "zz", "long property name with spaces",
}

var genStrings = append([]string{"Nordic Roast", "P0000001", "7310865004703", "2025-01-01T00:00:00Z"}, canonicalStrings...)

var genFloats = []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 0.99, 8.9, 18.0, 1e15, 1e15 - 1, -1e15 + 1, 1e21, 1e-7,
	123456789.125, math.MaxFloat64, math.SmallestNonzeroFloat64, math.NaN(), math.Inf(1), math.Inf(-1), 1 << 53, 4.75}

var genNumbers = []json.Number{"0", "-0", "18", "18.0", "1.50", "1e2", "1E+2", "10000000000000000001",
	"1.0000000000000000001e19", "-99999999999999999999", "0.10000000000000000001", "1e999999999", "abc", ""}

func (g *valueGen) key() string {
	b := g.byte()
	if b < 200 {
		return genKeys[int(b)%len(genKeys)]
	}
	n := int(g.byte() % 12)
	var sb strings.Builder
	for range n {
		sb.WriteByte("ab\x00é_z"[g.byte()%7])
	}
	return sb.String()
}

func (g *valueGen) value(depth int) any {
	kind := g.byte() % 16
	if depth > 3 && kind >= 11 {
		kind %= 11
	}
	switch kind {
	case 0:
		return nil
	case 1:
		return g.byte()%2 == 0
	case 2:
		return int64(g.uint64())
	case 3:
		return int(int8(g.byte()))
	case 4:
		return genFloats[int(g.byte())%len(genFloats)]
	case 5:
		return math.Float64frombits(g.uint64())
	case 6:
		return float64(int64(g.uint64()) >> (g.byte() % 64))
	case 7:
		return genNumbers[int(g.byte())%len(genNumbers)]
	case 8:
		return genStrings[int(g.byte())%len(genStrings)]
	case 9:
		return g.key()
	case 10:
		switch g.byte() % 4 {
		case 0:
			return int32(g.uint64())
		case 1:
			return []string{g.key(), "x"}
		case 2:
			return map[string]string{g.key(): "v", "a": "w"}
		}
		return float32(g.byte()) / 4
	case 11, 12:
		l := make([]any, int(g.byte()%5))
		for i := range l {
			l[i] = g.value(depth + 1)
		}
		return l
	}
	return g.object(depth)
}

func (g *valueGen) object(depth int) map[string]any {
	n := int(g.byte()) % max(41>>(2*depth), 3) // nested objects are smaller: the test stays quick
	m := make(map[string]any, n)
	for range n {
		m[g.key()] = g.value(depth + 1)
	}
	return m
}

// TestCanonicalAsBefore: over random values, Canonical, AppendCanonical and RecordCanon write
// exactly what the canonical form always was (refCanonical).
func TestCanonicalAsBefore(t *testing.T) {
	g := &valueGen{rnd: rand.New(rand.NewPCG(1, 2))}
	var rc RecordCanon
	buf := []byte("prefix")
	for i := range 20000 {
		v := g.value(0)
		if i%2 == 0 {
			v = g.object(0)
		}
		checkAsBefore(t, v, &rc, buf)
	}
}

func checkAsBefore(t *testing.T, v any, rc *RecordCanon, buf []byte) {
	t.Helper()
	want := refCanonical(v)
	if got := Canonical(v); !bytes.Equal(got, want) {
		t.Fatalf("Canonical(%#v)\n= %s\nwas %s", v, got, want)
	}
	if got := AppendCanonical(buf[:len(buf):len(buf)], v); !bytes.Equal(got[len(buf):], want) || !bytes.Equal(got[:len(buf)], buf) {
		t.Fatalf("AppendCanonical(%q, %#v)\n= %s\nwas %s", buf, v, got, want)
	}
	if m, ok := v.(map[string]any); ok {
		if got := rc.Append(nil, m); !bytes.Equal(got, want) {
			t.Fatalf("RecordCanon.Append(%#v)\n= %s\nwas %s", v, got, want)
		}
		// Into a buffer with room, after what it holds, after a record of other keys.
		roomy := append(make([]byte, 0, 4096), buf...)
		rc.Append(roomy, map[string]any{"other": 1})
		if got := rc.Append(roomy, m); !bytes.Equal(got[len(buf):], want) || !bytes.Equal(got[:len(buf)], buf) {
			t.Fatalf("RecordCanon.Append(%q, %#v)\n= %s\nwas %s", buf, v, got, want)
		}
	}
}

// TestCanonicalObjectsAsBefore: objects of every size up to and beyond the sorting buffer, and
// of keys that differ only after their first eight bytes or by a trailing zero byte, are
// written as they always were.
func TestCanonicalObjectsAsBefore(t *testing.T) {
	var rc RecordCanon
	for n := 0; n <= 40; n++ {
		m := map[string]any{}
		for i := range n {
			// "k..." keys: the same first eight bytes for every one of them.
			m[strings.Repeat("k", 8)+string(rune('z'-i))] = int64(i)
		}
		checkAsBefore(t, m, &rc, nil)
		pre := map[string]any{"ab": 1, "ab\x00": 2, "ab\x00\x00": 3, "a": 4, "abcdefgh": 5, "abcdefgh\x00": 6, "abcdefg": 7, "": 8}
		for k := range m {
			pre[k] = nil
		}
		checkAsBefore(t, pre, &rc, nil)
	}
}

// FuzzCanonicalAsBefore: whatever value the fuzzer's bytes make, the canonical form is as it
// always was.
func FuzzCanonicalAsBefore(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{15, 12, 9, 1, 9, 2, 8, 3})
	f.Add([]byte("\x0f\x28\xc8\x05abcdefg\x08\x01\xc9\x09\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &valueGen{data: data}
		var rc RecordCanon
		checkAsBefore(t, g.value(0), &rc, []byte("x"))
		checkAsBefore(t, g.object(0), &rc, nil)
	})
}

// TestCanonicalStringAllocates: a text's canonical form, longer than the buffer a number takes,
// is one allocation.
func TestCanonicalStringAllocates(t *testing.T) {
	s := any("Espresso beans from Nordic Roast, item 12 of the catalogue.")
	if n := testing.AllocsPerRun(100, func() { Canonical(s) }); n != 1 {
		t.Errorf("Canonical of a text of %d bytes allocates %v times", len(s.(string)), n)
	}
}

// TestCanonicalNumbersAsBefore: numbers are written as strconv's shortest form wrote them, for
// every number of up to two decimals around where the short cut for them begins and ends, for
// their neighbours a unit in the last place away, and for random doubles.
func TestCanonicalNumbersAsBefore(t *testing.T) {
	check := func(f float64) {
		t.Helper()
		for _, v := range []float64{f, -f, math.Nextafter(f, math.Inf(1)), math.Nextafter(f, math.Inf(-1))} {
			if got, want := Canonical(v), refCanonical(v); !bytes.Equal(got, want) {
				t.Fatalf("Canonical(%v) = %s, was %s", v, got, want)
			}
		}
	}
	for c := int64(0); c < 100000; c++ {
		check(float64(c) / 100)
		check(float64(c) * 0.01)
		check(float64(99900000+c) / 100) // up to and past a million
	}
	for _, f := range []float64{0.005, 0.0099999, 0.01, 0.015, 999999.99, 999999.995, 1e6, 1e6 + 0.01, 0.1 + 0.2, 8.9 - 4.15, 1.005, 2.675, 4.35, 0.07} {
		check(f)
	}
	rnd := rand.New(rand.NewPCG(9, 10))
	for range 100000 {
		check(math.Float64frombits(rnd.Uint64()))
		check(rnd.Float64() * math.Pow(10, float64(rnd.IntN(12)-4)))
	}
}
