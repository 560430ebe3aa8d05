package conntest

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/connector/mysql"
	"github.com/dataflow-sync/dataflow/engine/connector/postgres"
	"github.com/dataflow-sync/dataflow/engine/connector/sqlite"
	"github.com/dataflow-sync/dataflow/internal/mysqltest"
	"github.com/dataflow-sync/dataflow/internal/pgtest"
)

// TestMain stops the binary's servers at the end.
func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	mysqltest.StopShared()
	os.Exit(code)
}

func loadSystem(t *testing.T, src string, env map[string]string) *config.System {
	t.Helper()
	l, err := config.NewLoader(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	p := &config.Project{}
	for _, d := range l.AddFile(p, "system.yaml", []byte(src)) {
		t.Fatalf("system file: %v", d)
	}
	return p.Systems[0]
}

func openSystem(t *testing.T, d connector.Opener, src string, env map[string]string) connector.Conn {
	t.Helper()
	c, err := d.Open(context.Background(), loadSystem(t, src, env), nil, connector.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

const sqliteDDL = `CREATE TABLE products (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL, price NUMERIC(10,2), qty INTEGER,
	active BOOLEAN, updated_at TEXT, note TEXT);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, updated_at TEXT);
CREATE TABLE order_lines (id INTEGER PRIMARY KEY, order_id INTEGER, sku TEXT, qty INTEGER);`

func TestSQLite(t *testing.T) {
	Run(t, func(t *testing.T) connector.Conn {
		path := filepath.Join(t.TempDir(), "crm.db")
		db, err := sql.Open("sqlite3", path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(sqliteDDL); err != nil {
			t.Fatal(err)
		}
		db.Close()
		return openSystem(t, sqlite.Driver{}, "system: crm\nname: CRM\nconnector: sqlite\npath: ${DB}\n"+Entities, map[string]string{"DB": path})
	})
}

const postgresDDL = `CREATE TABLE products (id bigserial PRIMARY KEY, name varchar(20) NOT NULL, price numeric(10,2), qty integer,
	active boolean, updated_at timestamptz, note text);
CREATE INDEX ON products (updated_at, id);
CREATE TABLE orders (id serial PRIMARY KEY, customer text, updated_at timestamptz);
CREATE TABLE order_lines (id serial PRIMARY KEY, order_id integer REFERENCES orders, sku text, qty integer);`

func TestPostgres(t *testing.T) {
	Run(t, func(t *testing.T) connector.Conn {
		db := pgtest.New(t)
		db.Exec(t, postgresDDL)
		return openSystem(t, postgres.Driver{}, "system: crm\nname: CRM\nconnector: postgres\ndsn: ${DSN}\n"+Entities, map[string]string{"DSN": db.DSN()})
	})
}

const mysqlDDL = "CREATE TABLE products (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NOT NULL, price DECIMAL(10,2), qty INT, " +
	"active BOOL, updated_at TIMESTAMP(6) NULL, note TEXT, INDEX (updated_at, id))"

func TestMySQL(t *testing.T) { mysqltest.Each(t, testMySQL) }

func testMySQL(t *testing.T, f mysqltest.Flavour) {
	Run(t, func(t *testing.T) connector.Conn {
		db := mysqltest.NewOf(t, f)
		db.Exec(t, mysqlDDL,
			"CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, customer TEXT, updated_at DATETIME)",
			"CREATE TABLE order_lines (id INT AUTO_INCREMENT PRIMARY KEY, order_id INT, sku TEXT, qty INT, FOREIGN KEY (order_id) REFERENCES orders (id))")
		return openSystem(t, mysql.Driver{}, "system: crm\nname: CRM\nconnector: mysql\ndsn: ${DSN}\n"+Entities, map[string]string{"DSN": db.DSN()})
	})
}
