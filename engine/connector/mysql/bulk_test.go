package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"

	"github.com/dataflow-sync/dataflow/internal/mysqltest"
)

func inserts(t *testing.T, db *sql.DB) int { return status(t, db, "Com_insert") }

// status is a counter of the server's statements (SHOW GLOBAL STATUS).
func status(t *testing.T, db *sql.DB, name string) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SHOW GLOBAL STATUS LIKE '"+name+"'").Scan(&name, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// checkCreated checks that each created record's id is the row the database holds its sku in,
// and that the record read back is that row.
func checkCreated(t *testing.T, db *sql.DB, skus []string, ids []string) {
	t.Helper()
	for i, sku := range skus {
		var id string
		if err := db.QueryRow("SELECT id FROM products WHERE sku = ?", sku).Scan(&id); err != nil {
			t.Fatalf("%s: %v", sku, err)
		}
		if ids[i] != id {
			t.Fatalf("record %d (%s) was given id %s, the database holds it as %s", i, sku, ids[i], id)
		}
	}
}

// Creates of a batch go as multi-row INSERTs (MariaDB's innodb_autoinc_lock_mode is 1:
// consecutive ids per statement), records writing different columns in a statement of their
// own, and every record gets the id the database gave it, also while another session inserts
// into the same table.
func TestCreatesBatched(t *testing.T) { mysqltest.Each(t, testCreatesBatched) }

func testCreatesBatched(t *testing.T, f mysqltest.Flavour) {
	my := mysqltest.NewOf(t, f)
	my.Exec(t, "CREATE TABLE products (id INT AUTO_INCREMENT PRIMARY KEY, sku VARCHAR(40) NOT NULL UNIQUE, name VARCHAR(80), price DECIMAL(10,2)) ENGINE=InnoDB")
	db, err := sql.Open("mysql", my.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := open(t, my.DSN(), system("Product: {table: products, id: id}"))
	create := func(prefix string, n int) ([]string, []string) {
		recs := make([]map[string]any, n)
		skus := make([]string, n)
		for i := range recs {
			skus[i] = fmt.Sprintf("%s-%04d", prefix, i)
			recs[i] = map[string]any{"sku": skus[i], "name": "Product " + skus[i], "price": 0.99}
			if i%7 == 3 {
				delete(recs[i], "name") // other columns: another statement
			}
		}
		res, err := c.Create(context.Background(), "Product", recs)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]string, n)
		for i, r := range res {
			if r.Err != nil {
				t.Fatalf("record %d: %v", i, r.Err)
			}
			if r.Record.Data["sku"] != skus[i] {
				t.Fatalf("record %d (%s) read back as %v", i, skus[i], r.Record.Data)
			}
			ids[i] = r.Record.ID
		}
		return skus, ids
	}

	// One chunk (of up to 2,000 records) with two sets of columns: 2 statements. Oracle MySQL's
	// default innodb_autoinc_lock_mode is 2 (interleaved): no consecutive ids per statement, so
	// one INSERT per record, each id read from its own reply.
	var lockMode string
	if err := db.QueryRow("SELECT @@innodb_autoinc_lock_mode").Scan(&lockMode); err != nil {
		t.Fatal(err)
	}
	wantInserts, why := 2, "one per chunk and set of columns"
	if lockMode == "2" {
		wantInserts, why = 600, "one per record with innodb_autoinc_lock_mode 2"
	}
	if want := map[mysqltest.Flavour]string{mysqltest.MariaDB: "1", mysqltest.OracleMySQL: "2"}[f]; lockMode != want {
		t.Fatalf("%s: innodb_autoinc_lock_mode is %s, the server's default is %s", f, lockMode, want)
	}
	before := inserts(t, db)
	skus, ids := create("a", 600)
	checkCreated(t, db, skus, ids)
	if n := inserts(t, db) - before; n != wantInserts {
		t.Errorf("600 creates took %d INSERT statements, want %s (%d)", n, why, wantInserts)
	}

	// Another session inserts all the while: ids still match their rows.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := db.Exec("INSERT INTO products (sku) VALUES (?)", fmt.Sprintf("other-%05d", i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for round := 0; round < 5; round++ {
		skus, ids := create(fmt.Sprintf("b%d", round), 300)
		checkCreated(t, db, skus, ids)
	}
	close(stop)
	wg.Wait()
}

// Consecutive ids per statement are what the server documents for InnoDB's lock modes 0 and
// 1 and for engines with table locks; not for lock mode 2 (interleaved), nor for an engine it
// does not know.
func TestConsecutiveIDs(t *testing.T) {
	for _, c := range []struct {
		mode, engine string
		want         bool
	}{{"0", "InnoDB", true}, {"1", "InnoDB", true}, {"2", "InnoDB", false}, {"2", "Aria", true}, {"2", "MyISAM", true}, {"1", "ROCKSDB", false}, {"", "", false}} {
		if got := consecutiveIDs(c.mode, c.engine); got != c.want {
			t.Errorf("consecutiveIDs(%q, %q) = %v, want %v", c.mode, c.engine, got, c.want)
		}
	}
}

// A row inserted on its own (here: each writes columns of its own) takes its id from the
// server's reply to the INSERT, with no SELECT LAST_INSERT_ID() after it.
func TestCreateOneAtATimeReadsNoID(t *testing.T) { mysqltest.Each(t, testCreateOneAtATimeReadsNoID) }

func testCreateOneAtATimeReadsNoID(t *testing.T, f mysqltest.Flavour) {
	my := mysqltest.NewOf(t, f)
	my.Exec(t, "CREATE TABLE products (id INT AUTO_INCREMENT PRIMARY KEY, sku VARCHAR(40) NOT NULL UNIQUE, c1 TEXT, c2 TEXT, c3 TEXT, c4 TEXT, c5 TEXT)")
	db, err := sql.Open("mysql", my.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := open(t, my.DSN(), system("Product: {table: products, id: id}"))
	recs := make([]map[string]any, 5)
	skus := make([]string, 5)
	for i := range recs {
		skus[i] = fmt.Sprintf("sku-%d", i)
		recs[i] = map[string]any{"sku": skus[i], fmt.Sprintf("c%d", i+1): "x"}
	}
	c.Create(context.Background(), "Product", recs[:1]) // the table's columns, once
	before := status(t, db, "Com_select")
	res, err := c.Create(context.Background(), "Product", recs[1:])
	if err != nil {
		t.Fatal(err)
	}
	selects := status(t, db, "Com_select") - before - 1 // the SHOW STATUS itself
	ids := []string{}
	for i, r := range res {
		if r.Err != nil || r.Record.Data["sku"] != skus[i+1] {
			t.Fatalf("record %d: %v (%v)", i+1, r.Record, r.Err)
		}
		ids = append(ids, r.Record.ID)
	}
	checkCreated(t, db, skus[1:], ids)
	// the table's auto-increment settings and the read-back: 2
	if selects > 2 {
		t.Errorf("4 creates of a row each took %d SELECTs, want 2 (no SELECT LAST_INSERT_ID())", selects)
	}
}
