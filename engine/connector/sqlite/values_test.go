package sqlite

import (
	"encoding/json"
	"github.com/dataflow-sync/dataflow/internal/jsontext"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/schema"
)

func prop(types ...string) *schema.Property { return &schema.Property{Types: types} }

func TestKindOf(t *testing.T) {
	cases := []struct {
		declared string
		p        *schema.Property
		want     kind
	}{
		{"INTEGER", nil, plain},
		{"BOOLEAN", nil, boolean},
		{"bool", nil, boolean},
		{"TEXT", prop(schema.Boolean), boolean}, // the schema says what '0'/'1' mean
		{"TEXT", prop(schema.Object, schema.Null), jsonObj},
		{"TEXT", prop(schema.Array), jsonArr},
		{"TEXT", prop(schema.String, schema.Object), plain}, // text may be plain text: not JSON
		{"BLOB", nil, blob},
		{"BLOB", prop(schema.Object), jsonObj},
		{"", nil, plain},
		{"DATETIME", prop(schema.String), plain},
	}
	for _, c := range cases {
		if got := kindOf(c.declared, c.p); got != c.want {
			t.Errorf("kindOf(%q, %v) = %d, want %d", c.declared, c.p, got, c.want)
		}
	}
}

func TestFromSQL(t *testing.T) {
	cases := []struct {
		k    kind
		in   any
		want any
	}{
		{plain, nil, nil},
		{plain, int64(7), int64(7)},
		{plain, 0.99, 0.99},
		{plain, "2024-09-02T08:14:00Z", "2024-09-02T08:14:00Z"},
		{plain, []byte{0, 1, 0xff}, "AAH/"},
		{blob, []byte("hi"), "aGk="},
		{boolean, int64(1), true},
		{boolean, int64(0), false},
		{boolean, int64(2), int64(2)}, // not a boolean: kept, so nothing is lost
		{boolean, 1.0, true},
		{boolean, "1", true},
		{boolean, "False", false},
		{boolean, "maybe", "maybe"},
		{jsonObj, `{"b":[1,2.5,"x"],"a":null,"big":12345678901234567890,"n":-0.1}`,
			map[string]any{"a": nil, "b": []any{int64(1), 2.5, "x"}, "big": json.Number("12345678901234567890"), "n": -0.1}},
		{jsonArr, `[]`, []any{}},
		{jsonArr, []byte(`[true]`), []any{true}},
		{jsonObj, `not json`, "not json"}, // kept as text rather than lost
		{jsonObj, `{} {}`, "{} {}"},
	}
	for _, c := range cases {
		if got := fromSQL(c.k, c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("fromSQL(%d, %#v) = %#v, want %#v", c.k, c.in, got, c.want)
		}
	}
}

func TestToSQL(t *testing.T) {
	cases := []struct {
		k    kind
		in   any
		want any
		err  string
	}{
		{plain, nil, nil, ""},
		{plain, true, int64(1), ""},
		{boolean, false, int64(0), ""},
		{plain, 19.9, 19.9, ""},
		{plain, float32(0.99), 0.99, ""},
		{plain, 42, int64(42), ""},
		{plain, uint64(math.MaxUint64), nil, "18446744073709551615 does not fit a SQLite integer"},
		{plain, math.NaN(), nil, "NaN is not a number JSON can hold"},
		{plain, json.Number("8.90"), 8.9, ""},
		{plain, json.Number("12"), int64(12), ""},
		{plain, json.Number("10000000000000000001"), nil, "10000000000000000001 cannot be held exactly by a SQLite number (a 64-bit integer or a double); map it to a TEXT column as a string"},
		{plain, json.Number("x1"), nil, `"x1" is not a number`},
		{jsonArr, []any{json.Number("10000000000000000001"), json.Number("0.1000000000000000000001")}, `[10000000000000000001,0.1000000000000000000001]`, ""},
		{plain, "x", "x", ""},
		{blob, "aGk=", []byte("hi"), ""},
		{blob, "!", nil, "the column holds bytes: write them as standard base64 text (illegal base64 data at input byte 0)"},
		{jsonObj, map[string]any{"z": 1, "a": map[string]any{"y": "<&>", "b": 0.99}}, `{"a":{"b":0.99,"y":"<&>"},"z":1}`, ""},
		{jsonArr, []any{1e21, 1e-7, int64(-3)}, `[1e+21,1e-7,-3]`, ""},
		{jsonArr, "text", `"text"`, ""},
		{plain, map[string]any{"k": []any{}}, `{"k":[]}`, ""},
		{plain, struct{}{}, nil, "cannot store a value of type struct {}"},
	}
	for _, c := range cases {
		got, err := toSQL(c.k, c.in)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if !reflect.DeepEqual(got, c.want) || msg != c.err {
			t.Errorf("toSQL(%d, %#v) = %#v, %q; want %#v, %q", c.k, c.in, got, msg, c.want, c.err)
		}
	}
}

