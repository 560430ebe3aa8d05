package postgres

import (
	"strings"
	"testing"
)

// status names a system's server as host:port/database, from a URL or key=value DSN, and
// never its password.
func TestServer(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://crm:Canary-pw-7@db.example:5433/crm?sslmode=disable":   "db.example:5433/crm",
		"host=127.0.0.1 port=5434 dbname=shop user=u password=Canary-pw-7": "127.0.0.1:5434/shop",
		"${MISSING}": "",
	} {
		sys := loadSystem(t, system(`Product: {table: products, id: id}`), map[string]string{"DSN": dsn})
		got := Driver{}.Server(sys)
		if got != want || strings.Contains(got, "Canary") {
			t.Errorf("Server(%q) = %q, want %q", dsn, got, want)
		}
	}
}
