package sqlite

// Created rows inserted many to a statement. A Create batch whose rows are predicted (see
// predict.go) inserts each run of consecutive records that write the same columns with one
// INSERT of up to maxBulkRows rows, straight on go-sqlite3's connection (sql.Conn.Raw): one
// crossing into C binds and runs a statement of many rows, where a statement per record through
// database/sql cost a conversion of its arguments, a statement text, a lookup in the
// statement cache and a crossing per value bound, and SQLite a statement's start per row (a
// Create's insert took 2.3 times as long).
//
// The ids of such rows must be known without RETURNING (whose order of rows SQLite does not
// promise): a text id given (or made) in a column that keeps text, or the rowid SQLite numbers
// for an INTEGER PRIMARY KEY left out. SQLite numbers a row it is not given the rowid of one
// more than the largest rowid in the table (it draws one at random only once the largest is
// 2^63-1, and AUTOINCREMENT tables, which may skip numbers, are left out), so the rows of a
// statement are numbered after the largest rowid known, in order: last_insert_rowid() after
// the statement proves it, and a batch where it does not is written again a record at a time.
// Records that do not fit (an id given for an INTEGER PRIMARY KEY, an id known only by
// RETURNING) are inserted one at a time in their place, so that the rows are inserted in the
// records' order, as one at a time.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/dataflow-sync/dataflow/engine/connector"
	sqlite3 "github.com/mattn/go-sqlite3"
)

// maxBulkRows is the most rows an INSERT of a run holds: past about 50, more rows to a
// statement save nothing measurable. A run's last rows go in statements of powers of two, so
// that a shape of columns prepares at most 7 statements (go-sqlite3 caches 64 a connection).
const maxBulkRows = 64

// bulkConn is what a bulk insert needs of go-sqlite3's connection (*sqlite3.SQLiteConn).
type bulkConn interface {
	driver.QueryerContext
	AutoCommit() bool
	GetLimit(id int) int
}

// insertRun is a run of consecutive records of a batch that insert the same columns.
type insertRun struct {
	at  []int    // the records' indexes in the batch
	chs []change // their changes
}

// bulkInsert is the state of a batch's bulk inserts.
type bulkInsert struct {
	e   *entity
	sc  *sql.Conn
	p   *prediction
	run insertRun
	buf *changeBuf // the room of the changes of the records not yet inserted

	maxRowid   int64 // the largest rowid of the table, when known
	rowidKnown bool
	args       []driver.NamedValue // reused: a statement's values
	last       []driver.Value      // reused: last_insert_rowid(), changes()
}

// newBulkInsert returns the state of a batch's bulk inserts with room for runs of n records,
// the room of the entity's last batch when it has as much: a batch's buffers are the
// connector's own (the Results' records are made of none of them).
func (e *entity) newBulkInsert(sc *sql.Conn, p *prediction, n int) *bulkInsert {
	b, _ := e.bulks.Get().(*bulkInsert)
	if b == nil || cap(b.run.at) < n || len(b.buf.allCols) < n*(len(e.cols)+1) {
		b = &bulkInsert{last: make([]driver.Value, 2),
			run: insertRun{at: make([]int, 0, n), chs: make([]change, 0, n)},
			buf: newChangeBuf(n, len(e.cols)+1)}
	}
	b.e, b.sc, b.p = e, sc, p
	b.maxRowid, b.rowidKnown = 0, false
	b.buf.reset()
	return b
}

// release drops what the state refers to of the batch (the engine's values, the connection),
// so that a kept state keeps none of it alive.
func (b *bulkInsert) release() {
	clear(b.run.chs[:cap(b.run.chs)])
	b.run.at, b.run.chs = b.run.at[:0], b.run.chs[:0]
	clear(b.buf.allArgs)
	b.e, b.sc, b.p = nil, nil, nil
}

// errNoBulk is the failure of a statement whose rows SQLite did not number as expected, or of
// a connection that is not go-sqlite3's: the batch is written again a record at a time, and
// the table's next batches too.
var errNoBulk = errors.New("the rows cannot be inserted in bulk")

