package jsontext

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strconv"
	"strings"
)

// maxExactExponent bounds the exponents of numbers compared exactly: 1e999999999 would take
// big.Rat gigabytes. A number past it is kept as its text.
const maxExactExponent = 400

// Number is a JSON number's text as the engine holds it, never rounded: an int64 when it is an
// integer that fits, a float64 when that holds exactly the same decimal ("0.1" is the float64
// whose shortest form is 0.1, "1.50" is 1.5), else the json.Number itself, whose text is
// written back as it came. An id of 10000000000000000001 read as a float64 is 1e19, another
// record's id. s must be a valid JSON number.
func Number(s string) any {
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i
		}
	}
	if f, ok := ExactFloat(s); ok {
		return f
	}
	return json.Number(s)
}

// ExactFloat is the float64 a JSON number's text denotes, when the float holds it exactly: when
// the float's shortest decimal is that number.
func ExactFloat(s string) (float64, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false // out of range, or not a number
	}
	short := strconv.FormatFloat(f, 'g', -1, 64)
	if short == s {
		return f, true
	}
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
		if err != nil || e > maxExactExponent || e < -maxExactExponent {
			return 0, false
		}
	}
	want, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, false
	}
	got, _ := new(big.Rat).SetString(short)
	return f, got != nil && got.Cmp(want) == 0
}

// Normalize turns the json.Numbers of a value decoded with UseNumber into the engine's numbers
// (Number), in place, and returns the value.
func Normalize(v any) any {
	switch x := v.(type) {
	case json.Number:
		return Number(string(x))
	case map[string]any:
		for k, e := range x {
			x[k] = Normalize(e)
		}
	case []any:
		for i, e := range x {
			x[i] = Normalize(e)
		}
	}
	return v
}

// Decode decodes one JSON value of a database's JSON column with its numbers exact (Number).
func Decode(text string) (any, error) {
	d := json.NewDecoder(strings.NewReader(text))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return Normalize(v), nil
}

// Marshal writes v as compact JSON with sorted keys (encoding/json sorts map keys) and without
// HTML escaping, as databases store a JSON column's text; json.Numbers keep their digits.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
