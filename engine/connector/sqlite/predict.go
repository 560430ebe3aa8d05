package sqlite

// Created rows as stored, known without reading them back. A Create used to read every row it
// had inserted back with a SELECT of all its columns (a third of its CPU). When nothing in the
// database can change a row on its way in, the row as stored is what was bound, converted as
// the column's affinity stores it, and the defaults of the columns left out: the connector
// predicts it and asks SQLite only for what it cannot know (a default such as
// strftime('now'), a float given to a TEXT column, which SQLite formats its own way), with a
// narrow read of those columns by rowid. The prediction goes through fromSQL like a read, so a Result's record is what a Scan
// or a Get of the row returns. Anything that could make the row differ makes the batch read
// its rows back whole, as before: a trigger on inserts, a conflict clause in the table (ON
// CONFLICT REPLACE puts a default in place of a NULL, or deletes another row), a STRICT or
// virtual table, a view, a database not in UTF-8, lists.

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

// rowShape is what a table does to a row inserted into it, as read at one schema version.
type rowShape struct {
	version int64
	predict bool // rows are predicted; else they are read back whole
	bulk    bool // rows may be inserted many to a statement (see bulk.go): not AUTOINCREMENT
	aff     []affinity
	dflt    []any  // per column, the value stored when an insert leaves it out
	asked   []int  // columns whose value, when left out, is not known: read back
	rowid   string // a name of the rowid ("rowid", "_rowid_" or "oid"), "" for none
	// withRowid is true for a table with a rowid (not WITHOUT ROWID), whose rows'
	// last_insert_rowid is theirs.
	withRowid bool
	pk        int // the column that is the primary key, -1 for none or several
}

// shape returns the table's rowShape in tx, read again when the schema has changed.
func (t *table) shape(ctx context.Context, tx *sql.Tx) (*rowShape, error) {
	var version int64
	if err := tx.QueryRowContext(ctx, "PRAGMA schema_version").Scan(&version); err != nil {
		return nil, err
	}
	if s := t.shapes.Load(); s != nil && s.version == version {
		return s, nil
	}
	s, err := t.readShape(ctx, tx)
	if err != nil {
		return nil, err
	}
	s.version = version
	t.shapes.Store(s)
	return s, nil
}

// readShape reads the table's rowShape: whether its rows can be predicted (see the top of
// this file), its columns' affinities and defaults.
func (t *table) readShape(ctx context.Context, tx *sql.Tx) (*rowShape, error) {
	s := &rowShape{pk: -1}
	var kind string
	var withoutRowid, strict, n int
	if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(type), ''), coalesce(max(wr), 0), coalesce(max(strict), 0), count(*) FROM pragma_table_list(?)", t.name).
		Scan(&kind, &withoutRowid, &strict, &n); err != nil {
		return nil, err
	}
	if kind != "table" || strict != 0 || n != 1 {
		return s, nil // a view, a virtual table, a STRICT table, a temporary table of the same name
	}
	var encoding string
	var def sql.NullString
	if err := tx.QueryRowContext(ctx, "PRAGMA encoding").Scan(&encoding); err != nil {
		return nil, err
	}
	switch err := tx.QueryRowContext(ctx, "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ? COLLATE NOCASE", t.name).Scan(&def); {
	case errors.Is(err, sql.ErrNoRows):
		return s, nil // not a table of the main schema
	case err != nil:
		return nil, err
	}
	if encoding != "UTF-8" || !def.Valid || strings.Contains(strings.ToUpper(def.String), "CONFLICT") {
		return s, nil
	}
	insertTriggers, err := t.insertTriggers(ctx, tx)
	if err != nil || insertTriggers {
		return s, err
	}
	rows, err := tx.QueryContext(ctx, "SELECT name, dflt_value, pk FROM pragma_table_info(?)", t.name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	var dflts []sql.NullString
	var pks []int
	for rows.Next() {
		var name string
		var dflt sql.NullString
		var pk int
		if err := rows.Scan(&name, &dflt, &pk); err != nil {
			return nil, err
		}
		names, dflts, pks = append(names, name), append(dflts, dflt), append(pks, pk)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close() // before the defaults are evaluated
	if len(names) != len(t.cols) {
		return s, nil
	}
	s.aff, s.dflt = make([]affinity, len(t.cols)), make([]any, len(t.cols))
	pk := -1
	for i, c := range t.cols {
		if names[i] != c.name {
			return &rowShape{pk: -1}, nil
		}
		if pks[i] != 0 {
			if pk == -1 {
				pk = i
			} else {
				pk = -2 // several columns
			}
		}
		s.aff[i] = affinityOf(c.declared)
		if i == t.alias {
			s.asked = append(s.asked, i) // the rowid: known only from the insert
			continue
		}
		v, known, err := defaultValue(ctx, tx, dflts[i])
		if err != nil {
			return nil, err
		}
		if known {
			v, known = storedValue(s.aff[i], v)
		}
		if known {
			s.dflt[i] = v
		} else {
			s.asked = append(s.asked, i)
		}
	}
	s.withRowid = withoutRowid == 0
	if s.withRowid {
		for _, name := range []string{"rowid", "_rowid_", "oid"} {
			if !slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, name) }) {
				s.rowid = name
				break
			}
		}
	}
	s.pk = max(pk, -1)
	s.predict = true
	s.bulk = !slices.Contains(sqlTokens(def.String), "AUTOINCREMENT")
	return s, nil
}

