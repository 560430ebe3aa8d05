package mysqltest

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// Each test gets a database of its own on the shared server, reachable with the password only.
func TestNewGivesAFreshDatabase(t *testing.T) { Each(t, testNewGivesAFreshDatabase) }

func testNewGivesAFreshDatabase(t *testing.T, f Flavour) {
	a, b := NewOf(t, f), NewOf(t, f)
	if a.Name == b.Name {
		t.Fatalf("two tests share database %s", a.Name)
	}
	a.Exec(t, "CREATE TABLE only_in_a (id int)")
	db, err := sql.Open("mysql", b.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'only_in_a'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("table of a in b: n=%d err=%v", n, err)
	}
	wrong, _ := sql.Open("mysql", a.Server.DSN("root", "wrong", a.Name))
	defer wrong.Close()
	if err := wrong.Ping(); err == nil {
		t.Fatal("a wrong password connected")
	}
}

// A server of the test's own stops and starts again on the same port with its data.
func TestStopRestart(t *testing.T) { Each(t, testStopRestart) }

func testStopRestart(t *testing.T, f Flavour) {
	s := StartOf(t, f)
	ctx := context.Background()
	if err := s.Exec(ctx, "mysql", "CREATE TABLE kept (id int)"); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Exec(ctx, "mysql", "SELECT 1"); err == nil {
		t.Fatal("a stopped server answered")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := s.Exec(ctx, "mysql", "SELECT * FROM kept"); err != nil {
		t.Fatal(err)
	}
}

// Each flavour is the server it names.
func TestFlavourIsTheServerItNames(t *testing.T) {
	Each(t, func(t *testing.T, f Flavour) {
		d := NewOf(t, f)
		db, err := sql.Open("mysql", d.DSN())
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var version string
		if err := db.QueryRow("SELECT version()").Scan(&version); err != nil {
			t.Fatal(err)
		}
		// MariaDB says 10.11.x-MariaDB-...; Oracle MySQL 9.7.x-n (Debian's revision).
		if isMaria := strings.Contains(version, "-MariaDB"); isMaria != (f == MariaDB) || f == OracleMySQL && !strings.HasPrefix(version, "9.7.") {
			t.Fatalf("%s: version() is %q", f, version)
		}
		if d.Server.Flavour != f {
			t.Fatalf("server of %s says %s", f, d.Server.Flavour)
		}
	})
}

// Two servers of a flavour run at once, each on its own port (Oracle MySQL's X protocol would
// take port 33060 for both).
func TestTwoServersAtOnce(t *testing.T) {
	Each(t, func(t *testing.T, f Flavour) {
		a, b := StartOf(t, f), StartOf(t, f)
		if a.Port == b.Port {
			t.Fatalf("one port %d", a.Port)
		}
		for _, s := range []*Server{a, b} {
			if err := s.Exec(context.Background(), "", "SELECT 1"); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// Without the chroot, or as another user than root, the Oracle MySQL tests say why they skip.
func TestOracleMissingSaysWhy(t *testing.T) {
	root := t.TempDir()
	if got, want := oracleMissing(root, 0), "Oracle MySQL is not installed: run scripts/install-test-servers.sh as root (it installs Debian sid's mysql-server-core in a chroot at "+root+")"; got != want {
		t.Errorf("no chroot: %q\nwant %q", got, want)
	}
	os.MkdirAll(filepath.Join(root, "usr/sbin"), 0o755)
	os.WriteFile(filepath.Join(root, Mysqld), []byte("#!/bin/sh\n"), 0o755)
	if got, want := oracleMissing(root, 1000), "Oracle MySQL runs in the chroot "+root+", which needs root: run the tests as root"; got != want {
		t.Errorf("not root: %q\nwant %q", got, want)
	}
	if got := oracleMissing(root, 0); got != "" {
		t.Errorf("installed, as root: %q", got)
	}
}
