package sync

import "testing"

// A system's location never holds a credential: URLs lose their user, password, query and
// fragment; a key=value DSN is cut before its password.
func TestLocationHasNoSecret(t *testing.T) {
	for _, c := range []struct{ key, value, want string }{
		{"base_url", "https://bob:s3cret@api.example.com/v1?token=s3cret#x", "https://api.example.com/v1"},
		{"dsn", "postgres://bob:s3cret@db:5432/crm?sslmode=disable", "postgres://db:5432/crm"},
		{"dsn", "host=db user=bob password=s3cret dbname=crm", "host=db user=bob "},
		{"path", "/data/crm.db", "/data/crm.db"},
	} {
		if got := location(c.key, c.value); got != c.want {
			t.Errorf("location(%s: %q) = %q, want %q", c.key, c.value, got, c.want)
		}
	}
}
