package state

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// oldDecodeBase is how bases are decoded by encoding/json: the reference baseCodec must match.
func oldDecodeBase(s []byte) (map[string]Base, error) {
	m := make(map[string]Base)
	if len(s) == 0 || string(s) == "{}" {
		return m, nil
	}
	var folded map[string]storedBase
	if err := json.Unmarshal(s, &folded); err != nil {
		return nil, err
	}
	for k, v := range folded {
		m[k] = v.unfold()
	}
	return m, nil
}

var codecBases = []map[string]Base{
	nil,
	{},
	{"name": {S: json.RawMessage(`"Name 1"`), T: json.RawMessage(`"Name 1"`)}},
	{"only_t": {T: json.RawMessage(`0`)}, "cleared": {S: json.RawMessage(`null`), T: json.RawMessage(`""`)}, "none": {}},
	{"html <&>": {S: json.RawMessage(`{"email":"a<b>&c@example.com","n":[1,-2.5e+3,true,false,null]}`)}},
	{"ünïcode – 😀": {S: json.RawMessage(`"Ærlig talt – 😀"`), T: json.RawMessage(`"\u00c6\n\"\\\/"`)}},
	{"line\u2028sep": {S: json.RawMessage(`1`)}, "ctl\x01\t\"\\": {S: json.RawMessage(`2`)}, "bad \xff": {S: json.RawMessage(`3`)}},
	{"p": {S: json.RawMessage(` [1, 2] `), T: json.RawMessage("{\"a\" :\n1}")}}, // not compact: encoding/json compacts
	{"p": {S: json.RawMessage(`{`)}},            // invalid: encoding/json's error
	{"p": {S: json.RawMessage(`01`)}},           // invalid number
	{"p": {S: json.RawMessage(`"\x01"`)}},       // control character in a string
	{"p": {S: json.RawMessage("\"\xff\xfe\"")}}, // invalid UTF-8 in a string is kept as it is
	{"→": {S: json.RawMessage(`[[[[{"a":[{}]}]]]]`), T: json.RawMessage(`-0.0E-0`)}},
}

// A value the same on both sides is stored once, and read back on both.
func TestBaseStoresEqualValuesOnce(t *testing.T) {
	var c baseCodec
	b := map[string]Base{"same": {S: json.RawMessage(`"x"`), T: json.RawMessage(`"x"`)}, "other": {S: json.RawMessage(`1`), T: json.RawMessage(`"1"`)},
		"source only": {S: json.RawMessage(`2`)}, "target only": {T: json.RawMessage(`3`)}}
	got, err := c.encode(b)
	if want := `{"other":{"s":1,"t":"1"},"same":{"b":"x"},"source only":{"s":2},"target only":{"t":3}}`; got != want || err != nil {
		t.Errorf("encode = %s, %v; want %s", got, err, want)
	}
	back, err := c.decode([]byte(got))
	if err != nil || !reflect.DeepEqual(back, b) {
		t.Errorf("decode = %v, %v; want %v", back, err, b)
	}
}

// TestBaseCodecAsJSON: the codec writes what encoding/json wrote, errors included, and reads
// back what encoding/json reads.
func TestBaseCodecAsJSON(t *testing.T) {
	var c baseCodec
	for _, b := range codecBases {
		checkEncode(t, &c, b)
	}
	// A Base with more than S and T set (a list's elements) goes through encoding/json.
	var b Base
	rv := reflect.ValueOf(&b).Elem()
	if rv.NumField() > 2 {
		f := rv.Field(2)
		switch f.Kind() {
		case reflect.Pointer:
			f.Set(reflect.New(f.Type().Elem()))
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		}
		b.S = json.RawMessage(`1`)
		checkEncode(t, &c, map[string]Base{"list": b, "plain": {S: json.RawMessage(`2`)}})
	}
}

func checkEncode(t *testing.T, c *baseCodec, b map[string]Base) {
	t.Helper()
	want, wantErr := encodeBaseJSON(b)
	if len(b) == 0 {
		want = "{}"
	}
	got, err := c.encode(b)
	if got != want || (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
		t.Fatalf("encode(%v) = %s, %v\nwant %s, %v", b, got, err, want, wantErr)
	}
	if err != nil {
		return
	}
	checkDecode(t, c, []byte(got))
}

