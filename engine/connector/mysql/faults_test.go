package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/internal/mysqltest"
)

const canary = "Canary-Pw-7f3a9"

func openErr(t *testing.T, dsn string) error {
	t.Helper()
	c, err := Driver{}.Open(context.Background(), loadSystem(t, system("Product: {table: products, id: id}"), map[string]string{"DSN": dsn}), nil, connector.OpenOptions{})
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	err = openErr(t, fmt.Sprintf("crm:%s@tcp(127.0.0.1:%d)/crm", canary, port))
	want := fmt.Sprintf("cannot connect to MySQL at 127.0.0.1:%d (database crm, user crm): dial tcp 127.0.0.1:%d: connect: connection refused", port, port)
	if err.Error() != want {
		t.Fatalf("error\n%s\nwant\n%s", err, want)
	}
}

// No failure path shows the password.
func TestPasswordNeverInErrors(t *testing.T) { mysqltest.Each(t, testPasswordNeverInErrors) }

func testPasswordNeverInErrors(t *testing.T, f mysqltest.Flavour) {
	db := mysqltest.NewOf(t, f)
	err := openErr(t, db.Server.DSN("root", canary, db.Name))
	want := fmt.Sprintf("cannot connect to MySQL at 127.0.0.1:%d (database %s, user root): Error 1045 (28000): Access denied for user 'root'@'127.0.0.1' (using password: YES)", db.Server.Port, db.Name)
	if err.Error() != want {
		t.Errorf("wrong password: %v\nwant %s", err, want)
	}
	for _, dsn := range []string{
		"crm:" + canary + "@tcp(127.0.0.1:3306)/crm?bogus=%zz",
		"crm:" + canary + "@tcp(127.0.0.1:3306)",
		"crm:" + canary + "@tcp(127.0.0.1:3306)/",
	} {
		err := openErr(t, dsn)
		if !strings.HasPrefix(err.Error(), "the dsn ") {
			t.Errorf("%s: %v", dsn, err)
		}
	}
}

// A table the user may not read is an error naming it.
func TestPermissionDenied(t *testing.T) { mysqltest.Each(t, testPermissionDenied) }

