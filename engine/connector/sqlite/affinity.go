package sqlite

// SQLite's type affinity: how a column's declared type converts a value stored in it, as the
// bundled SQLite does it (sqlite3AffinityType, applyAffinity, sqlite3AtoF's grammar), for the
// prediction of created rows (predict.go).

import (
	"math"
	"strconv"
	"strings"
)

// affinity is a column's type affinity, how SQLite converts a value stored in it.
type affinity byte

const (
	affBlob affinity = iota // no conversion
	affText
	affNumeric
	affInteger
	affReal
)

// affinityOf is SQLite's sqlite3AffinityType of a declared type, with its quirks ("POINT" is
// INTEGER, "CHARBLOB" is TEXT, "FLOATING POINT" is INTEGER); no type is BLOB.
func affinityOf(declared string) affinity {
	if declared == "" {
		return affBlob
	}
	var h uint32
	aff := affNumeric
	for i := 0; i < len(declared); i++ {
		c := declared[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		h = h<<8 + uint32(c)
		switch {
		case h == word4("char"), h == word4("clob"), h == word4("text"):
			aff = affText
		case h == word4("blob") && (aff == affNumeric || aff == affReal):
			aff = affBlob
		case (h == word4("real") || h == word4("floa") || h == word4("doub")) && aff == affNumeric:
			aff = affReal
		case h&0x00FFFFFF == word4("\x00int"):
			return affInteger
		}
	}
	return aff
}

func word4(s string) uint32 {
	return uint32(s[0])<<24 | uint32(s[1])<<16 | uint32(s[2])<<8 | uint32(s[3])
}

// storedValue is the value SQLite stores for v (a value toSQL made: nil, int64, float64, string
// or []byte) bound to a column of affinity a, as the driver reads it back from +column. ok is
// false when it is not known without asking SQLite: a float given to a TEXT column (SQLite's
// own formatting of it), a string that may read as a number given to a numeric column, unless
// it is a plain integer.
func storedValue(a affinity, v any) (stored any, ok bool) {
	switch x := v.(type) {
	case nil:
		return nil, true
	case []byte:
		if x == nil {
			return nil, true // the driver binds a nil []byte as NULL
		}
		return v, true // a blob is never converted
	case int64:
		switch a {
		case affText:
			return strconv.FormatInt(x, 10), true
		case affReal:
			return float64(x), true // stored as an integer, read as REAL
		}
		return v, true
	case float64:
		switch a {
		case affText:
			return nil, false
		case affNumeric, affInteger:
			if x == math.Trunc(x) && x > math.MinInt64 && x < math.MaxInt64 { // sqlite3VdbeIntegerAffinity
				return int64(x), true
			}
		case affReal:
			if x == 0 {
				return 0.0, true // stored as the integer 0: -0 reads as 0
			}
		}
		return v, true
	case string:
		if a == affBlob || a == affText || !mayBeNumber(x) {
			return v, true
		}
		if n, ok := plainInteger(x); ok {
			if a == affReal {
				return float64(n), true
			}
			return n, true
		}
		return nil, false
	}
	return nil, false
}

// mayBeNumber reports whether SQLite may read s as a number, as a column of numeric affinity
// stores it (applyNumericAffinity): when its text up to a NUL byte, if any, is a number as
// sqlite3AtoF reads one, in white space: [+-]digits[.digits][e[+-]digits], or .digits. Other
// text (a date, "19.90 EUR", "0x10", "1e") stays text.
func mayBeNumber(s string) bool {
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	p := 0
	space := func() {
		for p < len(s) && (s[p] == ' ' || s[p] >= '\t' && s[p] <= '\r') {
			p++
		}
	}
	digits := func() int {
		start := p
		for p < len(s) && s[p] >= '0' && s[p] <= '9' {
			p++
		}
		return p - start
	}
	space()
	if p < len(s) && (s[p] == '+' || s[p] == '-') {
		p++
	}
	n := digits()
	if p < len(s) && s[p] == '.' {
		p++
		n += digits()
	}
	if n == 0 {
		return false
	}
	if p < len(s) && (s[p] == 'e' || s[p] == 'E') {
		p++
		if p < len(s) && (s[p] == '+' || s[p] == '-') {
			p++
		}
		if digits() == 0 {
			return false
		}
	}
	space()
	return p == len(s)
}

// plainInteger parses an integer written as SQLite reads it exactly: an optional minus, no
// leading zero, at most 18 digits.
func plainInteger(s string) (int64, bool) {
	d := strings.TrimPrefix(s, "-")
	if d == "" || len(d) > 18 || (d[0] == '0' && (len(d) > 1 || d != s)) {
		return 0, false
	}
	var n int64
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(d[i]-'0')
	}
	if d != s {
		n = -n
	}
	return n, true
}
