package postgres

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/internal/pgtest"
)

// canary is a password that must never appear in a message.
const canary = "Canary-Pw-7f3a9"

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func openErr(t *testing.T, dsn string) error {
	t.Helper()
	c, err := Driver{}.Open(context.Background(), loadSystem(t, system(`Product: {table: products, id: id}`), map[string]string{"DSN": dsn}), nil, connector.OpenOptions{})
	if err == nil {
		c.Close()
		t.Fatalf("opened %s", dsn)
	}
	if strings.Contains(err.Error(), canary) {
		t.Fatalf("the password is in the error: %v", err)
	}
	return err
}

// A server that is down at start is an error naming host and port, without the password.
func TestServerDownAtStart(t *testing.T) {
	port := freePort(t)
	err := openErr(t, fmt.Sprintf("postgres://crm:%s@127.0.0.1:%d/crm", canary, port))
	want := fmt.Sprintf("cannot connect to PostgreSQL at 127.0.0.1:%d (database crm, user crm): dial error: dial tcp 127.0.0.1:%d: connect: connection refused", port, port)
	if err.Error() != want {
		t.Fatalf("error\n%s\nwant\n%s", err, want)
	}
	// The key=value form too.
	err = openErr(t, fmt.Sprintf("host=127.0.0.1 port=%d dbname=crm user=crm password=%s", port, canary))
	if err.Error() != want {
		t.Fatalf("error\n%s\nwant\n%s", err, want)
	}
}

// No failure path shows the password: a wrong one, a DSN pgx cannot read.
func TestPasswordNeverInErrors(t *testing.T) {
	db := pgtest.New(t)
	err := openErr(t, db.Server.DSN("postgres", canary, db.Name))
	want := fmt.Sprintf(`cannot connect to PostgreSQL at 127.0.0.1:%d (database %s, user postgres): failed SASL auth: FATAL: password authentication failed for user "postgres" (SQLSTATE 28P01)`, db.Server.Port, db.Name)
	if err.Error() != want {
		t.Errorf("wrong password: %v\nwant %s", err, want)
	}
	for _, dsn := range []string{
		"postgres://crm:" + canary + "@127.0.0.1:notaport/crm",
		"postgres://crm:" + canary + "@127.0.0.1:5432/crm?sslmode=bogus",
		"host=127.0.0.1 port=x password=" + canary,
		"host=127.0.0.1 password='" + canary + "' sslmode=bogus",
	} {
		err := openErr(t, dsn)
		if !strings.HasPrefix(err.Error(), "the dsn cannot be read: ") {
			t.Errorf("%s: %v", dsn, err)
		}
	}
}

// A table the user may not read is an error naming it, without the password.
func TestPermissionDenied(t *testing.T) {
	db := pgtest.New(t)
	db.Exec(t, `CREATE TABLE products (id serial PRIMARY KEY, name text)`,
		`DROP ROLE IF EXISTS reader`, `CREATE ROLE reader LOGIN PASSWORD '`+canary+`'`)
	c := open(t, db.Server.DSN("reader", canary, db.Name), system(`Product: {table: products, id: id}`))
	err := c.Scan(context.Background(), "Product", "", func([]connector.Record) error { return nil })
	if err == nil || err.Error() != "ERROR: permission denied for table products (SQLSTATE 42501)" {
		t.Fatalf("scan: %v", err)
	}
	_, err = c.Create(context.Background(), "Product", []map[string]any{{"name": "x"}})
	if err == nil || err.Error() != "ERROR: permission denied for table products (SQLSTATE 42501)" {
		t.Fatalf("create: %v", err)
	}
}

// The connection drops mid-run (the server stops and starts again): reads and writes retry with
// back-off and succeed once it is back, with nothing written twice.
func TestConnectionDroppedMidRun(t *testing.T) {
	s := pgtest.Start(t)
	ctx := context.Background()
	if err := s.Exec(ctx, "postgres", `CREATE TABLE products (id serial PRIMARY KEY, name text)`); err != nil {
		t.Fatal(err)
	}
	c := open(t, s.DSN("postgres", pgtest.Password, "postgres"), system(`Product: {table: products, id: id}`))
	if _, err := c.Create(ctx, "Product", []map[string]any{{"name": "before"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	back := make(chan error, 1)
	go func() { time.Sleep(300 * time.Millisecond); back <- s.Restart() }()
	res, err := c.Create(ctx, "Product", []map[string]any{{"name": "during"}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("create while the server restarts: %v %v", err, res)
	}
	if err := <-back; err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, "Product", []string{"1", res[0].Record.ID})
	if err != nil || len(got) != 2 {
		t.Fatalf("get after the restart: %v %v", got, err)
	}
	if recs := scanAll(t, c, "Product", ""); len(recs) != 2 {
		t.Fatalf("%d records, want 2: %v", len(recs), recs)
	}
	// Down for longer than the retries: a clear error, and the next call works.
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(ctx, "Product", []string{"1"})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("get with the server down: %v", err)
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if recs := scanAll(t, c, "Product", ""); len(recs) != 2 {
		t.Fatalf("after the second restart: %d records", len(recs))
	}
}

// A serialization failure or a deadlock fails the transaction as a whole: it runs again, and
// the records are written once.
func TestSerializationFailureAndDeadlockAreRetried(t *testing.T) {
	for _, code := range []string{"40001", "40P01"} {
		t.Run(code, func(t *testing.T) {
			db := pgtest.New(t)
			db.Exec(t, `CREATE TABLE products (id serial PRIMARY KEY, name text)`, `CREATE SEQUENCE attempts`,
				`CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN
					IF nextval('attempts') = 1 THEN RAISE EXCEPTION 'simulated' USING ERRCODE = '`+code+`'; END IF;
					RETURN NEW;
				END $$`,
				`CREATE TRIGGER fail_once BEFORE INSERT OR UPDATE ON products FOR EACH ROW EXECUTE FUNCTION fail_once()`)
			c := open(t, db.DSN(), system(`Product: {table: products, id: id}`))
			res, err := c.Create(context.Background(), "Product", []map[string]any{{"name": "a"}, {"name": "b"}})
			if err != nil || res[0].Err != nil || res[1].Err != nil {
				t.Fatalf("create: %v %v", err, res)
			}
			if recs := scanAll(t, c, "Product", ""); len(recs) != 2 {
				t.Fatalf("%d records, want 2", len(recs))
			}
		})
	}
}
