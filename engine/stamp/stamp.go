// Package stamp is the one comparison of change stamps (an entity's `updated` values and the
// watermarks made of them) that every part of the engine uses: a connector's `since` filter
// and the sync's watermark must agree on which of two stamps is later, or records fall between
// them (the text "100" sorts before "99", so a counter past 99 dropped every record for good).
//
// A stamp is either a time or a number:
//
//   - a time is an RFC 3339 / ISO 8601 date-time, with "T" or a space between date and time
//     (SQLite's datetime() writes a space), with or without fractional seconds, with an offset
//     ("Z", "+02:00", "+0200") or none (read as UTC, as SQLite writes its times), or a date
//     alone (midnight UTC). Times compare as instants, whatever their offsets.
//   - a number is decimal text: an optional sign, digits with an optional fraction, and an
//     optional exponent ("100", "-3", "1712345678.25", "1.7e9"). Numbers compare exactly, as
//     decimals of any length: integers beyond int64 and fractions beyond float64 are not rounded.
//
// A time and a number cannot be compared, nor can text that is neither: Compare says so in an
// error rather than guess an order.
package stamp

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Kind is what a stamp is.
type Kind uint8

const (
	// Time is a date-time (or a date), compared as an instant.
	Time Kind = iota + 1
	// Number is decimal text, compared exactly.
	Number
)

func (k Kind) String() string {
	switch k {
	case Time:
		return "a time"
	case Number:
		return "a number"
	}
	return "not a stamp"
}

// Stamp is a parsed stamp. The zero Stamp is not a stamp (Kind 0).
type Stamp struct {
	text string
	kind Kind
	t    time.Time
	// A number is 0.digits × 10^exp, negated when neg: digits has no leading or trailing
	// zeros, and is empty for zero.
	neg    bool
	digits string
	exp    int
}

// maxExponent bounds a number's exponent: a stamp is a time or a counter, and an exponent of
// millions is input that means something else.
const maxExponent = 1000

// Parse reads a stamp. Text that is neither a time nor a number is an error that shows it and
// the forms a stamp takes.
func Parse(s string) (Stamp, error) {
	if s == "" {
		return Stamp{}, fmt.Errorf("an empty value is not a stamp: %s", forms)
	}
	if t, ok := parseTime(s); ok {
		return Stamp{text: s, kind: Time, t: t}, nil
	}
	if st, ok, err := parseNumber(s); ok {
		return st, err
	}
	return Stamp{}, fmt.Errorf("%s is not a stamp: %s", show(s), forms)
}

const forms = "a stamp is a time (RFC 3339, such as 2024-05-01T12:00:00Z, or 2024-05-01 12:00:00 as SQLite writes it) or a number (such as 1714564800 or 17.5)"

// Compare compares two stamps: -1 when a is earlier than b, 0 when they are the same instant
// or the same number, +1 when a is later. It is an error when either is not a stamp or when
// one is a time and the other a number.
func Compare(a, b string) (int, error) {
	sa, err := Parse(a)
	if err != nil {
		return 0, err
	}
	sb, err := Parse(b)
	if err != nil {
		return 0, err
	}
	return sa.Compare(sb)
}

// Kind says whether s is a time or a number (0 when it is not a stamp).
func (s Stamp) Kind() Kind { return s.kind }

// Time is the instant of a time stamp (the zero time for a number).
func (s Stamp) Time() time.Time { return s.t }

// String is the stamp's text as it was parsed.
func (s Stamp) String() string { return s.text }

// Compare compares s with o (-1, 0, +1); stamps of different kinds are an error.
func (s Stamp) Compare(o Stamp) (int, error) {
	if s.kind == 0 || o.kind == 0 {
		return 0, fmt.Errorf("cannot compare stamps: one of them is not a stamp (%s)", forms)
	}
	if s.kind != o.kind {
		return 0, fmt.Errorf("the stamps %s and %s cannot be compared: %s is %s and %s is %s; an entity's updated values are all times or all numbers",
			show(s.text), show(o.text), show(s.text), s.kind, show(o.text), o.kind)
	}
	if s.kind == Time {
		return s.t.Compare(o.t), nil
	}
	return compareNumbers(s, o), nil
}

func compareNumbers(a, b Stamp) int {
	sign := func(x Stamp) int {
		switch {
		case x.digits == "":
			return 0
		case x.neg:
			return -1
		}
		return 1
	}
	sa, sb := sign(a), sign(b)
	if sa != sb || sa == 0 {
		return cmp(sa, sb)
	}
	// Same sign, both nonzero: compare magnitudes, then flip for negatives.
	m := cmp(a.exp, b.exp)
	if m == 0 {
		// Same exponent: digits without leading or trailing zeros compare as text ("12" < "123"
		// as 0.12 < 0.123).
		m = strings.Compare(a.digits, b.digits)
	}
	return m * sa
}

func cmp(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// parseNumber reads decimal text. ok is false when s does not have the shape of a number; an
// exponent out of bounds is ok with an error.
func parseNumber(s string) (Stamp, bool, error) {
	st := Stamp{text: s, kind: Number}
	i := 0
	if s[0] == '+' || s[0] == '-' {
		st.neg = s[0] == '-'
		i++
	}
	intStart := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intPart := s[intStart:i]
	var frac string
	if i < len(s) && s[i] == '.' {
		i++
		fracStart := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		frac = s[fracStart:i]
	}
	if intPart == "" && frac == "" {
		return Stamp{}, false, nil
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		expStart := i
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		digitsStart := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == digitsStart || i != len(s) {
			return Stamp{}, false, nil
		}
		e, err := strconv.Atoi(s[expStart:i])
		if err != nil || e > maxExponent || e < -maxExponent {
			return Stamp{}, true, fmt.Errorf("%s is out of range for a stamp: its exponent is beyond ±%d", show(s), maxExponent)
		}
		exp = e
	}
	if i != len(s) {
		return Stamp{}, false, nil
	}
	// value = 0.(intPart frac) × 10^(len(intPart)+exp); then drop leading zeros (each lowers
	// the exponent) and trailing zeros.
	all := intPart + frac
	e := len(intPart) + exp
	lead := 0
	for lead < len(all) && all[lead] == '0' {
		lead++
	}
	all = all[lead:]
	e -= lead
	all = strings.TrimRight(all, "0")
	if all == "" {
		e = 0
	}
	st.digits, st.exp = all, e
	return st, true, nil
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

// timeLayouts are the forms of a time after normalize: offset or none, with seconds (and any
// fraction, which time.Parse accepts after the seconds) or without, or a date alone.
var timeLayouts = []string{
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	"2006-01-02",
}

// parseTime reads a time; a time without an offset is UTC.
func parseTime(s string) (time.Time, bool) {
	// Every time starts with a four-digit year and a dash: anything else is not tried, so that
	// numbers are never read as times.
	if len(s) < 10 || s[4] != '-' || !isDigit(s[0]) {
		return time.Time{}, false
	}
	n := s
	if len(n) > 10 && (n[10] == ' ' || n[10] == 't') {
		n = n[:10] + "T" + n[11:]
	}
	if strings.HasSuffix(n, "z") {
		n = n[:len(n)-1] + "Z"
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, n); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// show quotes a stamp for a message, cut when long.
func show(s string) string {
	const n = 60
	if len(s) > n {
		return strconv.Quote(s[:n]) + "..."
	}
	return strconv.Quote(s)
}
