package postgres

// Inserts: one row (Insert), and many in one round trip (InsertMany): a multi-row INSERT where
// the ids are known before the insert, else a pipeline of single-row inserts.

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/connector/sqlconn"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// insertSQL is the statement that inserts a row of the given columns and returns its id.
func (d *dialect) insertSQL(t *sqlconn.Table, cols []int, id int) string {
	var q strings.Builder
	q.WriteString("INSERT INTO " + t.Quoted)
	if len(cols) == 0 {
		q.WriteString(" DEFAULT VALUES")
	} else {
		names, params := make([]string, len(cols)), make([]string, len(cols))
		for i, c := range cols {
			names[i], params[i] = d.Quote(t.Cols[c].Name), d.Param(i+1, &t.Cols[c])
		}
		q.WriteString(" (" + strings.Join(names, ", ") + ") VALUES (" + strings.Join(params, ", ") + ")")
	}
	q.WriteString(" RETURNING " + d.Select(d.Quote(t.Cols[id].Name), &t.Cols[id]))
	return q.String()
}

// newID is the id's text of a row RETURNING gave.
func (d *dialect) newID(t *sqlconn.Table, id int, got *string) (string, error) {
	if got == nil {
		return "", fmt.Errorf("the new row of table %s has no id: give %q a value", t.Quoted, t.Cols[id].Name)
	}
	val, err := d.Decode(&t.Cols[id], *got)
	if err != nil {
		return "", err
	}
	return sqlconn.IDString(val), nil
}

// Insert inserts a row and returns its id's text, with RETURNING.
func (d *dialect) Insert(ctx context.Context, tx sqlconn.Tx, t *sqlconn.Table, cols []int, args []any, id int) (string, error) {
	rows, err := tx.Query(ctx, d.insertSQL(t, cols, id), args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var got *string
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			return "", err
		}
		got = v[0]
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	return d.newID(t, id, got)
}

// insertPipeline inserts rows with their own INSERT ... RETURNING statements, sent to the
// server as one pipeline (pgx.Batch), one round trip for them all, their results read in order:
// for tables whose ids a multi-row insert cannot know (see insertPlan).
func (d *dialect) insertPipeline(ctx context.Context, ptx *tx, t *sqlconn.Table, rows []sqlconn.Row, id int) ([]string, error) {
	b := &pgx.Batch{}
	for _, r := range rows {
		b.Queue(d.insertSQL(t, r.Cols, id), r.Args...)
	}
	br := ptx.batch(ctx, b)
	ids := make([]string, len(rows))
	for i := range rows {
		var got *string
		err := func() error {
			rs, err := br.Query()
			if err != nil {
				return err
			}
			defer rs.Close()
			for rs.Next() {
				if raw := rs.RawValues(); raw[0] != nil {
					s := string(raw[0])
					got = &s
				}
			}
			return rs.Err()
		}()
		if err == nil {
			ids[i], err = d.newID(t, id, got)
		}
		if err != nil {
			br.Close()
			return nil, err
		}
	}
	return ids, br.Close()
}

// ExecMany implements sqlconn.BulkExecer: the statements go to the server as one pipeline.
func (d *dialect) ExecMany(ctx context.Context, stx sqlconn.Tx, stmts []sqlconn.Stmt) error {
	ptx, ok := stx.(*tx)
	if !ok {
		return fmt.Errorf("postgres: a bulk write needs a pgx transaction, not %T", stx)
	}
	b := &pgx.Batch{}
	for _, s := range stmts {
		b.Queue(s.SQL, s.Args...)
	}
	br := ptx.batch(ctx, b)
	for range stmts {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
	}
	return br.Close()
}

// insertPlan is what the catalogue says of a table's inserts, read once per table.
type insertPlan struct {
	// multi: a multi-row insert stores each row's id as sent. Not so for a table with BEFORE or
	// INSTEAD OF row triggers on insert (they may change or drop the row) or insert rules, or
	// for anything but an ordinary table (a view, a partitioned table whose partitions may have
	// triggers of their own): those are inserted by insertPipeline, each row's id RETURNING.
	multi bool
	// sequence: the id column's default is the next value of this sequence (serial, identity),
	// so ids for rows that give none are fetched from it before the insert; "" for none.
	sequence string
	// always: the id is GENERATED ALWAYS, so an insert of fetched ids says OVERRIDING SYSTEM VALUE.
	always bool
	// returns: a multi-row insert's RETURNING is the row as stored, matched to the row sent by
	// its id: the table has no trigger on insert of any kind, and the id column is unique.
	returns bool
}

