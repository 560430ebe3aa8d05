package sqlite

// Writes: Create, Update and Delete of a batch of records in one transaction. A batch costs
// a statement per record (and per list row) and a few reads for the whole batch: the records
// an update patches are read before it in one query per chunk of ids, and the written records
// are read back the same way. Only a batch in which a record fails in SQLite (a constraint)
// pays for savepoints: it is rolled back and written again with a savepoint per record, so
// that the failing record fails alone and the others are written as if it were not there.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/schema"
)

// invalidData is an error of a record's data found before anything of the record was written
// (an unknown property, a value the column cannot hold): the record fails, and the batch goes
// on without rolling anything back.
type invalidData struct{ err error }

func (e invalidData) Error() string { return e.err.Error() }
func (e invalidData) Unwrap() error { return e.err }

// writeOne writes record i of a batch and returns its id as stored (nil for a delete). Its
// context is not cancelled: write checks for a cancellation between records (see write).
type writeOne func(ctx context.Context, tx *sql.Tx, i int) (any, error)

// Create implements connector.Conn: one transaction, a statement per record and per list row,
// the created records as stored predicted from what was written (prediction), else read back
// together.
func (c *conn) Create(ctx context.Context, name string, data []map[string]any) ([]connector.Result, error) {
	var p *prediction // nil: read the rows back whole
	var pe *entity    // p's
	defer func() {
		if p != nil {
			pe.release(p)
		}
	}()
	prepare := func(tx *sql.Tx, e *entity) (err error) {
		p, err = e.predictIn(ctx, tx, len(data))
		pe = e
		return err
	}
	back := func(e *entity, ctx context.Context, tx *sql.Tx, results []connector.Result, ids []any) error {
		if p == nil {
			return e.readBack(ctx, tx, results, ids)
		}
		return p.finish(ctx, tx, e, results, ids, data)
	}
	one := func(e *entity) writeOne {
		return func(ctx context.Context, tx *sql.Tx, i int) (any, error) { return e.create(ctx, tx, data[i], p, i) }
	}
	first := func(ctx context.Context, sc *sql.Conn, tx *sql.Tx, e *entity, results []connector.Result, ids []any) (bool, error) {
		if p == nil {
			return writeAll(ctx, tx, len(data), one(e), results, ids)
		}
		return e.insertAll(ctx, sc, tx, data, p, results, ids)
	}
	return c.writeFirst(ctx, name, len(data), prepare, back, one, first)
}

// firstPass writes a batch's records without savepoints (as writeAll does), on the
// transaction's connection sc.
type firstPass func(ctx context.Context, sc *sql.Conn, tx *sql.Tx, e *entity, results []connector.Result, ids []any) (failed bool, err error)

// readBackAll is a write's readBack that reads every record written back (readBack).
func readBackAll(e *entity, ctx context.Context, tx *sql.Tx, results []connector.Result, ids []any) error {
	return e.readBack(ctx, tx, results, ids)
}

// Update implements connector.Conn: a patch per record, in one transaction; the records are
// read together before and after.
func (c *conn) Update(ctx context.Context, name string, recs []connector.Record) ([]connector.Result, error) {
	var before map[string]stored
	prepare := func(tx *sql.Tx, e *entity) error {
		ids := make([]string, len(recs))
		for i, r := range recs {
			ids[i] = r.ID
		}
		var err error
		before, err = e.readIDs(ctx, tx, ids)
		return err
	}
	return c.write(ctx, name, len(recs), prepare, readBackAll, func(e *entity) writeOne {
		seen := make(map[string]bool, len(recs))
		return func(ctx context.Context, tx *sql.Tx, i int) (any, error) {
			r := recs[i]
			cur, ok := before[r.ID]
			if !ok || seen[r.ID] {
				// Read now: an id in another form than the stored one ("07" for 7), or a
				// record the batch has already changed.
				rec, id, found, err := e.one(ctx, tx, r.ID)
				if err != nil {
					return nil, err
				}
				if !found {
					return nil, invalidData{fmt.Errorf("record %s does not exist", r.ID)}
				}
				cur = stored{rec, id}
			}
			seen[r.ID] = true
			return e.update(ctx, tx, r, cur.rec, cur.id)
		}
	})
}