// insertTriggers reports whether a trigger may act on an insert into the table: any trigger on
// it that is not one of DELETE or UPDATE (such as the one track_deletes installs).
func (t *table) insertTriggers(ctx context.Context, tx *sql.Tx) (bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = ?1 COLLATE NOCASE
		UNION ALL SELECT sql FROM sqlite_temp_schema WHERE type = 'trigger' AND tbl_name = ?1 COLLATE NOCASE`, t.name)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	for rows.Next() {
		var def sql.NullString
		if err := rows.Scan(&def); err != nil {
			return false, err
		}
		if ev := triggerEvent(def.String); ev != "DELETE" && ev != "UPDATE" {
			return true, nil
		}
	}
	return false, rows.Err()
}

// triggerEvent is the event of a CREATE TRIGGER statement (DELETE, INSERT or UPDATE), "" when
// the statement does not read as one.
func triggerEvent(def string) string {
	toks := sqlTokens(def)
	next := func(want ...string) bool {
		if len(toks) > 0 && slices.Contains(want, toks[0]) {
			toks = toks[1:]
			return true
		}
		return false
	}
	if !next("CREATE") {
		return ""
	}
	next("TEMP", "TEMPORARY")
	if !next("TRIGGER") {
		return ""
	}
	if next("IF") && !(next("NOT") && next("EXISTS")) {
		return ""
	}
	if len(toks) == 0 {
		return ""
	}
	toks = toks[1:] // the name
	if next(".") {
		if len(toks) == 0 {
			return ""
		}
		toks = toks[1:]
	}
	if next("INSTEAD") && !next("OF") {
		return ""
	}
	next("BEFORE", "AFTER")
	if len(toks) > 0 && (toks[0] == "DELETE" || toks[0] == "INSERT" || toks[0] == "UPDATE") {
		return toks[0]
	}
	return ""
}

// sqlTokens splits SQL text into tokens: words in upper case, quoted identifiers and strings as
// one token each (with a leading quote, so that no keyword is one), other characters alone;
// comments and white space are dropped.
func sqlTokens(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case strings.HasPrefix(s[i:], "--"):
			end := strings.IndexByte(s[i:], '\n')
			if end < 0 {
				return toks
			}
			i += end
		case strings.HasPrefix(s[i:], "/*"):
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return toks
			}
			i += end + 4
		case c == '"' || c == '\'' || c == '`' || c == '[':
			closing := c
			if c == '[' {
				closing = ']'
			}
			j := i + 1
			for j < len(s) {
				if s[j] == closing {
					if closing != ']' && j+1 < len(s) && s[j+1] == closing {
						j += 2 // a doubled quote
						continue
					}
					break
				}
				j++
			}
			toks = append(toks, "\""+s[i+1:min(j, len(s))])
			i = j + 1
		case c == '_' || c == '$' || c >= 0x80 || c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'z':
			j := i
			for j < len(s) && (s[j] == '_' || s[j] == '$' || s[j] >= 0x80 || s[j] >= '0' && s[j] <= '9' || s[j]|0x20 >= 'a' && s[j]|0x20 <= 'z') {
				j++
			}
			toks = append(toks, strings.ToUpper(s[i:j]))
			i = j
		default:
			toks = append(toks, s[i:i+1])
			i++
		}
	}
	return toks
}

// defaultValue evaluates a column's default (pragma table_info's dflt_value) when it is a
// literal: NULL, a number, a string, a blob, TRUE or FALSE. SQLite evaluates the literal, so
// that its number is SQLite's reading of it. known is false for any other default
// (CURRENT_TIMESTAMP, an expression): its value is read back.
func defaultValue(ctx context.Context, tx *sql.Tx, dflt sql.NullString) (v any, known bool, err error) {
	if !dflt.Valid {
		return nil, true, nil
	}
	if !isLiteral(dflt.String) {
		return nil, false, nil
	}
	if err := tx.QueryRowContext(ctx, "SELECT "+dflt.String).Scan(&v); err != nil {
		return nil, false, err
	}
	return v, true, nil
}