// insertPlanSQL reads an insertPlan: $1 the quoted table, $2 the id column's name.
const insertPlanSQL = `SELECT (c.relkind = 'r'
	AND NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid AND NOT g.tgisinternal
		AND g.tgtype & 1 = 1 AND g.tgtype & 4 = 4 AND g.tgtype & (2 | 64) <> 0)
	AND NOT EXISTS (SELECT 1 FROM pg_rewrite r WHERE r.ev_class = c.oid AND r.ev_type = '3'))::text,
	CASE WHEN a.attidentity <> '' OR pg_get_expr(ad.adbin, ad.adrelid) = format('nextval(%L::regclass)', pg_get_serial_sequence($1, $2)::regclass)
		THEN pg_get_serial_sequence($1, $2) ELSE '' END,
	(a.attidentity = 'a')::text,
	(NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid AND NOT g.tgisinternal AND g.tgtype & 4 = 4)
	AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND i.indnkeyatts = 1
		AND i.indkey[0] = a.attnum AND i.indpred IS NULL AND i.indexprs IS NULL))::text
FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $2 AND NOT a.attisdropped
LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
WHERE c.oid = to_regclass($1)`

func (d *dialect) insertPlan(ctx context.Context, q sqlconn.Querier, t *sqlconn.Table, id int) (insertPlan, error) {
	key := t.Quoted + "\x00" + t.Cols[id].Name
	d.mu.Lock()
	p, ok := d.plans[key]
	d.mu.Unlock()
	if ok {
		return p, nil
	}
	rows, err := sqlconn.Texts(ctx, q, insertPlanSQL, t.Quoted, t.Cols[id].Name)
	if err != nil {
		return insertPlan{}, err
	}
	if len(rows) == 1 {
		p = insertPlan{multi: rows[0][0] == "true", sequence: rows[0][1], always: rows[0][2] == "true"}
		p.returns = p.multi && rows[0][3] == "true"
	}
	d.mu.Lock()
	if d.plans == nil {
		d.plans = map[string]insertPlan{}
	}
	d.plans[key] = p
	d.mu.Unlock()
	return p, nil
}

// InsertMany implements sqlconn.BulkInserter. Rows that give their id, and rows of a table
// whose id column takes the next value of a sequence (serial, identity), go as multi-row
// INSERTs, one per run of rows that write the same columns, each one round trip; the id of each
// row is then the one it sends, or the one the statement takes from the sequence for it, as the
// column stores it. Others go as a pipeline of single-row INSERT ... RETURNING
// (insertPipeline). PostgreSQL promises no order of RETURNING for a multi-row insert, so it is
// not used to tell which row got which id.
func (d *dialect) InsertMany(ctx context.Context, stx sqlconn.Tx, t *sqlconn.Table, rows []sqlconn.Row, id int) ([]string, error) {
	ids, _, err := d.insertMany(ctx, stx, t, rows, id, false)
	return ids, err
}

// InsertManyStored implements sqlconn.StoredInserter: InsertMany, and where the table has no
// trigger on insert and a unique id (insertPlan.returns), the rows RETURNING as stored.
func (d *dialect) InsertManyStored(ctx context.Context, stx sqlconn.Tx, t *sqlconn.Table, rows []sqlconn.Row, id int) ([]string, [][]*string, error) {
	return d.insertMany(ctx, stx, t, rows, id, true)
}