// Delete implements connector.Conn: each record with its lists' rows, in one transaction.
func (c *conn) Delete(ctx context.Context, name string, ids []string) ([]error, error) {
	res, err := c.write(ctx, name, len(ids), nil, nil, func(e *entity) writeOne {
		return func(ctx context.Context, tx *sql.Tx, i int) (any, error) { return nil, e.delete(ctx, tx, ids[i]) }
	})
	if err != nil {
		return nil, err
	}
	errs := make([]error, len(res))
	for i, r := range res {
		errs[i] = r.Err
	}
	return errs, nil
}

// stored is a record as read, with its id as stored.
type stored struct {
	rec connector.Record
	id  any
}

// write writes n records in one transaction. prepare (when not nil) runs first in the
// transaction; one(e) gives the function that writes record i. The records are written one
// after the other without savepoints; when one fails in SQLite, the batch is rolled back and
// written again with a savepoint per record (writeEach). A record whose data is invalid
// (invalidData) fails without either. A failure of the database itself (I/O, a lock held too
// long, a cancelled context) rolls back the whole batch and is the error. With readBack, the
// records written are read back, in one query per chunk, into their Results.
//
// The statements of each record run under a context that is never cancelled, and a
// cancellation is seen between records: go-sqlite3 runs every statement given a context that
// can be cancelled on a goroutine of its own, which made a Create 40% dearer in CPU (a run
// of the command line has such a context). The transaction is begun with ctx, so that
// database/sql rolls it back as soon as ctx is cancelled.
func (c *conn) write(ctx context.Context, name string, n int, prepare func(*sql.Tx, *entity) error, readBack readBackFunc, one func(*entity) writeOne) ([]connector.Result, error) {
	return c.writeFirst(ctx, name, n, prepare, readBack, one, nil)
}

// writeFirst is write whose records are written first by first (writeAll when nil).
func (c *conn) writeFirst(ctx context.Context, name string, n int, prepare func(*sql.Tx, *entity) error, readBack readBackFunc, one func(*entity) writeOne, first firstPass) ([]connector.Result, error) {
	results, err := c.writeTx(ctx, name, n, prepare, readBack, one, first)
	if err != nil && ctx.Err() != nil {
		// The transaction rolled back under a statement (sql.ErrTxDone): the cause is ctx's.
		return nil, ctx.Err()
	}
	return results, err
}

// readBackFunc sets the Results' records of a batch's records written (those with an id).
type readBackFunc func(e *entity, ctx context.Context, tx *sql.Tx, results []connector.Result, ids []any) error