// isLiteral reports whether SQL text is one literal value: NULL, TRUE, FALSE, a number (a sign
// allowed), a string or a blob.
func isLiteral(s string) bool {
	switch strings.ToUpper(s) {
	case "NULL", "TRUE", "FALSE":
		return true
	}
	if numberLiteral.MatchString(s) {
		return true
	}
	toks := sqlTokens(s)
	switch {
	case len(toks) == 1:
		return s[0] == '\'' && s[len(s)-1] == '\'' // a string
	case len(toks) == 2:
		return toks[0] == "X" && (s[0] == 'x' || s[0] == 'X') && s[1] == '\'' && s[len(s)-1] == '\'' // a blob
	}
	return false
}

// numberLiteral is a decimal or hexadecimal number literal of SQL, with a sign.
var numberLiteral = regexp.MustCompile(`^[+-]?((\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|0[xX][0-9a-fA-F]+)$`)

// prediction is the rows of a Create batch as stored, column values as the driver reads them.
type prediction struct {
	shape *rowShape
	ncol  int
	raw   []any   // n rows of ncol values
	asks  []bool  // per row: some of its values are to be read back
	rowid []int64 // per row, noRowid when the insert did not give it
	ask   []bool  // per column: read back for the rows that ask
}

// noRowid marks a row whose rowid the insert did not give.
const noRowid = math.MinInt64

// predictIn returns the prediction of a Create batch of n records, nil when the rows are to be
// read back whole.
func (e *entity) predictIn(ctx context.Context, tx *sql.Tx, n int) (*prediction, error) {
	if len(e.lists) > 0 {
		return nil, nil
	}
	s, err := e.shape(ctx, tx)
	if err != nil || !s.predict {
		return nil, err
	}
	nc := len(e.cols)
	if p, _ := e.predictions.Get().(*prediction); p != nil && cap(p.raw) >= n*nc && cap(p.asks) >= n {
		p.shape, p.ncol = s, nc
		p.raw, p.asks, p.rowid = p.raw[:n*nc], p.asks[:n], p.rowid[:n]
		clear(p.asks)
		clear(p.ask)
		return p, nil
	}
	return &prediction{shape: s, ncol: nc, raw: make([]any, n*nc), asks: make([]bool, n), rowid: make([]int64, n), ask: make([]bool, nc)}, nil
}

// release gives a prediction's room back to the entity's next Create, once its Results are
// made: the values of the records are the engine's, not to be kept alive by it.
func (e *entity) release(p *prediction) {
	clear(p.raw)
	e.predictions.Put(p)
}

// row records row i as inserted: the change bound, its id as stored (the id column's value)
// and its rowid (noRowid when the insert did not give it).
func (p *prediction) row(i int, t *table, idCol int, ch change, id any, rowid int64) {
	s := p.shape
	if !s.withRowid {
		rowid = noRowid // last_insert_rowid is another table's
	}
	raw := p.raw[i*p.ncol : (i+1)*p.ncol]
	copy(raw, s.dflt)
	asks := false
	for j, c := range ch.cols {
		if c == idCol || (c == t.alias && rowid != noRowid) {
			continue
		}
		v, ok := storedValue(s.aff[c], ch.args[j])
		raw[c] = v
		if !ok {
			asks, p.ask[c] = true, true
		}
	}
	for _, c := range s.asked {
		switch {
		case c == idCol:
		case c == t.alias && rowid != noRowid:
			raw[c] = rowid
		case !slices.Contains(ch.cols, c):
			asks, p.ask[c] = true, true
		}
	}
	raw[idCol] = id
	p.asks[i], p.rowid[i] = asks, rowid
}

// finish sets the Results' records of the rows written (those with an id) from data, the
// records they were written from: as predicted, with the values it could not predict read
// back, by rowid or else by id (see recordOf). A batch whose rows can be found by neither is
// read back whole (readBack).
func (p *prediction) finish(ctx context.Context, tx *sql.Tx, e *entity, results []connector.Result, ids []any, data []map[string]any) error {
	var at []int // the rows that ask
	byRowid := p.shape.rowid != ""
	for i, id := range ids {
		if id != nil && results[i].Err == nil && p.asks[i] {
			at = append(at, i)
			byRowid = byRowid && p.rowid[i] != noRowid
		}
	}
	if len(at) > 0 {
		if !byRowid && p.shape.pk != e.id {
			return e.readBack(ctx, tx, results, ids)
		}
		if err := p.readAsked(ctx, tx, e, at, byRowid); err != nil {
			return err
		}
	}
	for i, id := range ids {
		if id == nil || results[i].Err != nil || p.asks[i] { // still asking: the row is gone
			continue
		}
		raw := p.raw[i*p.ncol : (i+1)*p.ncol]
		results[i].Record = connector.Record{ID: idString(raw[e.id]), Data: e.recordOf(raw, data[i])}
	}
	return nil
}