func (d *dialect) insertMany(ctx context.Context, stx sqlconn.Tx, t *sqlconn.Table, rows []sqlconn.Row, id int, stored bool) ([]string, [][]*string, error) {
	ptx, ok := stx.(*tx)
	if !ok {
		return nil, nil, fmt.Errorf("postgres: a bulk insert needs a pgx transaction, not %T", stx)
	}
	plan, err := d.insertPlan(ctx, stx, t, id)
	if err != nil {
		return nil, nil, err
	}
	given := make([]bool, len(rows))
	for i, r := range rows {
		given[i] = slices.Contains(r.Cols, id)
		if !given[i] && plan.sequence == "" || len(r.Cols) == 0 {
			plan.multi = false // the server makes the id some other way: RETURNING tells it
		}
	}
	if !plan.multi {
		ids, err := d.insertPipeline(ctx, ptx, t, rows, id)
		return ids, nil, err
	}
	stored = stored && plan.returns
	ids := make([]string, 0, len(rows))
	var text [][]*string
	if stored {
		text = make([][]*string, 0, len(rows))
	}
	for start := 0; start < len(rows); {
		end := start + 1
		for end < len(rows) && given[end] == given[start] && slices.Equal(rows[end].Cols, rows[start].Cols) {
			end++
		}
		seq := ""
		if !given[start] {
			seq = plan.sequence
		}
		got, gotText, err := d.insertRun(ctx, stx, t, rows[start:end], id, run{seq: seq, always: plan.always, stored: stored})
		if err != nil {
			return nil, nil, err
		}
		ids, text = append(ids, got...), append(text, gotText...)
		start = end
	}
	return ids, text, nil
}

// run is how insertRun inserts: seq, the sequence that gives the ids (rows that give none);
// always, the id is GENERATED ALWAYS; stored, the rows are returned as stored.
type run struct {
	seq            string
	always, stored bool
}

// insertRun inserts rows that write the same columns in one statement: the values of each
// column go as one text array, unnested WITH ORDINALITY and cast to the columns' types (so a
// value a column cannot hold fails with PostgreSQL's message, as a single-row insert does).
// The rows give their ids, or (seq set) the statement takes one for each from the sequence.
// It returns, in the rows' order, each id as the column holds it, and the number of rows
// inserted, which must be all of them.
func (d *dialect) insertRun(ctx context.Context, q sqlconn.Querier, t *sqlconn.Table, rows []sqlconn.Row, id int, how run) ([]string, [][]*string, error) {
	if how.stored && how.seq == "" {
		return d.insertReturning(ctx, q, t, rows, id)
	}
	cols := rows[0].Cols
	args := make([]any, len(cols), len(cols)+1)
	for j := range cols {
		args[j] = textColumn{rows: rows, j: j}
	}
	if how.seq != "" {
		args = append(args, how.seq)
	}
	rs, err := q.Query(ctx, d.multiInsertSQL(t, cols, id, how), args...)
	if err != nil {
		return nil, nil, err
	}
	defer rs.Close()
	ids := make([]string, 0, len(rows))
	var stored [][]*string
	inserted := ""
	for rs.Next() {
		v, err := rs.Values()
		if err != nil {
			return nil, nil, err
		}
		if v[0] != nil {
			inserted = *v[0]
		}
		got, err := d.newID(t, id, v[1])
		if err != nil {
			return nil, nil, err
		}
		ids = append(ids, got)
		if how.stored {
			stored = append(stored, v[2:])
		}
	}
	if err := rs.Err(); err != nil {
		return nil, nil, err
	}
	if len(ids) != len(rows) || inserted != strconv.Itoa(len(rows)) {
		return nil, nil, fmt.Errorf("an insert of %d rows into table %s inserted %s", len(rows), t.Quoted, inserted)
	}
	return ids, stored, nil
}

