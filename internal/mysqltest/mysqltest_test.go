package mysqltest

import (
	"context"
	"database/sql"
	"os"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// Each test gets a database of its own on the shared server, reachable with the password only.
func TestNewGivesAFreshDatabase(t *testing.T) {
	a, b := New(t), New(t)
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
func TestStopRestart(t *testing.T) {
	s := Start(t)
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
