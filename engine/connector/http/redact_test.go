package httpconn

import (
	"strings"
	"testing"
	"time"
)

// TestRedactorOfALongToken: a long token (a 4 KB JWT) makes a redactor quickly, and masks it.
func TestRedactorOfALongToken(t *testing.T) {
	tok := strings.Repeat("eyJhbGciOiJIUzI1NiJ9.", 200)
	start := time.Now()
	red := newRedactor([]string{tok}, nil)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("newRedactor took %v", d)
	}
	if got := red.text("bad token " + tok[:40] + "!"); got != "bad token ***!" {
		t.Errorf("masked %q", got)
	}
	t.Logf("%v", time.Since(start))
}