// Every float64 survives the trip through a JSON column: encoded in its shortest form and
// decoded to the same bits.
func TestJSONFloatsExact(t *testing.T) {
	for _, f := range []float64{0.99, 19.9, 8.9, 0.1 + 0.2, math.MaxFloat64, math.SmallestNonzeroFloat64, -1.5e-300, 1 << 53, 123456.789} {
		s, err := toSQL(jsonArr, []any{f})
		if err != nil {
			t.Fatal(err)
		}
		got := fromSQL(jsonArr, s).([]any)[0]
		want := any(f)
		if f == math.Trunc(f) && math.Abs(f) < 1<<63 {
			want = int64(f) // an integral number is written without a fraction and read as an integer
		}
		if got != want {
			t.Errorf("%s: %v came back as %#v", strconv.FormatFloat(f, 'g', -1, 64), s, got)
		}
	}
}

func TestMergeObject(t *testing.T) {
	stored := map[string]any{"a": int64(1), "b": map[string]any{"x": "1", "y": "2"}, "c": []any{int64(1)}, "d": "scalar"}
	patch := map[string]any{"b": map[string]any{"y": nil, "z": "3"}, "c": []any{}, "d": map[string]any{"now": "object"}, "e": true}
	want := map[string]any{"a": int64(1), "b": map[string]any{"x": "1", "y": nil, "z": "3"}, "c": []any{}, "d": map[string]any{"now": "object"}, "e": true}
	if got := mergeObject(stored, patch); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	if stored["b"].(map[string]any)["y"] != "2" {
		t.Fatal("the stored object was modified")
	}
	if got := mergeObject(nil, map[string]any{"a": int64(1)}); !reflect.DeepEqual(got, map[string]any{"a": int64(1)}) {
		t.Fatal(got)
	}
}

func TestIDString(t *testing.T) {
	for in, want := range map[any]string{int64(42): "42", "ALFKI": "ALFKI", 42.0: "42", 1.5: "1.5", 7: "7", nil: ""} {
		if got := idString(in); got != want {
			t.Errorf("idString(%#v) = %q, want %q", in, got, want)
		}
	}
	a, b := newTextID(), newTextID()
	if len(a) != 24 || a == b {
		t.Fatalf("%q %q", a, b)
	}
}

// decodeFast decodes what it takes exactly as encoding/json does, and leaves the rest to it.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"b":[1,2.5,"x"],"a":null,"big":12345678901234567890,"n":-0.1}`, `[]`, `[true]`, `not json`, `{} {}`, `{}]`,
		` {"a" : [ 1 , { } ] } `, `"a\"b\\c\/d\b\f\n\r\t"`, `"\u00e9\ud83d\ude00"`, "\"\xff\"", `1e400`, `-0`, `0.0`, `1E+2`,
		`{"a":1,"a":2}`, `[1,]`, `{"a"}`, `01`, `-`, `1.`, `.5`, `tru`, `nul`, "\"a\x01\"", `{"a":{"b":{"c":[[[]]]}}}`,
		`9223372036854775807`, `9223372036854775808`, `-9223372036854775808`, `"é"`, `{"é":"ü"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, wantErr := decodeJSONStd(b)
		got, err := decodeJSON(b)
		if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
			t.Fatalf("decodeJSON(%q): error %v, want %v", b, err, wantErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeJSON(%q) = %#v, want %#v", b, got, want)
		}
		if v, ok := decodeFast(b); ok && !reflect.DeepEqual(v, want) {
			t.Fatalf("decodeFast(%q) = %#v, want %#v", b, v, want)
		}
	})
}

// A JSON column's numbers are read exactly: one that neither an int64 nor a float64 holds is
// its json.Number, never a rounded float (an id of 10000000000000000001 is not 1e19).
func TestDecodeJSONKeepsNumbersExact(t *testing.T) {
	for _, in := range []string{`[10000000000000000001]`, `{"a":[1,10000000000000000001]}`, `[0.1000000000000000000001, 1e400]`} {
		got, err := decodeJSON([]byte(in))
		if err != nil {
			t.Fatalf("decodeJSON(%s): %v", in, err)
		}
		back, err := jsontext.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.ReplaceAll(in, " ", ""); string(back) != want {
			t.Errorf("decodeJSON(%s) = %#v, written back as %s", in, got, back)
		}
	}
}
