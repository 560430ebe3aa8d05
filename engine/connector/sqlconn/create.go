package sqlconn

// Creates: a batch's records inserted in bulk where the dialect can (BulkInserter), the others,
// and those of a batch in which one failed, one at a time with their lists' rows.

import (
	"context"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

// Create implements connector.Conn.
//
// With a dialect that inserts in bulk (BulkInserter), the records without lists are inserted
// together first, in one round trip per chunk; the others one at a time. When a record fails
// on the server, the batch is written again with savepoints (see writeTx): the bulk chunks then
// each under one of their own, a chunk that fails split in halves (bisect) until the records
// that fail alone are found, which are left to be written one at a time, each failing with the
// server's message, and the others still go in bulk.
func (c *Conn) Create(ctx context.Context, name string, recs []map[string]any) ([]connector.Result, error) {
	var bulk prepare
	if bi, ok := c.d.(BulkInserter); ok {
		bulk = func(ctx context.Context, tx Tx, e *entity, savepoints bool, ids []string, results []connector.Result) error {
			rows, at := c.bulkRows(e, recs)
			w := bulkWrite{bi: bi, e: e, ids: ids, results: results}
			for start := 0; start < len(rows); start += BulkChunk {
				end := min(start+BulkChunk, len(rows))
				var err error
				if savepoints {
					err = c.bisect(ctx, tx, start, end, func(lo, hi int) error { return c.insertBulk(ctx, tx, w, rows[lo:hi], at[lo:hi]) })
				} else {
					err = c.insertBulk(ctx, tx, w, rows[start:end], at[start:end])
				}
				if err != nil {
					return err
				}
			}
			return nil
		}
	}
	return c.write(ctx, name, len(recs), bulk, true, func(e *entity) writeOne {
		return func(ctx context.Context, tx Tx, i int) (string, error) { return c.create(ctx, tx, e, recs[i]) }
	})
}

// bulkRows are the rows of the records that may be inserted in bulk, and the records' indexes:
// those without an error of their own (found before writing) and without child rows.
func (c *Conn) bulkRows(e *entity, recs []map[string]any) ([]Row, []int) {
	var rows []Row
	var at []int
	for i, data := range recs {
		ch, err := c.createChange(e, data)
		if err != nil || len(ch.lists) > 0 || listsIn(e, data) {
			continue // one at a time: an error of its own, or child rows
		}
		rows, at = append(rows, Row{Cols: ch.cols, Args: ch.args}), append(at, i)
	}
	return rows, at
}

// bulkWrite is where a batch's bulk inserts go: the entity, and the ids and results of its records.
type bulkWrite struct {
	bi      BulkInserter
	e       *entity
	ids     []string
	results []connector.Result
}

// insertBulk inserts rows, of the records at, in one call and sets the records' ids, and their
// records as stored where the dialect gives them (StoredInserter; not for an entity with lists,
// whose read-back reads them).
func (c *Conn) insertBulk(ctx context.Context, tx Tx, w bulkWrite, rows []Row, at []int) error {
	si, ok := w.bi.(StoredInserter)
	if !ok || len(w.e.lists) > 0 {
		got, err := w.bi.InsertMany(ctx, tx, w.e.Table, rows, w.e.id)
		if err != nil {
			return err
		}
		for k, id := range got {
			w.ids[at[k]] = id
		}
		return nil
	}
	got, stored, err := si.InsertManyStored(ctx, tx, w.e.Table, rows, w.e.id)
	if err != nil {
		return err
	}
	recs := make([]connector.Record, len(stored))
	for k, text := range stored {
		vals, err := c.decodeRow(w.e.Table, text)
		if err != nil {
			return err
		}
		recs[k] = connector.Record{ID: IDString(vals[w.e.id]), Data: data(w.e.Table, vals, 0)}
	}
	for k, id := range got {
		w.ids[at[k]] = id
		if stored != nil {
			w.results[at[k]].Record = recs[k]
		}
	}
	return nil
}

// newID gives a new record an id when it has none and the server gives none either.
func (c *Conn) newID(col *Column) (string, bool) {
	if col.Auto {
		return "", false
	}
	switch col.Kind {
	case UUID:
		return newUUID(), true
	case Text:
		return newTextID(), true
	}
	return "", false
}

// createChange is what creating a record writes, with the id the connector makes for it when
// it has none and the database gives none.
func (c *Conn) createChange(e *entity, data map[string]any) (change, error) {
	var skip []int
	if data[e.Cols[e.id].Name] == nil {
		skip = append(skip, e.id)
	}
	ch, err := c.changeOf(e.Table, data, e.listIndex, nil, skip...)
	if err != nil {
		return change{}, err
	}
	if len(skip) > 0 {
		if id, ok := c.newID(&e.Cols[e.id]); ok {
			ch.set(e.id, &id)
		}
	}
	return ch, nil
}

// listsIn reports whether data gives any of the entity's lists (even an empty one).
func listsIn(e *entity, data map[string]any) bool {
	for name := range e.listIndex {
		if _, ok := data[name]; ok {
			return true
		}
	}
	return false
}

func (c *Conn) create(ctx context.Context, tx Tx, e *entity, data map[string]any) (string, error) {
	ch, err := c.createChange(e, data)
	if err != nil {
		return "", invalidData{err}
	}
	id, err := c.d.Insert(ctx, tx, e.Table, ch.cols, ch.args, e.id)
	if err != nil {
		return "", err
	}
	for _, lc := range ch.lists {
		if err := c.writeList(ctx, tx, lc.l, id, lc.items, false); err != nil {
			return "", afterWrite(err)
		}
	}
	return id, nil
}