// multiInsertSQL is insertRun's statement, for rows that give their ids:
//
//	WITH v AS MATERIALIZED (SELECT u.n, u.c0::T0 AS c0, ... FROM unnest($1::text[], ...) WITH ORDINALITY AS u(c0, ..., n)),
//	ins AS (INSERT INTO t (a, ...) SELECT c0, ... FROM v ORDER BY n RETURNING 1)
//	SELECT (SELECT count(*) FROM ins)::text, v.cID::numeric(10,2)::text FROM v ORDER BY v.n
//
// For rows whose ids the sequence gives (how.seq), v has a column id, nextval($k::regclass),
// which the insert writes (OVERRIDING SYSTEM VALUE for an identity GENERATED ALWAYS), and the
// select reads. The id is cast to the column's declared type, modifiers and all, so that it
// reads as the column stores it (numeric(10,2): 1.50, not 1.5). For how.stored, the insert
// RETURNING the id and t's select list, which the select joins to v by the id.
func (d *dialect) multiInsertSQL(t *sqlconn.Table, cols []int, id int, how run) string {
	next, override := how.seq != "", how.seq != "" && how.always
	var names, casts, arrays, aliases []string
	idAlias := "id"
	for j, c := range cols {
		alias := "c" + strconv.Itoa(j)
		names, aliases = append(names, d.Quote(t.Cols[c].Name)), append(aliases, alias)
		casts = append(casts, "u."+alias+"::"+t.Cols[c].Type+" AS "+alias)
		arrays = append(arrays, "$"+strconv.Itoa(j+1)+"::text[]")
		if c == id {
			idAlias = alias
		}
	}
	values := aliases
	if next {
		casts = append(casts, "nextval($"+strconv.Itoa(len(cols)+1)+"::regclass) AS id")
		names, values = append(names, d.Quote(t.Cols[id].Name)), append(slices.Clip(aliases), "id")
	}
	var q strings.Builder
	q.WriteString("WITH v AS MATERIALIZED (SELECT u.n, " + strings.Join(casts, ", ") + " FROM unnest(" + strings.Join(arrays, ", ") +
		") WITH ORDINALITY AS u(" + strings.Join(aliases, ", ") + ", n)),\nins AS (INSERT INTO " + t.Quoted + " (" + strings.Join(names, ", ") + ")")
	if override {
		q.WriteString(" OVERRIDING SYSTEM VALUE")
	}
	q.WriteString(" SELECT " + strings.Join(values, ", ") + " FROM v ORDER BY n RETURNING ")
	if how.stored {
		q.WriteString(d.Quote(t.Cols[id].Name) + " AS dataflow_key, " + t.Select + ")\n")
	} else {
		q.WriteString("1)\n")
	}
	q.WriteString("SELECT (SELECT count(*) FROM ins)::text, " + d.Select("v."+idAlias+"::"+t.Cols[id].Declared, &t.Cols[id]))
	if how.stored {
		for i := range t.Cols {
			q.WriteString(", ins." + d.Quote("c"+strconv.Itoa(i)))
		}
		q.WriteString(" FROM v JOIN ins ON ins.dataflow_key = v." + idAlias)
	} else {
		q.WriteString(" FROM v")
	}
	q.WriteString(" ORDER BY v.n")
	return q.String()
}

// insertReturning is insertRun for rows that give their ids, returned as stored: a plain
// INSERT ... SELECT FROM unnest ... RETURNING the rows, without the materialized rows and the
// join of multiInsertSQL, which cost the server about half as much again as the insert
// (200,000 rows of 13 columns, 1,000 a statement: 1.4 s of the server's CPU instead of 2.0).
// The rows RETURNING are matched to the rows sent by their ids, since PostgreSQL promises no
// order of RETURNING. Each id as stored is, as a rule, the text sent (a text id, an integer);
// where one is not (a UUID sent in capitals, a numeric(10,2) id sent as 1.5), the rows are
// read again by the ids sent, cast to the column's type, in the rows' order (readBySentSQL).
//
// Rows whose ids the sequence gives keep multiInsertSQL, which takes them in the statement:
// taking them first would cost a round trip per chunk, and per half of a failing one, and
// would ask for the sequence before the table (a user without the table's INSERT privilege
// would be told of the sequence's).
func (d *dialect) insertReturning(ctx context.Context, q sqlconn.Querier, t *sqlconn.Table, rows []sqlconn.Row, id int) ([]string, [][]*string, error) {
	cols := rows[0].Cols
	args := make([]any, len(cols))
	for j := range cols {
		args[j] = textColumn{rows: rows, j: j}
	}
	keys := make([]string, len(rows))
	at := slices.Index(cols, id)
	for i, r := range rows {
		if k, ok := r.Args[at].(string); ok {
			keys[i] = k
		}
	}
	got, err := valueRows(ctx, q, d.returningInsertSQL(t, cols), args...)
	if err != nil {
		return nil, nil, err
	}
	if len(got) != len(rows) {
		return nil, nil, fmt.Errorf("an insert of %d rows into table %s inserted %d", len(rows), t.Quoted, len(got))
	}
	stored, ok := matchStored(got, keys, id)
	if !ok {
		if stored, err = valueRows(ctx, q, d.readBySentSQL(t, id), keys); err != nil {
			return nil, nil, err
		}
		if len(stored) != len(rows) {
			return nil, nil, fmt.Errorf("an insert of %d rows into table %s read back %d", len(rows), t.Quoted, len(stored))
		}
	}
	ids := make([]string, len(rows))
	for i, row := range stored {
		if ids[i], err = d.newID(t, id, row[id]); err != nil {
			return nil, nil, err
		}
	}
	return ids, stored, nil
}

