package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

// findChunk is the number of keys per query of Find: each value binds up to three forms.
const findChunk = 150

// Find implements connector.Finder with `WHERE col IN (...)` per path, over the columns of
// the entity's table: one query per chunk of keys, in one read transaction. A key's value is
// the engine's text form of a value, which SQLite may hold as TEXT, INTEGER or REAL (or 0/1
// for a boolean): each value is bound in every form it may be stored in, so that the result
// holds every matching record, whatever the column's affinity; the engine compares again.
// With an index on the column it is a lookup; without one SQLite scans the table per query,
// which costs time, not memory. Lists, JSON and BLOB columns are not searched
// (connector.ErrCannotFind): their text form is not what the table holds.
func (c *conn) Find(ctx context.Context, name string, paths []string, keys [][]string) ([]connector.Record, error) {
	e, err := c.entity(ctx, name)
	if err != nil {
		return nil, err
	}
	cols := make([]string, len(paths))
	for i, p := range paths {
		ci, ok := e.index[p]
		if !ok || e.cols[ci].kind.json() || e.cols[ci].kind == blob {
			return nil, fmt.Errorf("entity %s, property %q: %w", name, p, connector.ErrCannotFind)
		}
		cols[i] = Quote(e.cols[ci].name)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	tx, err := c.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var out []connector.Record
	seen := map[string]bool{}
	for start := 0; start < len(keys); start += findChunk {
		chunk := keys[start:min(start+findChunk, len(keys))]
		var where []string
		var args []any
		for i, col := range cols {
			var forms []any
			for _, k := range chunk {
				if i < len(k) {
					forms = append(forms, storedForms(k[i])...)
				}
			}
			where = append(where, col+" IN ("+placeholders(len(forms))+")")
			args = append(args, forms...)
		}
		b, err := e.read(ctx, tx, " WHERE "+strings.Join(where, " AND "), args)
		if err != nil {
			return nil, err
		}
		for _, r := range b.recs {
			if !seen[r.ID] {
				seen[r.ID] = true
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// storedForms are the values SQLite may hold for a value in the engine's text form: the text,
// and the number or boolean it reads as.
func storedForms(v string) []any {
	forms := []any{v}
	switch {
	case v == "true":
		forms = append(forms, int64(1))
	case v == "false":
		forms = append(forms, int64(0))
	default:
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			forms = append(forms, n)
		} else if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			forms = append(forms, f)
		}
	}
	return forms
}
