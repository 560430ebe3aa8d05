package diag

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Escape returns s fit to print on a terminal, whatever a file, a record or a server put in
// it: control characters are shown as escapes instead of being obeyed (an ESC could clear the
// screen or set the window title, a BEL ring, a CR overwrite the line), and bytes that are not
// UTF-8 are shown by value. Text without them is returned as is.
//
//   - \t, \n and \r are shown as `\t`, `\n` and `\r`; the other C0 controls and DEL as `\xHH`
//     (`\x1b`, `\x7f`); a byte that is not UTF-8 as `\xHH` too (`\xff`).
//   - The C1 controls (U+0080 to U+009F, which some terminals obey as ESC sequences) and the
//     bidirectional overrides and isolates (U+202A to U+202E, U+2066 to U+2069, which reorder
//     what a reader sees) as `\uHHHH`.
//
// Backslashes are left alone, so a text that holds the four characters `\x1b` prints the same
// as one that holds an ESC: the escapes are for reading, not for parsing back.
func Escape(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	escapeTo(&b, s, false, nil)
	return b.String()
}

// EscapeLines is Escape for messages of several lines: newlines are kept.
func EscapeLines(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	escapeTo(&b, s, true, nil)
	return b.String()
}

// escapeColumns escapes a line like Escape and returns, for each of its runes (each byte that
// is not UTF-8 counting as one, as columns are counted) and for its end, the rune offset in
// the escaped text where it starts, so that a caret still points at what it pointed at.
func escapeColumns(s string) (string, []int) {
	var b strings.Builder
	cols := make([]int, 0, len(s)+1)
	escapeTo(&b, s, false, &cols)
	cols = append(cols, utf8.RuneCountInString(b.String()))
	return b.String(), cols
}

// needsEscape is the fast path: printable ASCII needs nothing, and neither does valid UTF-8
// without the characters Escape shows.
func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return true
		}
	}
	return false
}

func escapeTo(b *strings.Builder, s string, keepNewlines bool, cols *[]int) {
	width := 0 // runes written, for cols
	put := func(text string) {
		b.WriteString(text)
		width += utf8.RuneCountInString(text)
	}
	for i := 0; i < len(s); {
		if cols != nil {
			*cols = append(*cols, width)
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			put(fmt.Sprintf(`\x%02x`, s[i]))
		case r == '\n' && keepNewlines:
			put("\n")
		case r == '\t':
			put(`\t`)
		case r == '\n':
			put(`\n`)
		case r == '\r':
			put(`\r`)
		case r < 0x20 || r == 0x7f:
			put(fmt.Sprintf(`\x%02x`, r))
		case r >= 0x80 && r <= 0x9f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			put(fmt.Sprintf(`\u%04x`, r))
		default:
			put(s[i : i+size])
		}
		i += size
	}
}