func (c *conn) writeTx(ctx context.Context, name string, n int, prepare func(*sql.Tx, *entity) error, readBack readBackFunc, one func(*entity) writeOne, first firstPass) ([]connector.Result, error) {
	if c.w == nil {
		return nil, errors.New("the connection is read-only")
	}
	e, err := c.entity(ctx, name)
	if err != nil {
		return nil, err
	}
	sc, err := c.w.Conn(ctx) // the transaction's connection, for a first pass on the driver's
	if err != nil {
		return nil, err
	}
	defer sc.Close()
	tx, err := sc.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if prepare != nil {
		if err := prepare(tx, e); err != nil {
			return nil, err
		}
	}
	results := make([]connector.Result, n)
	ids := make([]any, n)
	if _, err := tx.ExecContext(ctx, "SAVEPOINT batch"); err != nil {
		return nil, err
	}
	var failed bool
	if first != nil {
		failed, err = first(ctx, sc, tx, e, results, ids)
	} else {
		failed, err = writeAll(ctx, tx, n, one(e), results, ids)
	}
	if err != nil {
		return nil, err
	}
	if failed {
		if _, err := tx.ExecContext(ctx, "ROLLBACK TO batch"); err != nil {
			return nil, err
		}
		clear(results)
		clear(ids)
		if err := writeEach(ctx, tx, n, one(e), results, ids); err != nil {
			return nil, err
		}
	}
	if _, err := tx.ExecContext(ctx, "RELEASE batch"); err != nil {
		return nil, err
	}
	if readBack != nil {
		if err := readBack(e, ctx, tx, results, ids); err != nil {
			return nil, err
		}
	}
	if err := connector.Fence(ctx); err != nil {
		return nil, err // rolled back: the run lost its lease while it wrote
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return results, nil
}

// writeAll writes the records one after the other. It stops at the first record that fails in
// SQLite and reports failed: what the batch wrote is then to be rolled back.
func writeAll(ctx context.Context, tx *sql.Tx, n int, one writeOne, results []connector.Result, ids []any) (failed bool, err error) {
	rctx := context.WithoutCancel(ctx) // see write
	for i := range n {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		id, err := one(rctx, tx, i)
		var invalid invalidData
		switch {
		case err == nil:
			ids[i] = id
		case errors.As(err, &invalid):
			results[i].Err = invalid.err
		case fatal(err):
			return false, err
		default:
			return true, nil
		}
	}
	return false, nil
}

// writeEach writes each record under a savepoint: a record that fails is rolled back alone and
// its error is its Result's.
func writeEach(ctx context.Context, tx *sql.Tx, n int, one writeOne, results []connector.Result, ids []any) error {
	rctx := context.WithoutCancel(ctx) // see write
	for i := range n {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := tx.ExecContext(rctx, "SAVEPOINT record"); err != nil {
			return err
		}
		id, err := one(rctx, tx, i)
		if err != nil {
			if fatal(err) {
				return err
			}
			if _, err := tx.ExecContext(rctx, "ROLLBACK TO record"); err != nil {
				return err
			}
			var invalid invalidData
			if errors.As(err, &invalid) {
				err = invalid.err
			}
			results[i].Err = err
		} else {
			ids[i] = id
		}
		if _, err := tx.ExecContext(rctx, "RELEASE record"); err != nil {
			return err
		}
	}
	return nil
}

// readIDs reads the records with the given ids (as the engine gives them) in chunks, by id as
// read.
func (e *entity) readIDs(ctx context.Context, q querier, ids []string) (map[string]stored, error) {
	out := make(map[string]stored, len(ids))
	for start := 0; start < len(ids); start += chunkSize {
		chunk := ids[start:min(start+chunkSize, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		b, err := e.read(ctx, q, " WHERE "+Quote(e.cols[e.id].name)+" IN ("+placeholders(len(chunk))+")", args)
		if err != nil {
			return nil, err
		}
		for i, r := range b.recs {
			out[r.ID] = stored{r, b.ids[i]}
		}
	}
	return out, nil
}

// readBack reads the records written (those with an id) in chunks of ids as stored, and sets
// their Results' records. A record that is gone (a trigger deleted it) leaves its Result's
// record empty, as a read of it would.
func (e *entity) readBack(ctx context.Context, q querier, results []connector.Result, ids []any) error {
	var chunk []any
	var at []int
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		b, err := e.read(ctx, q, " WHERE "+Quote(e.cols[e.id].name)+" IN ("+placeholders(len(chunk))+")", chunk)
		if err != nil {
			return err
		}
		byID := make(map[string]connector.Record, len(b.recs))
		for _, r := range b.recs {
			byID[r.ID] = r
		}
		for _, i := range at {
			results[i].Record = byID[idString(ids[i])]
		}
		chunk, at = chunk[:0], at[:0]
		return nil
	}
	for i, id := range ids {
		if id == nil || results[i].Err != nil {
			continue
		}
		chunk, at = append(chunk, id), append(at, i)
		if len(chunk) == chunkSize {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// rowidAlias returns the index of the column of cols that is an alias of the rowid of table
// name (an INTEGER PRIMARY KEY of a rowid table, which SQLite numbers and whose value
// last_insert_rowid gives), -1 when there is none: a table WITHOUT ROWID, a view, a primary
// key of another type or of several columns, or INTEGER PRIMARY KEY DESC (which has an index
// of its own, as every primary key that is not the rowid has).
func rowidAlias(ctx context.Context, db *sql.DB, name string, cols []schema.Column) (int, error) {
	pk := -1
	for i, c := range cols {
		if c.PK {
			if pk >= 0 {
				return -1, nil // several columns
			}
			pk = i
		}
	}
	if pk < 0 || !strings.EqualFold(strings.TrimSpace(cols[pk].Declared), "INTEGER") {
		return -1, nil
	}
	var n int
	err := db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM pragma_table_list(?1) WHERE type = 'table' AND NOT wr)
		- (SELECT count(*) FROM pragma_index_list(?1) WHERE origin = 'pk')`, name).Scan(&n)
	if err != nil || n != 1 {
		return -1, err
	}
	return pk, nil
}

// keepsText reports whether a column of the declared type stores text as given: TEXT affinity
// (the type names CHAR, CLOB or TEXT and not INT) or BLOB affinity (no type, or BLOB).
func keepsText(declared string) bool {
	t := strings.ToUpper(declared)
	switch {
	case strings.Contains(t, "INT"):
		return false
	case strings.Contains(t, "CHAR"), strings.Contains(t, "CLOB"), strings.Contains(t, "TEXT"):
		return true
	}
	return strings.TrimSpace(t) == "" || strings.Contains(t, "BLOB")
}
