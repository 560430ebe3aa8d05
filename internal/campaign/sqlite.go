package campaign

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// columns names an Item's fields in one system's table.
type columns struct{ table, code, name, qty, price string }

var (
	shopColumns  = columns{"items", "code", "name", "qty", "price"}
	storeColumns = columns{"things", "sku", "title", "amount", "cost"}
)

// editBusyTimeout is how long an edit of the kill campaigns waits for a run's lock: the runs'
// transactions are short, and a killed run's lock is gone with its process.
const editBusyTimeout = 10 * time.Second

// sqliteSide edits and reads a system's SQLite database directly, as its users' programs do.
type sqliteSide struct {
	db   *sql.DB
	cols columns
}

// openSQLiteSide opens path, creating it from script when missing (as the engine's `init` does).
// An edit waits up to busy for a lock that a run holds.
func openSQLiteSide(ctx context.Context, path, script string, cols columns, busy time.Duration) (*sqliteSide, error) {
	_, statErr := os.Stat(path)
	db, err := sql.Open("sqlite3", fmt.Sprintf("file:%s?_busy_timeout=%d&_journal_mode=WAL", path, busy.Milliseconds()))
	if err != nil {
		return nil, err
	}
	if os.IsNotExist(statErr) {
		if _, err := db.ExecContext(ctx, script); err != nil {
			db.Close()
			return nil, fmt.Errorf("creating %s: %w", filepath.Base(path), err)
		}
	}
	return &sqliteSide{db: db, cols: cols}, nil
}

func (s *sqliteSide) Create(ctx context.Context, it Item) error {
	c := s.cols
	_, err := s.db.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s (%s, %s, %s, %s) VALUES (?, ?, ?, ?)", c.table, c.code, c.name, c.qty, c.price),
		it.Code, it.Name, it.Qty, it.Price)
	return err
}

func (s *sqliteSide) set(ctx context.Context, col, code string, v any) (bool, error) {
	res, err := s.db.ExecContext(ctx, fmt.Sprintf("UPDATE %s SET %s = ? WHERE %s = ?", s.cols.table, col, s.cols.code), v, code)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func (s *sqliteSide) SetName(ctx context.Context, code, name string) (bool, error) {
	return s.set(ctx, s.cols.name, code, name)
}

func (s *sqliteSide) SetQty(ctx context.Context, code string, qty int64) (bool, error) {
	return s.set(ctx, s.cols.qty, code, qty)
}

func (s *sqliteSide) Snapshot(ctx context.Context) (map[string][]Item, error) {
	c := s.cols
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf("SELECT %s, coalesce(%s, ''), coalesce(%s, 0), printf('%%.2f', %s) FROM %s", c.code, c.name, c.qty, c.price, c.table))
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

func (s *sqliteSide) Close() error { return s.db.Close() }

// SQLiteTarget is a target system in a SQLite database, stamped by triggers like the source.
type SQLiteTarget struct{}

// Setup writes the store's system file and its creation script.
func (SQLiteTarget) Setup(ctx context.Context, dir string) ([]string, error) {
	return nil, writeFiles(dir, map[string]string{"mappings/systems/store.yaml": storeYAML, "store.sql": storeSQL})
}

// Props implements Target.
func (SQLiteTarget) Props() [4]string { return [4]string{"sku", "title", "amount", "cost"} }

// Stop implements Target: there is no server.
func (SQLiteTarget) Stop() error { return nil }

// Side opens the store's database.
func (SQLiteTarget) Side(ctx context.Context, dir string) (Side, error) {
	return openSQLiteSide(ctx, filepath.Join(dir, "store.db"), storeSQL, storeColumns, editBusyTimeout)
}