// recordOf returns the record of a row written from given: given itself, with the values of
// the columns it lacks added (the id, the defaults), when each of its values is what the row
// holds, as a read gives it (Conn.Create may do so: its caller does not use data after it);
// else the row's record, as data makes it. A first sync's records are nearly all so, and
// their maps were a seventh of its allocations (bench i).
func (e *entity) recordOf(raw []any, given map[string]any) map[string]any {
	if len(e.lists) > 0 || len(e.cols) > 64 || len(given) > len(e.cols) {
		return e.data(raw, 0)
	}
	var has uint64 // the columns given holds, by index
	for k, g := range given {
		c, ok := e.index[k]
		if !ok || !sameValue(fromSQL(e.cols[c].kind, raw[c]), g) {
			return e.data(raw, 0)
		}
		has |= 1 << c
	}
	for c, col := range e.cols {
		if has&(1<<c) == 0 {
			given[col.name] = fromSQL(col.kind, raw[c])
		}
	}
	return given
}

// sameValue reports whether a value read (a) is the value b, of the same type: of the types
// fromSQL gives but for JSON, which it decodes into new maps and slices.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case int64:
		y, ok := b.(int64)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y && math.Signbit(x) == math.Signbit(y)
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	}
	return false
}

// readAsked reads the columns asked for of the rows at, by rowid (in one range when the rowids
// are about contiguous, as SQLite numbers new rows) or by id, and clears their asks.
func (p *prediction) readAsked(ctx context.Context, tx *sql.Tx, e *entity, at []int, byRowid bool) error {
	var cols []int
	sel := p.shape.rowid
	if !byRowid {
		sel = "+" + e.cols[e.id].quoted
	}
	for c, ask := range p.ask {
		if ask {
			cols = append(cols, c)
			sel += ", +" + e.cols[c].quoted
		}
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	if byRowid {
		for _, i := range at {
			lo, hi = min(lo, p.rowid[i]), max(hi, p.rowid[i])
		}
	}
	// In one range (the usual case), a row is found by its rowid's place in the range, else
	// by its key in a map.
	ranged := byRowid && uint64(hi)-uint64(lo) < uint64(2*len(at)+chunkSize) // hi >= lo: no overflow
	// inRange is the row of each rowid of the range, -1 for none.
	var inRange []int32
	var rowOf map[any]int
	var keys []any
	if ranged {
		inRange = make([]int32, hi-lo+1)
		for k := range inRange {
			inRange[k] = -1
		}
		for _, i := range at {
			inRange[p.rowid[i]-lo] = int32(i)
		}
	} else {
		rowOf, keys = make(map[any]int, len(at)), make([]any, len(at))
		for k, i := range at {
			if byRowid {
				keys[k] = p.rowid[i]
			} else {
				keys[k] = idString(p.raw[i*p.ncol+e.id])
			}
			rowOf[keys[k]] = i
		}
	}
	vals := make([]any, 1+len(cols))
	ptrs := make([]any, len(vals))
	for k := range vals {
		ptrs[k] = &vals[k]
	}
	read := func(clause string, args ...any) error {
		rows, err := tx.QueryContext(ctx, "SELECT "+sel+" FROM "+e.quoted+clause, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				return err
			}
			var i int
			if ranged {
				r, _ := vals[0].(int64)
				if r < lo || r > hi || inRange[r-lo] < 0 {
					continue // a row of the range that the batch did not write
				}
				i = int(inRange[r-lo])
			} else {
				key := vals[0]
				if !byRowid {
					key = idString(key)
				}
				var ok bool
				if i, ok = rowOf[key]; !ok {
					continue
				}
			}
			raw := p.raw[i*p.ncol : (i+1)*p.ncol]
			for k, c := range cols {
				raw[c] = vals[1+k]
			}
			p.asks[i] = false
		}
		return rows.Err()
	}
	if ranged {
		return read(" WHERE "+p.shape.rowid+" BETWEEN ? AND ?", lo, hi)
	}
	where := " WHERE " + cond(byRowid, p.shape.rowid, e.cols[e.id].quoted) + " IN ("
	for start := 0; start < len(keys); start += chunkSize {
		chunk := keys[start:min(start+chunkSize, len(keys))]
		if !byRowid {
			for k, i := range at[start : start+len(chunk)] {
				chunk[k] = p.raw[i*p.ncol+e.id] // the id as stored, not its text
			}
		}
		if err := read(where+placeholders(len(chunk))+")", chunk...); err != nil {
			return err
		}
	}
	return nil
}