// insertAll is writeAll for a Create batch whose rows are predicted: runs of records in bulk
// (see the top of this file), the others one at a time. failed is true when a row failed in
// SQLite (or was numbered otherwise than expected): the batch is then rolled back and written
// again a record at a time (writeEach), as when a record fails in writeAll.
func (e *entity) insertAll(ctx context.Context, sc *sql.Conn, tx *sql.Tx, data []map[string]any, p *prediction, results []connector.Result, ids []any) (failed bool, err error) {
	b := e.newBulkInsert(sc, p, min(len(data), scanBatch))
	defer e.bulks.Put(b)
	defer b.release()
	rctx := context.WithoutCancel(ctx) // see write
	outcome := func(err error) (failed bool, stop error) {
		switch {
		case err == nil:
			return false, nil
		case errors.Is(err, errNoBulk):
			e.table.noBulk.Store(true) // the table numbers rows in a way of its own
			return true, nil
		case fatal(err):
			return false, err
		}
		return true, nil
	}
	for i := range data {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		ch, err := e.createChange(b.buf, data[i])
		if err != nil {
			var invalid invalidData
			errors.As(err, &invalid)
			results[i].Err = invalid.err
			continue
		}
		if b.fits(ch) {
			if len(b.run.at) > 0 && !slices.Equal(b.run.chs[0].cols, ch.cols) {
				if failed, err := outcome(b.flush(ctx, rctx, tx, ids)); failed || err != nil {
					return failed, err
				}
				ch = b.buf.moved(ch) // its room was freed with the run's
			}
			b.run.at, b.run.chs = append(b.run.at, i), append(b.run.chs, ch)
			if len(b.run.at) == scanBatch {
				if failed, err := outcome(b.flush(ctx, rctx, tx, ids)); failed || err != nil {
					return failed, err
				}
			}
			continue
		}
		if failed, err := outcome(b.flush(ctx, rctx, tx, ids)); failed || err != nil {
			return failed, err
		}
		id, err := e.insertChange(rctx, tx, ch, p, i)
		if failed, err := outcome(err); failed || err != nil {
			return failed, err
		}
		ids[i] = id
		if rowid := p.rowid[i]; rowid != noRowid && b.rowidKnown {
			b.maxRowid = max(b.maxRowid, rowid)
		} else if p.shape.withRowid {
			b.rowidKnown = false // a row numbered unseen (RETURNING): read the largest again
		}
	}
	return outcome(b.flush(ctx, rctx, tx, ids))
}

// go-sqlite3 copies a statement's text and blobs into a buffer the statement keeps while it
// is cached: a statement binds at most maxBulkBytes of them (rows of more are inserted one at
// a time), so that the cached statements of bulk inserts hold little memory.
const maxBulkBytes = 256 << 10

// bytesFit is how many of the first changes' rows bind at most maxBulkBytes of text and blobs
// (at least one).
func bytesFit(chs []change) int {
	total := 0
	for k, ch := range chs {
		total += ch.bytes()
		if total > maxBulkBytes {
			return max(k, 1)
		}
	}
	return len(chs)
}

// bytes is the size of a change's text and blobs.
func (ch change) bytes() int {
	n := 0
	for _, v := range ch.args {
		switch x := v.(type) {
		case string:
			n += len(x)
		case []byte:
			n += len(x)
		}
	}
	return n
}

// fits reports whether a record's change can be inserted in bulk: its id is known without
// RETURNING, and SQLite numbers its rowid (see the top of this file).
func (b *bulkInsert) fits(ch change) bool {
	e, s := b.e, b.p.shape
	if !s.bulk || e.table.noBulk.Load() || len(ch.cols) == 0 || ch.bytes() > maxBulkBytes {
		return false // no rows of DEFAULT VALUES in one statement; a row too large alone
	}
	if !s.withRowid {
		return isString(ch.value(e.id)) && e.cols[e.id].keepsText
	}
	if s.rowid == "" || (e.alias >= 0 && slices.Contains(ch.cols, e.alias)) {
		return false // no name for the rowid, or a rowid given
	}
	return e.id == e.alias || isString(ch.value(e.id)) && e.cols[e.id].keepsText
}

