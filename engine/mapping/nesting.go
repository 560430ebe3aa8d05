package mapping

import "unicode/utf8"

// MaxExprNesting bounds how deeply an expression may nest. expr-lang's parser recurses once
// per level, before it counts nodes: 600,000 nested parentheses overflow the stack. Mapping
// expressions nest a few levels; the bound is far above any real one.
const MaxExprNesting = 256

// nestingTooDeep scans an expression once, without recursion, and returns the rune offset at
// which its nesting passes MaxExprNesting, or -1. A level is what makes the parser recurse
// before it creates a node (and so before its node limit can stop it): an open bracket
// ( [ {, and a prefix operator (- + ! not) applied to what follows it, up to the end of that
// operand. String literals and comments are skipped, so that "((((" in a text is not counted.
func nestingTooDeep(src string) int {
	// open holds, per open bracket, the prefix operators applied to it, which end with it.
	var open []int
	depth := 0       // open brackets and the prefix operators applied to them
	prefix := 0      // prefix operators in a row, applied to the next operand
	operand := false // whether the last token ends an operand: then - and + are binary
	off := 0         // rune offset of i
	for i := 0; i < len(src); {
		c := src[i]
		size := 1
		if c >= utf8.RuneSelf {
			_, size = utf8.DecodeRuneInString(src[i:])
		}
		levelUp := false
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := skipString(src, i)
			off += utf8.RuneCountInString(src[i:j])
			i = j
			operand, prefix = true, 0
			continue
		case c == '/' && i+1 < len(src) && (src[i+1] == '/' || src[i+1] == '*'):
			j := skipComment(src, i)
			off += utf8.RuneCountInString(src[i:j])
			i = j
			continue
		case c == '(' || c == '[' || c == '{':
			open = append(open, prefix)
			depth += 1 + prefix
			levelUp = true
			operand, prefix = false, 0
		case c == ')' || c == ']' || c == '}':
			if len(open) > 0 {
				depth -= 1 + open[len(open)-1]
				open = open[:len(open)-1]
			}
			operand, prefix = true, 0
		case (c == '-' || c == '+') && !operand, c == '!' && !(i+1 < len(src) && src[i+1] == '='):
			prefix++
			levelUp = true
		case isWordByte(c):
			j := i
			for j < len(src) && isWordByte(src[j]) {
				j++
			}
			switch src[i:j] {
			case "not":
				prefix++
				levelUp = true
				operand = false
			case "and", "or", "in", "matches", "contains", "startsWith", "endsWith", "let":
				operand, prefix = false, 0
			default:
				operand, prefix = true, 0
			}
			if levelUp && depth+prefix > MaxExprNesting {
				return off
			}
			off += j - i // words are ASCII
			i = j
			continue
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		default:
			// Any other operator or separator: what follows starts an operand.
			operand, prefix = false, 0
		}
		if levelUp && depth+prefix > MaxExprNesting {
			return off
		}
		i += size
		off++
	}
	return -1
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c == '#' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// skipString returns the index just past the string literal that starts at i (or the end of
// src when it is not closed: the parser reports that).
func skipString(src string, i int) int {
	quote := src[i]
	for j := i + 1; j < len(src); j++ {
		switch src[j] {
		case '\\':
			if quote != '`' {
				j++
			}
		case quote:
			return j + 1
		}
	}
	return len(src)
}

// skipComment returns the index just past the // or /* comment that starts at i.
func skipComment(src string, i int) int {
	if src[i+1] == '/' {
		for j := i + 2; j < len(src); j++ {
			if src[j] == '\n' {
				return j
			}
		}
		return len(src)
	}
	for j := i + 2; j+1 < len(src); j++ {
		if src[j] == '*' && src[j+1] == '/' {
			return j + 2
		}
	}
	return len(src)
}
