package mysql

import (
	"strings"
	"testing"
)

// status names a system's server as host:port/database, never its password.
func TestServer(t *testing.T) {
	for dsn, want := range map[string]string{
		"crm:Canary-pw-7@tcp(db.example:3307)/crm?parseTime=false": "db.example:3307/crm",
		"crm@tcp(127.0.0.1)/shop":                                  "127.0.0.1:3306/shop",
		"not a dsn":                                                "",
	} {
		src := "system: crm\nname: CRM\nconnector: mysql\ndsn: ${DSN}\nentities:\n  Product: {table: products, id: id}\n"
		got := Driver{}.Server(loadSystem(t, src, map[string]string{"DSN": dsn}))
		if got != want || strings.Contains(got, "Canary") {
			t.Errorf("Server(%q) = %q, want %q", dsn, got, want)
		}
	}
}
