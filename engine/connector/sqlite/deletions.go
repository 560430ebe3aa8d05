package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// deletionsTable holds, per table, the number of its rows deleted since its trigger was first
// installed. A system with track_deletes: true gets it and one trigger per entity table.
const deletionsTable = "dataflow_deletions"

// Deletions implements connector.DeleteCounter for a system with track_deletes: true. On
// first use for a table it installs (unless the connection is read-only) a trigger that
// counts the table's deleted rows in deletionsTable. The number is read only while the
// trigger is in place: a table that was dropped and made again has lost it. Installing it
// counts as a deletion, so that a number stored before the trigger went missing never equals
// one read after: the deletions of the gap were not counted.
//
// SQLite fires no delete trigger for rows that INSERT OR REPLACE removes to make room for a
// conflicting row, unless the deleting connection sets recursive_triggers: such deletions go
// uncounted, which the engine's periodic check of every link covers.
func (c *conn) Deletions(ctx context.Context, name string) (int64, bool, error) {
	if !c.trackDeletes {
		return 0, false, nil
	}
	e, err := c.entity(ctx, name)
	if err != nil {
		return 0, false, err
	}
	if err := c.track(ctx, e.table.name); err != nil {
		return 0, false, fmt.Errorf("track_deletes: cannot install the trigger that counts the deletions of %s (%w); let dataflow create a table and a trigger in the database, or remove track_deletes",
			Quote(e.table.name), err)
	}
	var present int
	if err := c.r.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE (type = 'table' AND name = ?1)
		OR (type = 'trigger' AND name = ?2 AND tbl_name = ?3 COLLATE NOCASE)`,
		deletionsTable, triggerName(e.table.name), e.table.name).Scan(&present); err != nil {
		return 0, false, err
	}
	if present < 2 {
		return 0, false, nil // not tracked (yet: a read-only connection installs nothing)
	}
	var n int64
	switch err := c.r.QueryRowContext(ctx, `SELECT deleted FROM `+deletionsTable+` WHERE tbl = ?`, e.table.name).Scan(&n); {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, err
	}
	return n, true, nil
}

// triggerName is the name of the trigger that counts a table's deletions.
func triggerName(table string) string { return "dataflow_count_deleted_" + table }

// track installs the trigger of table unless it is there, once per connection.
func (c *conn) track(ctx context.Context, table string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tracked[table] || c.w == nil {
		return nil
	}
	tx, err := c.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var present int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND name = ?`, triggerName(table)).Scan(&present); err != nil {
		return err
	}
	if present == 0 {
		for _, stmt := range []string{
			`CREATE TABLE IF NOT EXISTS ` + deletionsTable + ` (tbl TEXT PRIMARY KEY, deleted INTEGER NOT NULL) WITHOUT ROWID`,
			`CREATE TRIGGER ` + Quote(triggerName(table)) + ` AFTER DELETE ON ` + Quote(table) + ` BEGIN
				INSERT INTO ` + deletionsTable + ` (tbl, deleted) VALUES (` + literal(table) + `, 1)
				ON CONFLICT (tbl) DO UPDATE SET deleted = deleted + 1;
			END`,
			// Installing counts as a deletion (see Deletions).
			`INSERT INTO ` + deletionsTable + ` (tbl, deleted) VALUES (` + literal(table) + `, 1)
				ON CONFLICT (tbl) DO UPDATE SET deleted = deleted + 1`,
		} {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if c.tracked == nil {
		c.tracked = map[string]bool{}
	}
	c.tracked[table] = true
	return nil
}

// literal quotes s as an SQL string literal.
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