// flush inserts the pending run, in statements of maxBulkRows rows and the rest in powers of
// two, and records each row in the prediction. A failure of a statement is its error (errors
// of SQLite as for a statement per record); what it inserted is rolled back with the batch.
func (b *bulkInsert) flush(ctx, rctx context.Context, tx *sql.Tx, ids []any) error {
	run := b.run
	b.run.at, b.run.chs = b.run.at[:0], b.run.chs[:0]
	if len(run.at) == 0 {
		return nil
	}
	// The run's changes are inserted (or the batch fails) when flush returns, and the change
	// of a record inserted alone, taken before, is inserted before the next is taken: the
	// room of every change is free again.
	defer b.buf.reset()
	e, s := b.e, b.p.shape
	if s.withRowid && !b.rowidKnown {
		var m int64
		if err := tx.QueryRowContext(rctx, "SELECT coalesce(max("+s.rowid+"), 0) FROM "+e.quoted).Scan(&m); err != nil {
			return err
		}
		b.maxRowid, b.rowidKnown = m, true
	}
	cols := run.chs[0].cols
	return b.sc.Raw(func(dc any) error {
		c, ok := dc.(bulkConn)
		if !ok {
			return fmt.Errorf("%w: the sqlite connection is a %T", errNoBulk, dc)
		}
		// Every statement runs while the transaction is open: a cancelled ctx rolls it back
		// (database/sql does, once it holds the connection, which this function holds), and
		// a statement after that would insert outside of it.
		perStmt := maxBulkRows
		if limit := c.GetLimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER); limit > 0 && len(cols) > 0 {
			perStmt = max(1, min(perStmt, limit/len(cols)))
		}
		for start := 0; start < len(run.at); {
			if err := ctx.Err(); err != nil {
				return err
			}
			if c.AutoCommit() {
				return sql.ErrTxDone
			}
			k := perStmt
			fit := bytesFit(run.chs[start:min(start+k, len(run.chs))])
			if fit < k {
				k = 1 << (63 - bits.LeadingZeros64(uint64(fit))) // the largest power of two in fit
			}
			if err := b.insertRows(rctx, c, cols, run.at[start:start+k], run.chs[start:start+k], ids); err != nil {
				return err
			}
			start += k
		}
		return nil
	})
}

// insertRows inserts the rows of records at (changes chs, of columns cols) in one statement.
func (b *bulkInsert) insertRows(rctx context.Context, c bulkConn, cols []int, at []int, chs []change, ids []any) error {
	e, s := b.e, b.p.shape
	n := len(at) * len(cols)
	if cap(b.args) < n {
		b.args = make([]driver.NamedValue, n)
		for j := range b.args {
			b.args[j].Ordinal = j + 1
		}
	}
	args := b.args[:n]
	for r, ch := range chs {
		for j, v := range ch.args {
			args[r*len(cols)+j].Value = v
		}
	}
	q := e.table.insertManySQL(cols, len(at))
	rows, err := c.QueryContext(rctx, q, args)
	for j := range args {
		args[j].Value = nil // the values are the engine's: do not keep them alive
	}
	if err != nil {
		return err
	}
	if err := rows.Close(); err != nil {
		return err
	}
	rows, err = c.QueryContext(rctx, "SELECT last_insert_rowid(), changes()", nil)
	if err != nil {
		return err
	}
	err = rows.Next(b.last)
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	last, _ := b.last[0].(int64)
	changes, _ := b.last[1].(int64)
	if changes != int64(len(at)) {
		return errNoBulk
	}
	first := int64(noRowid)
	if s.withRowid {
		if b.maxRowid > math.MaxInt64-int64(len(at)) || last != b.maxRowid+int64(len(at)) {
			return errNoBulk
		}
		first = b.maxRowid + 1
		b.maxRowid = last
	}
	for r, i := range at {
		rowid := int64(noRowid)
		if first != noRowid {
			rowid = first + int64(r)
		}
		var id any
		if e.id == e.alias {
			id = rowid
		} else {
			id = chs[r].value(e.id)
		}
		b.p.row(i, e.table, e.id, chs[r], id, rowid)
		ids[i] = id
	}
	return nil
}

// insertManySQL is the statement that inserts k rows of the given columns, made once per
// shape and kept (up to a bound: the shapes of records are the engine's).
func (t *table) insertManySQL(cols []int, k int) string {
	var key strings.Builder
	key.WriteString(strconv.Itoa(k))
	for _, c := range cols {
		key.WriteByte(',')
		key.WriteString(strconv.Itoa(c))
	}
	t.bulkMu.Lock()
	defer t.bulkMu.Unlock()
	if q, ok := t.bulkSQL[key.String()]; ok {
		return q
	}
	one := t.insertSQL(cols)
	head, row, _ := strings.Cut(one, " VALUES ")
	var b strings.Builder
	b.Grow(len(head) + 8 + k*(len(row)+1))
	b.WriteString(head)
	b.WriteString(" VALUES ")
	for r := range k {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	if t.bulkSQL == nil || len(t.bulkSQL) >= maxBulkShapes {
		t.bulkSQL = map[string]string{}
	}
	t.bulkSQL[key.String()] = b.String()
	return b.String()
}

// maxBulkShapes bounds the statements a table keeps the text of.
const maxBulkShapes = 64

// bulkSQLCache is the table's statement texts of bulk inserts.
type bulkSQLCache struct {
	bulkMu  sync.Mutex
	bulkSQL map[string]string
}
