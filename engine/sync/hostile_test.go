package sync_test

import (
	"strings"
	"testing"
)

// Hostile values in records arrive byte for byte and settle: a 4 MiB string, control
// characters, quotes and SQL, and text that is not UTF-8 with a NUL inside (SQLite stores
// whatever bytes it is given).
func TestE2EHostileValues(t *testing.T) {
	p := newE2E(t, "basic.yaml")
	huge := strings.Repeat("0123456789abcdef", 1<<18) // 4 MiB
	odd := "tab\there, \"quotes\", 'single', NUL-free \x01\x1f, emoji 🚀, RTL \u202e, semicolon; DROP TABLE products; --"
	p.exec("crm", "UPDATE products SET name = ? WHERE id = 1", huge)
	p.exec("crm", "UPDATE products SET name = ? WHERE id = 2", odd)
	p.exec("crm", "UPDATE products SET name = CAST(X'4361666500e9ff' AS TEXT) WHERE id = 3") // "Caf\x00\xe9\xff"
	rep := p.sync()
	if st := e2eFlow(t, rep, "products"); st.Failed != 0 || rep.Failed() != 0 {
		t.Errorf("records failed: %v", p.deadLetters("products"))
	}
	if got := p.count("shop", "products", "title = '"+huge+"'"); got != 1 {
		t.Errorf("the 4 MiB name arrived %d times intact, want once", got)
	}
	if got := p.count("shop", "products", "title = '"+strings.ReplaceAll(odd, "'", "''")+"'"); got != 1 {
		t.Errorf("the name with control characters and quotes arrived %d times, want once", got)
	}
	if got := p.text("shop", "SELECT hex(title) FROM products WHERE title LIKE 'Caf%'"); got != "4361666500E9FF" {
		t.Errorf("the name that is not UTF-8 arrived as %s, want the bytes 4361666500E9FF", got)
	}
	if rep := p.sync(); rep.Writes() != 0 {
		t.Errorf("the run after wrote %d times", rep.Writes())
	}
}
