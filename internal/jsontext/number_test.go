package jsontext

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestNumber(t *testing.T) {
	cases := []struct {
		in   string
		want any
	}{
		{"12", int64(12)},
		{"-9223372036854775808", int64(-9223372036854775808)},
		{"9223372036854775808", json.Number("9223372036854775808")},
		{"10000000000000000001", json.Number("10000000000000000001")},
		{"10000000000000000000", float64(1e19)},
		{"0.1", 0.1},
		{"1.50", 1.5},
		{"8.90", 8.9},
		{"1e2", float64(100)},
		{"0.1000000000000000000001", json.Number("0.1000000000000000000001")},
		{"1e400", json.Number("1e400")},
		{"1e999999999", json.Number("1e999999999")},
		{"-0", int64(0)},
	}
	for _, c := range cases {
		if got := Number(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Number(%q) = %#v, want %#v", c.in, got, c.want)
		}
	}
}
