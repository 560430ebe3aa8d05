package mapping

import (
	"encoding/json"
	"math"
	"testing"
)

// canonicalStrings are texts whose JSON needs every kind of escape json.Marshal makes.
var canonicalStrings = []string{
	"", "plain", "Item nº 7", `quote " and \ backslash`, "<b>&amp;</b>", "tab\tnew\nline\rcr\bbs\fff",
	"\x00\x01\x1f\x7f", "line\u2028para\u2029", "bad \xff utf-8 \xc3", "emoji 🫖 and 日本", "\xed\xa0\x80",
}

// TestCanonicalStringsAsMarshal pins Canonical's text to what it was when it called
// json.Marshal per string: stored bases and digests depend on every byte.
func TestCanonicalStringsAsMarshal(t *testing.T) {
	for _, s := range canonicalStrings {
		want, _ := json.Marshal(s)
		if got := Canonical(s); string(got) != string(want) {
			t.Errorf("Canonical(%q) = %s, want %s", s, got, want)
		}
	}
}

func FuzzCanonicalString(f *testing.F) {
	for _, s := range canonicalStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := Canonical(s); string(got) != string(want) {
			t.Fatalf("Canonical(%q) = %s, want %s", s, got, want)
		}
		wantObj, _ := json.Marshal(map[string]string{s: s})
		if got := Canonical(map[string]any{s: s}); string(got) != string(wantObj) {
			t.Fatalf("Canonical of an object keyed %q = %s, want %s", s, got, wantObj)
		}
	})
}

func TestCanonical(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{nil, "null"},
		{true, "true"},
		{int64(-42), "-42"},
		{42, "42"},
		{18.0, "18"},
		{0.99, "0.99"},
		{1e15, "1e+15"},
		{-0.0, "0"},
		{math.NaN(), "null"},
		{math.Inf(1), "null"},
		{"a<b", `"a\u003cb"`},
		{[]any{}, "[]"},
		{map[string]any{}, "{}"},
		{[]any{int64(1), "x", nil, []any{false}}, `[1,"x",null,[false]]`},
		{map[string]any{"b": 1.5, "a": map[string]any{"z": nil, "y": "é"}, "&": int64(1)}, `{"\u0026":1,"a":{"y":"é","z":null},"b":1.5}`},
		{int32(7), "7"},
		{json.Number("1.50"), "1.50"},
		{[]string{"x"}, `["x"]`},
	} {
		if got := Canonical(c.v); string(got) != c.want {
			t.Errorf("Canonical(%#v) = %s, want %s", c.v, got, c.want)
		}
	}
	// A record of more properties than the sorting buffer holds on the stack.
	big := map[string]any{}
	for i := range 20 {
		big[string(rune('a'+i))] = int64(i)
	}
	got := Canonical(big)
	var back map[string]int
	if err := json.Unmarshal(got, &back); err != nil || len(back) != 20 || back["t"] != 19 {
		t.Errorf("Canonical of 20 properties = %s (%v)", got, err)
	}
	if prefix := `{"a":0,"b":1,`; string(got[:len(prefix)]) != prefix {
		t.Errorf("Canonical of 20 properties = %s, keys not sorted", got)
	}
}

func TestAppendCanonicalReusesBuffer(t *testing.T) {
	buf := make([]byte, 0, 256)
	out := AppendCanonical(buf[:0], map[string]any{"a": "x"})
	if string(out) != `{"a":"x"}` || &out[0] != &buf[:1][0] {
		t.Errorf("AppendCanonical = %s, not in the given buffer", out)
	}
	out = AppendCanonical(out, int64(1))
	if string(out) != `{"a":"x"}1` {
		t.Errorf("AppendCanonical appended %s", out)
	}
}

// RecordCanon writes what Canonical writes, for records with the same keys, other keys, fewer
// and more, in any sequence.
func TestRecordCanonAsCanonical(t *testing.T) {
	records := []map[string]any{
		{"b": 1.5, "a": "x", "c": nil},
		{"c": []any{"q"}, "a": "y", "b": int64(2)},
		{"a": "z", "b": 3.0, "d": true}, // as many keys, one other
		{"a": "z"},
		{},
		{"b": map[string]any{"y": 1, "x": 2}, "a": "<&>", "c": 0.99, "d": false, "e": "é"},
		{"e": 1, "d": 2, "c": 3, "b": 4, "a": 5},
	}
	var c RecordCanon
	for round := range 2 {
		for i, rec := range records {
			if got, want := string(c.Append(nil, rec)), string(Canonical(rec)); got != want {
				t.Errorf("round %d, record %d: Append = %s, Canonical = %s", round, i, got, want)
			}
		}
	}
}
