// Package jsontext appends JSON strings exactly as encoding/json writes them, without its
// allocations: the canonical form of values (engine/mapping) and the stored link bases
// (engine/state) are built with it on the per-record path. It also scans JSON numbers for the
// hand-written readers of stored JSON (link bases, SQLite's JSON columns).
package jsontext

import "unicode/utf8"

// AppendString appends s as a JSON string as json.Marshal writes it: U+2028 and U+2029
// escaped, invalid UTF-8 as U+FFFD, and with escapeHTML <, > and & as \u003c, \u003e, \u0026
// (json.Marshal's default; an Encoder with SetEscapeHTML(false) leaves them).
func AppendString(dst []byte, s string, escapeHTML bool) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Most strings are plain ASCII: eight bytes that need nothing are passed at once.
		if i+8 <= len(s) && plain8(uint64(s[i])|uint64(s[i+1])<<8|uint64(s[i+2])<<16|uint64(s[i+3])<<24|
			uint64(s[i+4])<<32|uint64(s[i+5])<<40|uint64(s[i+6])<<48|uint64(s[i+7])<<56, escapeHTML) {
			i += 8
			continue
		}
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && (!escapeHTML || b != '<' && b != '>' && b != '&') {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plain8 reports whether none of the eight bytes of v needs escaping or decoding: no byte is
// below 0x20, a quote, a backslash, from 0x80 (UTF-8 to check), or with escapeHTML <, > or &.
func plain8(v uint64, escapeHTML bool) bool {
	bad := v&highs | (v-0x20*ones)&^v&highs | zeroByte(v^'"'*ones) | zeroByte(v^'\\'*ones)
	if escapeHTML {
		bad |= zeroByte(v^'<'*ones) | zeroByte(v^'>'*ones) | zeroByte(v^'&'*ones)
	}
	return bad == 0
}

// zeroByte is not zero when a byte of x is zero.
func zeroByte(x uint64) uint64 { return (x - ones) &^ x & highs }

// SkipNumber scans the JSON number at s[p] (-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?)
// and returns the index after it, whether it is an integer (no fraction, no exponent), and ok
// false when s[p:] does not start with one.
func SkipNumber(s []byte, p int) (end int, integer, ok bool) {
	if p < len(s) && s[p] == '-' {
		p++
	}
	switch {
	case p < len(s) && s[p] == '0':
		p++
	case p < len(s) && isDigit(s[p]):
		p = digits(s, p)
	default:
		return p, false, false
	}
	integer = true
	if p < len(s) && s[p] == '.' {
		integer = false
		if p++; p >= len(s) || !isDigit(s[p]) {
			return p, false, false
		}
		p = digits(s, p)
	}
	if p < len(s) && (s[p] == 'e' || s[p] == 'E') {
		integer = false
		if p++; p < len(s) && (s[p] == '+' || s[p] == '-') {
			p++
		}
		if p >= len(s) || !isDigit(s[p]) {
			return p, false, false
		}
		p = digits(s, p)
	}
	return p, integer, true
}

// digits returns the index after the digits at s[p].
func digits(s []byte, p int) int {
	for p < len(s) && isDigit(s[p]) {
		p++
	}
	return p
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
