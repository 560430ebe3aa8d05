package pgtest

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// Each test gets a database of its own on the shared server, reachable with the password.
func TestNewGivesAFreshDatabase(t *testing.T) {
	a, b := New(t), New(t)
	if a.Name == b.Name {
		t.Fatalf("two tests share database %s", a.Name)
	}
	a.Exec(t, "CREATE TABLE only_in_a (id int)")
	ctx := context.Background()
	c, err := pgx.Connect(ctx, b.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("table of a in b: n=%d err=%v", n, err)
	}
	if _, err := pgx.Connect(ctx, a.Server.DSN("postgres", "wrong", a.Name)); err == nil {
		t.Fatal("a wrong password connected: TCP must need the password")
	}
}

// A server of the test's own stops and starts again on the same port with its data.
func TestStopRestart(t *testing.T) {
	s := Start(t)
	ctx := context.Background()
	if err := s.Exec(ctx, "postgres", "CREATE TABLE kept (id int)"); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Exec(ctx, "postgres", "SELECT 1"); err == nil {
		t.Fatal("a stopped server answered")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := s.Exec(ctx, "postgres", "SELECT * FROM kept"); err != nil {
		t.Fatal(err)
	}
}