func testPermissionDenied(t *testing.T, f mysqltest.Flavour) {
	db := mysqltest.NewOf(t, f)
	db.Exec(t, "CREATE TABLE products (id INT AUTO_INCREMENT PRIMARY KEY, name TEXT)", "CREATE TABLE other (id INT)",
		"CREATE USER IF NOT EXISTS 'reader'@'127.0.0.1' IDENTIFIED BY '"+canary+"'",
		"GRANT SELECT ON "+db.Name+".other TO 'reader'@'127.0.0.1'")
	c, err := Driver{}.Open(context.Background(), loadSystem(t, system("Product: {table: products, id: id}"), map[string]string{"DSN": db.Server.DSN("reader", canary, db.Name)}), nil, connector.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Scan(context.Background(), "Product", "", func([]connector.Record) error { return nil })
	// Without any privilege on it, the table is not even in information_schema for the user.
	if err == nil || err.Error() != "entity Product: table `products` does not exist, or the user has no privilege on it" {
		t.Fatalf("scan: %v", err)
	}
	db.Exec(t, "GRANT INSERT ON "+db.Name+".products TO 'reader'@'127.0.0.1'")
	c2 := open(t, db.Server.DSN("reader", canary, db.Name), system("Product: {table: products, id: id}"))
	err = c2.Scan(context.Background(), "Product", "", func([]connector.Record) error { return nil })
	want := "Error 1142 (42000): SELECT command denied to user 'reader'@'127.0.0.1' for table `" + db.Name + "`.`products`"
	if f == mysqltest.OracleMySQL { // names the table alone, in quotes
		want = "Error 1142 (42000): SELECT command denied to user 'reader'@'127.0.0.1' for table 'products'"
	}
	if err == nil || err.Error() != want {
		t.Fatalf("scan: %v\nwant %s", err, want)
	}
}

// The connection drops mid-run (the server stops and starts again): calls retry with back-off
// and succeed once it is back, with nothing written twice.
func TestConnectionDroppedMidRun(t *testing.T) { mysqltest.Each(t, testConnectionDroppedMidRun) }

func testConnectionDroppedMidRun(t *testing.T, f mysqltest.Flavour) {
	s := mysqltest.StartOf(t, f)
	ctx := context.Background()
	if err := s.Exec(ctx, "", "CREATE DATABASE crm", "CREATE TABLE crm.products (id INT AUTO_INCREMENT PRIMARY KEY, name TEXT)"); err != nil {
		t.Fatal(err)
	}
	c := open(t, s.AdminDSN("crm"), system("Product: {table: products, id: id}"))
	if _, err := c.Create(ctx, "Product", []map[string]any{{"name": "before"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	back := make(chan error, 1)
	// Down for 2 s and the time it takes to start (MariaDB 0.2 s, Oracle MySQL 1 to 3 s): as a
	// restart is, longer than the 1.5 s the retries once waited in all.
	go func() { time.Sleep(2 * time.Second); back <- s.Restart() }()
	res, err := c.Create(ctx, "Product", []map[string]any{{"name": "during"}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("create while the server restarts: %v %v", err, res)
	}
	if err := <-back; err != nil {
		t.Fatal(err)
	}
	if recs := scanAll(t, c, "Product", ""); len(recs) != 2 {
		t.Fatalf("%d records, want 2: %v", len(recs), recs)
	}
}

// A trigger counts the attempts to insert a row in the AUTO_INCREMENT of table attempts, which
// a rollback does not take back: LAST_INSERT_ID() is 1 in the first attempt only. (A MyISAM
// counter would break Oracle MySQL's GTID consistency with the binary log on; MariaDB's
// sequences are MariaDB's.)
const (
	attemptsDDL  = "CREATE TABLE attempts (n INT AUTO_INCREMENT PRIMARY KEY)"
	countAttempt = "INSERT INTO attempts () VALUES ();"
)

// A deadlock (or a lock wait timeout) fails the transaction as a whole: it runs again, and the
// records are written once.
func TestDeadlockIsRetried(t *testing.T) { mysqltest.Each(t, testDeadlockIsRetried) }

func testDeadlockIsRetried(t *testing.T, f mysqltest.Flavour) {
	for _, errno := range []string{"1213", "1205"} {
		t.Run(errno, func(t *testing.T) {
			db := mysqltest.NewOf(t, f)
			db.Exec(t, "CREATE TABLE products (id INT AUTO_INCREMENT PRIMARY KEY, name TEXT)", attemptsDDL,
				"CREATE TRIGGER fail_once BEFORE INSERT ON products FOR EACH ROW BEGIN "+countAttempt+" IF LAST_INSERT_ID() = 1 THEN SIGNAL SQLSTATE '40001' SET MYSQL_ERRNO = "+errno+", MESSAGE_TEXT = 'simulated'; END IF; END")
			c := open(t, db.DSN(), system("Product: {table: products, id: id}"))
			res, err := c.Create(context.Background(), "Product", []map[string]any{{"name": "a"}, {"name": "b"}})
			if err != nil || res[0].Err != nil || res[1].Err != nil {
				t.Fatalf("create: %v %v", err, res)
			}
			if recs := scanAll(t, c, "Product", ""); len(recs) != 2 {
				t.Fatalf("%d records, want 2", len(recs))
			}
			var n int
			if err := sqlOpen(t, db.DSN()).QueryRow("SELECT max(n) FROM attempts").Scan(&n); err != nil || n != 3 {
				t.Fatalf("the trigger ran %d times (%v), want 3: the failed attempt once, then both rows", n, err)
			}
		})
	}
}

func sqlOpen(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// The server kills the connector's connection mid-statement (an administrator's KILL, a
// failover): the transaction is gone, so it runs again on a new connection, and the records are
// written once. Both servers close the killed session's connection (the driver reads an
// unexpected EOF).
func TestKilledConnectionIsRetried(t *testing.T) { mysqltest.Each(t, testKilledConnectionIsRetried) }

func testKilledConnectionIsRetried(t *testing.T, f mysqltest.Flavour) {
	db := mysqltest.NewOf(t, f)
	db.Exec(t, "CREATE TABLE products (id INT AUTO_INCREMENT PRIMARY KEY, name TEXT)", attemptsDDL,
		"CREATE TRIGGER slow_once BEFORE INSERT ON products FOR EACH ROW BEGIN "+countAttempt+" IF LAST_INSERT_ID() = 1 THEN DO SLEEP(20); END IF; END")
	admin := sqlOpen(t, db.DSN())
	c := open(t, db.DSN(), system("Product: {table: products, id: id}"))
	killed := make(chan error, 1)
	go func() {
		for range 200 {
			var id int64
			err := admin.QueryRow("SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND (INFO LIKE 'INSERT INTO `products`%' OR INFO LIKE 'DO SLEEP(%') LIMIT 1").Scan(&id)
			if err == nil {
				_, err = admin.Exec(fmt.Sprintf("KILL %d", id))
				killed <- err
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		killed <- fmt.Errorf("the INSERT never showed in the process list")
	}()
	res, err := c.Create(context.Background(), "Product", []map[string]any{{"name": "a"}, {"name": "b"}})
	if kerr := <-killed; kerr != nil {
		t.Fatal(kerr)
	}
	if err != nil || res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("create: %v %v", err, res)
	}
	if recs := scanAll(t, c, "Product", ""); len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
}

// Oracle MySQL's users authenticate with caching_sha2_password: the first login of a user
// (and every one after FLUSH PRIVILEGES empties the server's cache) is a full authentication,
// which over TCP without TLS sends the password encrypted with the server's RSA key; the driver
// asks the server for that key, so a plain user:password@tcp(...) DSN connects.
func TestCachingSha2FullAuthentication(t *testing.T) {
	db := mysqltest.NewOf(t, mysqltest.OracleMySQL) // MariaDB has no caching_sha2_password
	db.Exec(t, "CREATE TABLE products (id INT AUTO_INCREMENT PRIMARY KEY, name TEXT)", "INSERT INTO products (name) VALUES ('a')",
		"CREATE USER 'sha2'@'127.0.0.1' IDENTIFIED WITH caching_sha2_password BY '"+canary+"'",
		"GRANT SELECT ON "+db.Name+".* TO 'sha2'@'127.0.0.1'", "FLUSH PRIVILEGES")
	var plugin string
	if err := sqlOpen(t, db.DSN()).QueryRow("SELECT plugin FROM mysql.user WHERE user = 'sha2'").Scan(&plugin); err != nil || plugin != "caching_sha2_password" {
		t.Fatalf("plugin %q (%v)", plugin, err)
	}
	c := open(t, db.Server.DSN("sha2", canary, db.Name), system("Product: {table: products, id: id}"))
	if recs := scanAll(t, c, "Product", ""); len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	err := openErr(t, db.Server.DSN("sha2", canary+"x", db.Name))
	want := fmt.Sprintf("cannot connect to MySQL at 127.0.0.1:%d (database %s, user sha2): Error 1045 (28000): Access denied for user 'sha2'@'127.0.0.1' (using password: YES)", db.Server.Port, db.Name)
	if err.Error() != want {
		t.Errorf("wrong password: %v\nwant %s", err, want)
	}
}
