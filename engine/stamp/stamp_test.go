package stamp

import (
	"strings"
	"testing"
	"time"
)

func TestCompare(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		// Counters: compared as integers, not as text ("100" < "99" as text).
		{"9", "10", -1},
		{"10", "9", 1},
		{"99", "100", -1},
		{"100", "99", 1},
		{"100", "100", 0},
		{"007", "7", 0},
		{"-5", "3", -1},
		{"-5", "-30", 1},
		{"-0", "0", 0},
		{"+4", "4", 0},
		// Beyond int64 (9223372036854775807) and beyond float64's 53 bits.
		{"9223372036854775808", "9223372036854775807", 1},
		{"10000000000000000001", "10000000000000000000", 1},
		{"123456789012345678901234567890", "123456789012345678901234567891", -1},
		{"-123456789012345678901234567890", "-123456789012345678901234567891", 1},
		// Decimals, compared exactly.
		{"1712345678.25", "1712345678.3", -1},
		{"1.5", "1.50", 0},
		{"0.1", ".1", 0},
		{"2.", "2", 0},
		{"0.30000000000000000001", "0.3", 1},
		{"1.7e9", "1700000000", 0},
		{"1.7E+9", "1699999999.9", 1},
		{"25e-1", "2.5", 0},
		{"0.001", "0.01", -1},
		{"10", "9.999", 1},
		{"0", "0.0001", -1},
		{"-0.5", "0", -1},
		// Times: instants, whatever the offset.
		{"2024-05-01T12:00:00Z", "2024-05-01T12:00:00Z", 0},
		{"2024-05-01T12:00:00Z", "2024-05-01T14:00:00+02:00", 0},
		{"2024-05-01T12:00:00Z", "2024-05-01T13:00:00+02:00", 1},
		{"2024-05-01T23:30:00-05:00", "2024-05-02T04:00:00Z", 1},
		{"2024-05-01T12:00:00+0200", "2024-05-01T10:00:00Z", 0},
		{"2024-05-01t12:00:00z", "2024-05-01T12:00:00Z", 0},
		// Fractional seconds, any number of digits.
		{"2024-05-01T12:00:00.5Z", "2024-05-01T12:00:00.499999Z", 1},
		{"2024-05-01T12:00:00.100Z", "2024-05-01T12:00:00.1Z", 0},
		{"2024-05-01T12:00:00.000000001Z", "2024-05-01T12:00:00Z", 1},
		{"2024-05-01T12:00:00Z", "2024-05-01T12:00:00.000001Z", -1},
		// Space-separated, without offset, as SQLite's datetime() and strftime('%f') write
		// them: UTC.
		{"2024-05-01 12:00:00", "2024-05-01T12:00:00Z", 0},
		{"2024-05-01 12:00:00.123", "2024-05-01 12:00:00.122", 1},
		{"2024-05-01 12:00:00", "2024-05-01T13:00:00+02:00", 1},
		{"2024-05-01 09:00:00", "2024-05-01 10:00:00", -1},
		{"2024-05-01T12:00:00", "2024-05-01T12:00:00Z", 0},
		{"2024-05-01T12:00", "2024-05-01T12:00:00Z", 0},
		// A date alone is midnight UTC.
		{"2024-05-01", "2024-05-01T00:00:00Z", 0},
		{"2024-05-01", "2024-04-30T23:59:59Z", 1},
		// Years past 9999 are not RFC 3339, but 9999 is.
		{"9999-12-31T00:00:00Z", "2024-01-01T00:00:00Z", 1},
	} {
		got, err := Compare(c.a, c.b)
		if err != nil {
			t.Errorf("Compare(%q, %q): %v", c.a, c.b, err)
			continue
		}
		if got != c.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		// The order is antisymmetric.
		if back, _ := Compare(c.b, c.a); back != -c.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", c.b, c.a, back, -c.want)
		}
	}
}

func TestCompareErrors(t *testing.T) {
	for _, c := range []struct{ a, b, want string }{
		{"2024-05-01T12:00:00Z", "100", `the stamps "2024-05-01T12:00:00Z" and "100" cannot be compared: "2024-05-01T12:00:00Z" is a time and "100" is a number; an entity's updated values are all times or all numbers`},
		{"100", "2024-05-01", `the stamps "100" and "2024-05-01" cannot be compared: "100" is a number and "2024-05-01" is a time; an entity's updated values are all times or all numbers`},
		{"N/A", "100", `"N/A" is not a stamp: ` + forms},
		{"100", "", `an empty value is not a stamp: ` + forms},
		{"2024-13-01T00:00:00Z", "2024-01-01T00:00:00Z", `"2024-13-01T00:00:00Z" is not a stamp: ` + forms},
		{"2024-05-01T12:00:00Z", "yesterday", `"yesterday" is not a stamp: ` + forms},
		{"1e5000", "1", `"1e5000" is out of range for a stamp: its exponent is beyond ±1000`},
		{"1.2.3", "1", `"1.2.3" is not a stamp: ` + forms},
		{" 100", "1", `" 100" is not a stamp: ` + forms},
		{"0x10", "1", `"0x10" is not a stamp: ` + forms},
		{"NaN", "1", `"NaN" is not a stamp: ` + forms},
		{"Inf", "1", `"Inf" is not a stamp: ` + forms},
		{"-", "1", `"-" is not a stamp: ` + forms},
		{"1e", "1", `"1e" is not a stamp: ` + forms},
		{".", "1", `"." is not a stamp: ` + forms},
		{strings.Repeat("x", 100), "1", `"` + strings.Repeat("x", 60) + `"... is not a stamp: ` + forms},
	} {
		_, err := Compare(c.a, c.b)
		if err == nil {
			t.Errorf("Compare(%q, %q) is no error, want %s", c.a, c.b, c.want)
			continue
		}
		if err.Error() != c.want {
			t.Errorf("Compare(%q, %q):\n got %s\nwant %s", c.a, c.b, err, c.want)
		}
	}
}

func TestParse(t *testing.T) {
	s, err := Parse("2024-05-01 12:00:00.5")
	if err != nil {
		t.Fatal(err)
	}
	if s.Kind() != Time || !s.Time().Equal(time.Date(2024, 5, 1, 12, 0, 0, 5e8, time.UTC)) || s.String() != "2024-05-01 12:00:00.5" {
		t.Errorf("Parse = %v %v %q", s.Kind(), s.Time(), s.String())
	}
	n, err := Parse("20240501")
	if err != nil {
		t.Fatal(err)
	}
	if n.Kind() != Number || !n.Time().IsZero() {
		t.Errorf("Parse(20240501) = %v %v, want a number", n.Kind(), n.Time())
	}
	if _, err := (Stamp{}).Compare(n); err == nil {
		t.Error("the zero Stamp compared without an error")
	}
}

func FuzzCompare(f *testing.F) {
	for _, s := range []string{"9", "10", "-1.5e3", "2024-05-01T12:00:00Z", "2024-05-01 12:00:00", "N/A", "", "1e1001", "0.000"} {
		f.Add(s, "100")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, errAB := Compare(a, b)
		ba, errBA := Compare(b, a)
		if (errAB == nil) != (errBA == nil) {
			t.Fatalf("Compare(%q, %q) err %v, reversed err %v", a, b, errAB, errBA)
		}
		if errAB == nil && ab != -ba {
			t.Fatalf("Compare(%q, %q) = %d, reversed %d", a, b, ab, ba)
		}
		if aa, err := Compare(a, a); err == nil && aa != 0 {
			t.Fatalf("Compare(%q, %q) = %d", a, a, aa)
		}
	})
}
