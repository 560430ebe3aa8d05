package mysql

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/connector/sqlconn"
)

// maxStatement bounds the text of one multi-row INSERT (the values are interpolated into it),
// well below the smallest max_allowed_packet a server runs with (1 MiB on old MySQL; 16 MiB on
// MariaDB, 64 MiB on MySQL 8 by default).
const maxStatement = 512 << 10

// InsertMany implements sqlconn.BulkInserter: the rows that write the same columns go as one
// multi-row INSERT ... VALUES (...), (...), one round trip for them all.
//
// Their ids: given ones are known; those the server assigns (AUTO_INCREMENT) are read back
// from LAST_INSERT_ID(), which is the first row's id, the others following it by
// auto_increment_increment. That holds only when the server hands a statement consecutive
// values, which it documents for InnoDB with innodb_autoinc_lock_mode 0 or 1 (MariaDB's
// default, and MySQL's before 8.0) and for engines with table locks (Aria, MyISAM). With lock
// mode 2 (MySQL 8's default), whose values may interleave with other sessions' inserts, rows
// whose ids the server assigns are inserted one at a time, each id read back on its own.
// The number of rows the statement inserted is checked too.
func (d *dialect) InsertMany(ctx context.Context, tx sqlconn.Tx, t *sqlconn.Table, rows []sqlconn.Row, id int) ([]string, error) {
	ids := make([]string, len(rows))
	var auto *autoIncrement
	for _, idx := range groups(rows) {
		if err := d.insertGroup(ctx, tx, t, rows, idx, id, ids, &auto); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// groups splits rows into runs that write the same columns, in the order of their first row,
// each small enough for one statement.
func groups(rows []sqlconn.Row) [][]int {
	var out [][]int
	open := map[string]int{} // columns → the group being filled
	sizes := map[int]int{}
	for i, r := range rows {
		key := fmt.Sprint(r.Cols)
		g, ok := open[key]
		size := statementSize(r)
		if !ok || sizes[g]+size > maxStatement {
			g = len(out)
			out = append(out, nil)
			open[key] = g
		}
		out[g] = append(out[g], i)
		sizes[g] += size
	}
	return out
}

// insertGroup inserts the rows at idx, which write the same columns, and sets their ids.
func (d *dialect) insertGroup(ctx context.Context, tx sqlconn.Tx, t *sqlconn.Table, rows []sqlconn.Row, idx []int, id int, ids []string, auto **autoIncrement) error {
	group := make([]sqlconn.Row, len(idx))
	for i, k := range idx {
		group[i] = rows[k]
	}
	idAt := slices.Index(group[0].Cols, id)
	if idAt < 0 {
		if *auto == nil {
			a, err := d.autoIncrement(ctx, tx, t)
			if err != nil {
				return err
			}
			*auto = &a
		}
		if !(*auto).consecutive || !t.Cols[id].Auto || len(group) == 1 {
			for i, r := range group {
				got, err := d.Insert(ctx, tx, t, r.Cols, r.Args, id)
				if err != nil {
					return err
				}
				ids[idx[i]] = got
			}
			return nil
		}
	}
	q, args := d.multiInsert(t, group)
	n, first, err := insertExec(ctx, tx, q, args...)
	if err != nil {
		return err
	}
	if n != int64(len(group)) {
		return fmt.Errorf("an insert of %d rows into table %s inserted %d", len(group), t.Quoted, n)
	}
	if idAt >= 0 {
		for i, r := range group {
			s, _ := r.Args[idAt].(string)
			ids[idx[i]] = s
		}
		return nil
	}
	if first == 0 {
		return fmt.Errorf("the new rows of table %s have no id: give %q a value", t.Quoted, t.Cols[id].Name)
	}
	for i := range group {
		ids[idx[i]] = strconv.FormatUint(first+uint64(i)*(*auto).increment, 10)
	}
	return nil
}

func statementSize(r sqlconn.Row) int {
	n := 8
	for _, a := range r.Args {
		if s, ok := a.(string); ok {
			n += 2*len(s) + 4 // the driver escapes each value: at worst every byte doubles
		} else {
			n += 6
		}
	}
	return n
}

func (d *dialect) multiInsert(t *sqlconn.Table, group []sqlconn.Row) (string, []any) {
	cols := group[0].Cols
	names, params := make([]string, len(cols)), make([]string, len(cols))
	for i, c := range cols {
		names[i], params[i] = d.Quote(t.Cols[c].Name), d.Param(0, &t.Cols[c])
	}
	tuple := "(" + strings.Join(params, ", ") + ")"
	var b strings.Builder
	b.WriteString("INSERT INTO " + t.Quoted + " (" + strings.Join(names, ", ") + ") VALUES ")
	args := make([]any, 0, len(group)*len(cols))
	for i, r := range group {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tuple)
		args = append(args, r.Args...)
	}
	return b.String(), args
}

// autoIncrement is how a table's server-assigned ids follow each other within a statement.
type autoIncrement struct {
	consecutive bool   // a multi-row insert gets consecutive values
	increment   uint64 // auto_increment_increment: the step between them
}

func (d *dialect) autoIncrement(ctx context.Context, tx sqlconn.Tx, t *sqlconn.Table) (autoIncrement, error) {
	schemaName, name := split(t.Name)
	rows, err := sqlconn.Texts(ctx, tx, `SELECT @@innodb_autoinc_lock_mode, @@auto_increment_increment,
	COALESCE((SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?), '')`, schemaName, name)
	if err != nil {
		return autoIncrement{}, err
	}
	if len(rows) != 1 {
		return autoIncrement{}, nil
	}
	inc, err := strconv.ParseUint(rows[0][1], 10, 64)
	if err != nil || inc == 0 {
		return autoIncrement{}, nil
	}
	return autoIncrement{consecutive: consecutiveIDs(rows[0][0], rows[0][2]), increment: inc}, nil
}

// consecutiveIDs reports whether the server documents consecutive AUTO_INCREMENT values for
// the rows of one multi-row INSERT with the given InnoDB lock mode and table engine.
func consecutiveIDs(lockMode, engine string) bool {
	switch strings.ToLower(engine) {
	case "innodb":
		return lockMode == "0" || lockMode == "1"
	case "aria", "myisam", "memory":
		return true // table locks: one statement at a time
	}
	return false
}

func lastInsertID(ctx context.Context, tx sqlconn.Tx) (uint64, error) {
	rows, err := sqlconn.Texts(ctx, tx, "SELECT LAST_INSERT_ID()")
	if err != nil {
		return 0, err
	}
	if len(rows) != 1 {
		return 0, nil
	}
	return strconv.ParseUint(rows[0][0], 10, 64)
}