// matchStored orders the rows an insert returned (got) as the rows sent, by their ids (column
// id of got, keys of the rows sent), when each id as stored is the text sent; false when one
// is not. The id is unique (insertPlan.returns): no two rows stored have the same id.
func matchStored(got [][]*string, keys []string, id int) ([][]*string, bool) {
	inOrder := true
	for i, row := range got {
		if row[id] == nil || *row[id] != keys[i] {
			inOrder = false
			break
		}
	}
	if inOrder {
		return got, true
	}
	byID := make(map[string][]*string, len(got))
	for _, row := range got {
		if row[id] != nil {
			byID[*row[id]] = row
		}
	}
	out := make([][]*string, len(keys))
	for i, k := range keys {
		row, ok := byID[k]
		if !ok {
			return nil, false
		}
		out[i] = row
	}
	return out, true
}

// returningInsertSQL is insertReturning's statement:
//
//	INSERT INTO t (a, ...) SELECT u.c0::T0, ... FROM unnest($1::text[], ...) AS u(c0, ...) RETURNING <t's select list>
func (d *dialect) returningInsertSQL(t *sqlconn.Table, cols []int) string {
	names, casts, arrays, aliases := make([]string, len(cols)), make([]string, len(cols)), make([]string, len(cols)), make([]string, len(cols))
	for j, c := range cols {
		aliases[j] = "c" + strconv.Itoa(j)
		names[j] = d.Quote(t.Cols[c].Name)
		casts[j] = "u." + aliases[j] + "::" + t.Cols[c].Type
		arrays[j] = "$" + strconv.Itoa(j+1) + "::text[]"
	}
	return "INSERT INTO " + t.Quoted + " (" + strings.Join(names, ", ") + ") SELECT " + strings.Join(casts, ", ") +
		" FROM unnest(" + strings.Join(arrays, ", ") + ") AS u(" + strings.Join(aliases, ", ") + ") RETURNING " + t.Select
}

// readBySentSQL reads rows as stored, $1 their ids as sent, in that order: a lookup by the
// id's unique index for each (the LATERAL subquery with its LIMIT is never made a join, which
// the planner might make a scan of the whole table). Each id is cast to the column's declared
// type, modifiers and all, so that it is the id as stored (a numeric(10,2) id sent as 7.005
// is 7.01).
//
//	SELECT s.* FROM unnest($1::text[]) WITH ORDINALITY AS dataflow_sent(id, n)
//	CROSS JOIN LATERAL (SELECT <t's select list> FROM t WHERE "id" = dataflow_sent.id::numeric(10,2) LIMIT 1) s
//	ORDER BY dataflow_sent.n
func (d *dialect) readBySentSQL(t *sqlconn.Table, id int) string {
	return "SELECT s.* FROM unnest($1::text[]) WITH ORDINALITY AS dataflow_sent(id, n)\nCROSS JOIN LATERAL (SELECT " + t.Select +
		" FROM " + t.Quoted + " WHERE " + d.Quote(t.Cols[id].Name) + " = dataflow_sent.id::" + t.Cols[id].Declared + " LIMIT 1) s\nORDER BY dataflow_sent.n"
}

// valueRows are the rows of a query, each column's text or nil.
func valueRows(ctx context.Context, q sqlconn.Querier, sql string, args ...any) ([][]*string, error) {
	rs, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out [][]*string
	for rs.Next() {
		v, err := rs.Values()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rs.Err()
}

// textColumn is the j-th value of each row as one text[] parameter (a pgtype.ArrayGetter):
// each row's text, or NULL, encoded by pgx straight from the rows, with no slice of the
// values built first (which cost an allocation per value).
type textColumn struct {
	rows []sqlconn.Row
	j    int
}

func (c textColumn) Dimensions() []pgtype.ArrayDimension {
	return []pgtype.ArrayDimension{{Length: int32(len(c.rows)), LowerBound: 1}}
}

// Index is the i-th row's text; anything but a text (none is) is NULL.
func (c textColumn) Index(i int) any {
	v := c.rows[i].Args[c.j]
	if _, ok := v.(string); ok {
		return v // the interface as it is: boxing the string again would allocate
	}
	return nil
}

func (c textColumn) IndexType() any { return "" }
