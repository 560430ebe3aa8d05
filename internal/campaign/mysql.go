package campaign

import (
	"context"
	"database/sql"
	"fmt"

	_ "github.com/go-sql-driver/mysql" // the database/sql driver "mysql"
)

// MySQLTarget is a target system in a MySQL or MariaDB database (the connector mysql), stamped
// by triggers like the SQLite store; its ids are AUTO_INCREMENT, read with LAST_INSERT_ID().
type MySQLTarget struct {
	DSN string // an empty database the campaign may fill (go-sql-driver/mysql form)
}

const storeMySQLYAML = `system: store
name: Campaign Store
connector: mysql
dsn: ${STORE_DSN}
entities:
  Thing:
    table: things
    id: id
    updated: modifiedOn
`

var storeMySQLSQL = []string{
	"CREATE TABLE things (id BIGINT AUTO_INCREMENT PRIMARY KEY, sku TEXT, title TEXT, amount INT, cost DECIMAL(10,2), modifiedOn TIMESTAMP(6) NULL, INDEX (modifiedOn, id))",
	"CREATE TRIGGER things_stamp_insert BEFORE INSERT ON things FOR EACH ROW SET NEW.modifiedOn = COALESCE(NEW.modifiedOn, NOW(6))",
	"CREATE TRIGGER things_stamp_update BEFORE UPDATE ON things FOR EACH ROW SET NEW.modifiedOn = IF(NEW.modifiedOn <=> OLD.modifiedOn, NOW(6), NEW.modifiedOn)",
}

// Setup creates the table and writes the store's system file.
func (m MySQLTarget) Setup(ctx context.Context, dir string) ([]string, error) {
	db, err := sql.Open("mysql", m.DSN)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	for _, q := range storeMySQLSQL {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("creating the store's table: %w", err)
		}
	}
	return []string{"STORE_DSN=" + m.DSN}, writeFiles(dir, map[string]string{"mappings/systems/store.yaml": storeMySQLYAML})
}

// Props implements Target.
func (MySQLTarget) Props() [4]string { return [4]string{"sku", "title", "amount", "cost"} }

// Stop implements Target: the server is the caller's.
func (MySQLTarget) Stop() error { return nil }

// Side connects to the store's database.
func (m MySQLTarget) Side(ctx context.Context, dir string) (Side, error) {
	db, err := sql.Open("mysql", m.DSN)
	if err != nil {
		return nil, err
	}
	return &mysqlSide{db: db}, nil
}

// mysqlSide edits and reads the store's table directly, as its users' programs do.
type mysqlSide struct{ db *sql.DB }

func (s *mysqlSide) Create(ctx context.Context, it Item) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO things (sku, title, amount, cost) VALUES (?, ?, ?, ?)", it.Code, it.Name, it.Qty, it.Price)
	return err
}

func (s *mysqlSide) set(ctx context.Context, col, code string, v any) (bool, error) {
	res, err := s.db.ExecContext(ctx, "UPDATE things SET "+col+" = ? WHERE sku = ?", v, code)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func (s *mysqlSide) SetName(ctx context.Context, code, name string) (bool, error) {
	return s.set(ctx, "title", code, name)
}

func (s *mysqlSide) SetQty(ctx context.Context, code string, qty int64) (bool, error) {
	return s.set(ctx, "amount", code, qty)
}

func (s *mysqlSide) Snapshot(ctx context.Context) (map[string][]Item, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT sku, coalesce(title, ''), coalesce(amount, 0), coalesce(cost, 0.00) FROM things")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]Item{}
	for rows.Next() {
		var it Item
		if err := rows.Scan(&it.Code, &it.Name, &it.Qty, &it.Price); err != nil {
			return nil, err
		}
		out[it.Code] = append(out[it.Code], it)
	}
	return out, rows.Err()
}

func (s *mysqlSide) Close() error { return s.db.Close() }