func checkDecode(t *testing.T, c *baseCodec, s []byte) {
	t.Helper()
	want, wantErr := oldDecodeBase(s)
	got, err := c.decode(append([]byte(nil), s...))
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("decode(%q): error %v, want %v", s, err, wantErr)
	}
	if err != nil {
		if err.Error() != "base: "+wantErr.Error() {
			t.Fatalf("decode(%q): error %v, want base: %v", s, err, wantErr)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decode(%q) =\n %#v\nwant\n %#v", s, got, want)
	}
}

func TestBaseDecodeAsJSON(t *testing.T) {
	var c baseCodec
	for _, s := range []string{
		``, `{}`, `{"a":{}}`, `{"a":{"s":1}}`, `{"a":{"t":1,"s":2}}`, `{"a":{"s":1,"s":2}}`, `{"a":{"s":1},"a":{"t":2}}`,
		`{"a":{"S":1}}`, `{"a":{"x":1}}`, `{"a":null}`, `{"a":1}`, `{ "a":{"s":1}}`, `{"a":{"s":1}} `, `{"a":{"s":1}}x`,
		`{"a":{"b":1}}`, `{"a":{"b":1,"t":2}}`, `{"a":{"s":2,"b":1}}`, `{"a":{"b":null}}`, `{"a":{"b":1,"b":[2]}}`, `{"a":{"B":1}}`,
		`{"a":{"b":1,"e":{"p":[0]}}}`, `{"a\u00e9":{"b":1}}`,
		`{"a\u00e9":{"s":1}}`, `{"a":{"s":tru}}`, `{"a":{"s":"x}}`, `{"a":{"s":[1,]}}`, `{"a":{"s":{"k":}}}`, `{"a":{"s":1},}`,
		`{"a":{"s":1}`, `{"a":{"s":1,}}`, `{"a":{"s"}}`, `{"a":{"s":}}`, `[]`, `null`, `{"a":{"s":1e}}`, `{"a":{"s":-}}`,
		"{\"\xff\":{\"s\":1}}", `{"":{"s":""}}`, `{"a":{"s":"\u12"}}`, `{"a":{"s":"\q"}}`,
	} {
		checkDecode(t, &c, []byte(s))
	}
}

func FuzzBaseDecode(f *testing.F) {
	var c baseCodec
	for _, b := range codecBases {
		if s, err := encodeBaseJSON(b); err == nil {
			f.Add([]byte(s))
		}
	}
	f.Add([]byte(`{"a":{"s":1,"t":[{"x":"y"}]}}`))
	f.Fuzz(func(t *testing.T, s []byte) {
		checkDecode(t, &c, s)
	})
}

func FuzzBaseEncode(f *testing.F) {
	var c baseCodec
	f.Add("name", []byte(`"x"`), []byte(`"y"`), "other", []byte(`1`))
	f.Add("a<b", []byte(`{"a": 1}`), []byte(nil), "\u2028", []byte(`[`))
	f.Fuzz(func(t *testing.T, k1 string, s1, t1 []byte, k2 string, s2 []byte) {
		checkEncode(t, &c, map[string]Base{k1: {S: s1, T: t1}, k2: {S: s2}})
	})
}

// benchBase is the base of a product of the benchmark's one-way flow: 12 properties.
func benchBase() map[string]Base {
	b := map[string]Base{}
	for i, v := range []string{`"P0000042"`, `"Espresso Roast 250 g"`, `"Espresso beans from Nordic Roast, item 42 of the catalogue."`,
		`"coffee"`, `"Nordic Roast"`, `"7310865004703"`, `"42"`, `0.25`, `true`, `"50.90"`, `46.75`, `"nordic roast-p0000042"`} {
		b[fmt.Sprintf("prop%02d→target%02d", i, i)] = Base{S: json.RawMessage(v), T: json.RawMessage(v)}
	}
	return b
}

func BenchmarkBaseEncode(b *testing.B) {
	base := benchBase()
	var c baseCodec
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.encode(base); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBaseDecode(b *testing.B) {
	var c baseCodec
	s, _ := c.encode(benchBase())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.decode([]byte(s)); err != nil {
			b.Fatal(err)
		}
	}
}

// plainBase looks at every member of a Base: one added must be added there.
func TestPlainBaseKnowsEveryMember(t *testing.T) {
	if n := reflect.TypeOf(Base{}).NumField(); n != 3 {
		t.Errorf("Base has %d members; plainBase knows of S, T and E", n)
	}
}
