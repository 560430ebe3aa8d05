package diag

import "strings"

// Suggest returns the candidate closest to the misspelled name, or "" when none is close enough
// to be a likely typo. Closeness is the optimal-string-alignment distance (a transposition
// counts as one edit), compared case-insensitively, allowing one edit per three letters (at
// least one, at most three).
func Suggest(name string, candidates []string) string {
	best, bestDist := "", -1
	limit := min(max(len([]rune(name))/3, 1), 3)
	for _, c := range candidates {
		if c == name {
			continue
		}
		d := distance(lower(name), lower(c))
		if d <= limit && (bestDist < 0 || d < bestDist) {
			best, bestDist = c, d
		}
	}
	if best != "" {
		return best
	}
	// An abbreviation of exactly one candidate: "int" for "integer", "bool" for "boolean".
	if len([]rune(name)) >= 3 {
		for _, c := range candidates {
			if strings.HasPrefix(string(lower(c)), string(lower(name))) && c != name {
				if best != "" {
					return ""
				}
				best = c
			}
		}
	}
	return best
}

// DidYouMean returns "; did you mean \"x\"?" for the closest candidate, or "".
func DidYouMean(name string, candidates []string) string {
	if s := Suggest(name, candidates); s != "" {
		return "; did you mean " + Quote(s) + "?"
	}
	return ""
}

func lower(s string) []rune {
	r := []rune(s)
	for i, c := range r {
		if c >= 'A' && c <= 'Z' {
			r[i] = c + 'a' - 'A'
		}
	}
	return r
}

// distance is the optimal string alignment distance between a and b.
func distance(a, b []rune) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
