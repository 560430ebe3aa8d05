package mapping

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/schema"
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
		// JSON numbers: as the integer or float that holds them exactly, else their exact text.
		{json.Number("1.50"), "1.5"},
		{json.Number("18.0"), "18"},
		{json.Number("18"), "18"},
		{json.Number("10000000000000000001"), "10000000000000000001"},
		{json.Number("1.0000000000000000001e19"), "10000000000000000001"},
		{json.Number("-99999999999999999999"), "-99999999999999999999"},
		{json.Number("0.10000000000000000001"), "0.10000000000000000001"},
		{json.Number("1e999999999"), `"1e999999999"`},
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

// TestJSONNumbersExact: a JSON number that neither int64 nor float64 holds exactly (an id such
// as 10000000000000000001, which a float rounds to 1e19, another record's id) keeps its exact
// value through coercion, ids and comparison; one a property's type cannot hold is an error,
// never a rounded value.
func TestJSONNumbersExact(t *testing.T) {
	big := json.Number("10000000000000000001")
	for _, tc := range []struct {
		v       any
		typ     string
		want    any
		wantErr string
	}{
		{big, schema.String, "10000000000000000001", ""},
		{big, schema.Integer, big, ""},
		{big, schema.Number, big, ""},
		{big, "", big, ""},
		{json.Number("1.0000000000000000001e19"), schema.Integer, big, ""},
		{json.Number("-99999999999999999999"), schema.Integer, json.Number("-99999999999999999999"), ""},
		{json.Number("10.0000000000000000001"), schema.Integer, nil, "10.0000000000000000001 is not an integer: it cannot be held exactly as one"},
		{json.Number("10.0000000000000000001"), schema.Number, json.Number("10.0000000000000000001"), ""},
		{json.Number("10.0000000000000000001"), schema.String, "10.0000000000000000001", ""},
		{json.Number("1e999999999"), schema.Integer, nil, "1e999999999 cannot be held exactly as an integer"},
		{json.Number("42"), schema.Integer, int64(42), ""},
		{json.Number("1.50"), schema.Number, 1.5, ""},
		{json.Number("12.5"), schema.Integer, nil, "12.5 is not an integer"},
		// Texts of such numbers, as a database or a CSV gives them, stay exact too.
		{"10000000000000000001", schema.Integer, big, ""},
		{" 10000000000000000001 ", schema.Number, big, ""},
		{"0.1", schema.Number, 0.1, ""},
		{"NaN", schema.Number, nil, `"NaN" is not a number`},
		{"Inf", schema.Number, nil, `"Inf" is not a number`},
		{"0x10", schema.Number, nil, `"0x10" is not a number`},
		// A float that is an integer only a float holds.
		{1e19, schema.Integer, nil, "1e+19 cannot be held exactly as an integer"},
	} {
		got, err := Coerce(tc.v, tc.typ)
		switch {
		case tc.wantErr != "":
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("Coerce(%#v, %q) = %#v, %v; want the error %q", tc.v, tc.typ, got, err, tc.wantErr)
			}
		case err != nil || got != tc.want:
			t.Errorf("Coerce(%#v, %q) = %#v, %v; want %#v", tc.v, tc.typ, got, err, tc.want)
		}
	}
	// Ids and merge keys are compared as text: the exact digits.
	if got := IDString(big); got != "10000000000000000001" {
		t.Errorf("IDString = %q", got)
	}
	if a, b := Canonical(map[string]any{"n": json.Number("18.0")}), Canonical(map[string]any{"n": int64(18)}); string(a) != string(b) {
		t.Errorf("18.0 and 18 differ: %s, %s", a, b)
	}
	if a, b := Canonical(big), Canonical(1e19); string(a) == string(b) {
		t.Errorf("10000000000000000001 and 1e19 are the same: %s", a)
	}
}

// TestJSONNumbersInExpressions: an expression sees such a number as its exact text (a
// json.Number): string() gives it, int() and float() fail rather than round.
func TestJSONNumbersInExpressions(t *testing.T) {
	env := NewEnv(record())
	rec := map[string]any{"stock": json.Number("10000000000000000001"), "name": "x"}
	for _, tc := range []struct {
		src, typ string
		want     any
		wantErr  string
	}{
		{`string(stock)`, schema.String, "10000000000000000001", ""},
		{`stock`, schema.Integer, json.Number("10000000000000000001"), ""},
		{`stock ?? 0`, schema.String, "10000000000000000001", ""},
		{`int(stock)`, schema.Integer, nil, "stock→stock: cannot convert 10000000000000000001 to an integer: it cannot be held exactly"},
		{`float(stock)`, schema.Number, nil, "stock→stock: cannot convert 10000000000000000001 to a number: it cannot be held exactly"},
		{`stock + 1`, schema.Number, nil, "stock→stock: cannot apply + to a number that no integer or float holds exactly; string(...) gives its digits (at column 7)"},
		{`2 * stock`, schema.Number, nil, "stock→stock: cannot apply * to a number that no integer or float holds exactly; string(...) gives its digits (at column 3)"},
		{`stock == 1`, schema.Boolean, nil, "stock→stock: a number that no integer or float holds exactly cannot be used here; string(...) gives its digits (at column 7)"},
	} {
		var ds diag.Diagnostics
		prog := compileExpr(str(tc.src), env, exprKind{key: "to_target"}, &ds)
		if prog == nil {
			t.Errorf("%s: %v", tc.src, ds)
			continue
		}
		p := &Property{Source: "stock", Target: "stock", TargetType: tc.typ, ToTarget: prog}
		got, err := p.TargetValue(rec, nil)
		switch {
		case tc.wantErr != "":
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%s = %#v, %v; want the error %q", tc.src, got, err, tc.wantErr)
			}
		case err != nil || got != tc.want:
			t.Errorf("%s = %#v, %v; want %#v", tc.src, got, err, tc.want)
		}
	}
	// Without an expression the value is copied exactly.
	p := &Property{Source: "stock", Target: "stock", TargetType: schema.String, sourceSegs: []string{"stock"}}
	if got, err := p.TargetValue(rec, nil); err != nil || got != "10000000000000000001" {
		t.Errorf("copied: %#v, %v", got, err)
	}
}
