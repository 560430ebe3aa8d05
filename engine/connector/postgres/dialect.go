package postgres

// The PostgreSQL dialect: the catalogue, quoting, parameters, and values.
//
//	column type                   record value
//	smallint, integer, bigint     int64 (exact)
//	numeric, decimal              exact: int64 for an integer, float64 when its shortest form
//	                              is the stored decimal (0.99), else json.Number ("0.1000000000000000055")
//	real, double precision        float64
//	boolean                       bool
//	date                          "2024-03-01"
//	timestamp                     "2024-03-01T12:30:00.123456" (no zone)
//	timestamptz                   "2024-03-01T12:30:00.123456+00:00" (the instant, in UTC)
//	time, interval, text, varchar, char, enums, uuid, inet...  their text
//	json, jsonb                   the JSON value: objects as map[string]any
//	arrays                        []any of the element type's values
//	bytea                         standard base64 text
//
// Any value is written as text cast to the column's type, so "2024-03-01T12:30:00Z" and
// "2024-03-01 13:30:00+01" both write the same instant, and 0.99 writes 0.99 exactly.

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/dataflow-sync/dataflow/internal/jsontext"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/dataflow-sync/dataflow/engine/connector/sqlconn"
	"github.com/jackc/pgx/v5/pgconn"
)

type dialect struct {
	schema string // the system's `schema`: tables named without one are in it

	mu    sync.Mutex
	plans map[string]insertPlan // by table and id column, read once (see insertPlan)
}

func (*dialect) Name() string { return "postgres" }

// Quote quotes an identifier: "order details", with embedded quotes doubled.
func (*dialect) Quote(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// QuoteTable quotes a table name; "sales.customer" is table customer of schema sales, and a
// name without a schema is in the system's `schema` when it sets one.
func (d *dialect) QuoteTable(name string) string {
	if i := strings.IndexByte(name, '.'); i > 0 {
		return d.Quote(name[:i]) + "." + d.Quote(name[i+1:])
	}
	if d.schema != "" {
		return d.Quote(d.schema) + "." + d.Quote(name)
	}
	return d.Quote(name)
}

func (*dialect) Param(n int, c *sqlconn.Column) string {
	return "$" + strconv.Itoa(n) + "::text::" + c.Type
}

func (*dialect) In(col string, c *sqlconn.Column, first int, vals []string) (string, []any) {
	return col + " = ANY($" + strconv.Itoa(first) + "::text[]::" + c.Type + "[])", []any{vals}
}

// Select reads timestamps and arrays as JSON (ISO 8601 text, JSON arrays), others as text.
func (*dialect) Select(col string, c *sqlconn.Column) string {
	switch c.Kind {
	case sqlconn.Array, sqlconn.DateTime, sqlconn.Instant:
		return "to_json(" + col + ")::text"
	}
	return col + "::text"
}

func (*dialect) CountText() string { return "count(*)::text" }

// columnsSQL lists a table's columns with what the connector needs of each, all as text.
const columnsSQL = `SELECT a.attname::text,
	format_type(a.atttypid, a.atttypmod),
	quote_ident(tn.nspname) || '.' || quote_ident(t.typname),
	t.typname::text, t.typtype::text, COALESCE(et.typname::text, ''),
	a.attnotnull::text,
	EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisprimary AND a.attnum = ANY(i.indkey))::text,
	(a.attidentity <> '' OR a.atthasdef)::text,
	COALESCE((SELECT string_agg(e.enumlabel, E'\x1f' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), ''),
	CASE WHEN a.atttypmod > 4 AND t.typname IN ('varchar', 'bpchar') THEN a.atttypmod - 4 ELSE 0 END::text
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_namespace tn ON tn.oid = t.typnamespace
LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`

// Columns describes a table from pg_catalog.
func (d *dialect) Columns(ctx context.Context, q sqlconn.Querier, table string) ([]sqlconn.Column, error) {
	rows, err := q.Query(ctx, columnsSQL, d.QuoteTable(table))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []sqlconn.Column
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			return nil, err
		}
		s := func(i int) string {
			if v[i] == nil {
				return ""
			}
			return *v[i]
		}
		c := sqlconn.Column{Name: s(0), Declared: s(1), Type: s(2), NotNull: s(6) == "true", PK: s(7) == "true", Auto: s(8) == "true"}
		c.Kind = kindOf(s(3), s(4))
		if c.Kind == sqlconn.Array {
			c.Elem = kindOf(s(5), "")
		}
		if e := s(9); e != "" {
			c.Enum = strings.Split(e, "\x1f")
		}
		c.MaxLen, _ = strconv.Atoi(s(10))
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("table %s does not exist", d.QuoteTable(table))
	}
	return cols, nil
}

// kindOf is the kind of a type by its name (pg_type.typname) and typtype.
func kindOf(typname, typtype string) sqlconn.Kind {
	if strings.HasPrefix(typname, "_") && typtype != "e" {
		return sqlconn.Array
	}
	switch typname {
	case "int2", "int4", "int8", "oid":
		return sqlconn.Int
	case "numeric":
		return sqlconn.Decimal
	case "float4", "float8":
		return sqlconn.Float
	case "bool":
		return sqlconn.Bool
	case "bytea":
		return sqlconn.Bytes
	case "json", "jsonb":
		return sqlconn.JSON
	case "date":
		return sqlconn.Date
	case "time", "timetz":
		return sqlconn.Time
	case "timestamp":
		return sqlconn.DateTime
	case "timestamptz":
		return sqlconn.Instant
	case "uuid":
		return sqlconn.UUID
	}
	return sqlconn.Text
}

// Decode turns a column's text (see Select) into a record value.
func (*dialect) Decode(c *sqlconn.Column, text string) (any, error) {
	switch c.Kind {
	case sqlconn.Int:
		if i, err := strconv.ParseInt(text, 10, 64); err == nil {
			return i, nil
		}
		return json.Number(text), nil
	case sqlconn.Decimal:
		return exact(text), nil
	case sqlconn.Float:
		f, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return text, nil // NaN, Infinity: JSON has no number for them
		}
		return f, nil
	case sqlconn.Bool:
		return text == "true", nil
	case sqlconn.Bytes:
		return bytesOf(text)
	case sqlconn.JSON:
		return jsontext.Decode(text)
	case sqlconn.DateTime, sqlconn.Instant:
		if n := len(text); n >= 2 && text[0] == '"' && text[n-1] == '"' && !strings.ContainsAny(text[1:n-1], `"\`) {
			return text[1 : n-1], nil // to_json's string of a timestamp never has an escape to undo
		}
		var s string
		if err := json.Unmarshal([]byte(text), &s); err != nil {
			return nil, err
		}
		return s, nil
	case sqlconn.Array:
		v, err := jsontext.Decode(text)
		if err != nil {
			return nil, err
		}
		return elements(c.Elem, v)
	}
	return text, nil
}

// elements converts an array's elements (decoded from to_json) to record values.
func elements(k sqlconn.Kind, v any) (any, error) {
	switch x := v.(type) {
	case []any:
		for i, e := range x {
			var err error
			if x[i], err = elements(k, e); err != nil {
				return nil, err
			}
		}
		return x, nil
	case string:
		if k == sqlconn.Bytes {
			return bytesOf(x)
		}
	case json.Number:
		if k == sqlconn.Float {
			f, _ := strconv.ParseFloat(string(x), 64)
			return f, nil
		}
	}
	return v, nil
}

// bytesOf turns bytea's hex text (\x0102) into base64.
func bytesOf(text string) (any, error) {
	b, err := hex.DecodeString(strings.TrimPrefix(text, `\x`))
	if err != nil {
		return nil, fmt.Errorf("bytea %q: %w", text, err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// exact is a decimal's record value: int64 for an integer that fits, float64 when the
// shortest form of the nearest float64 is the same number, else the digits (json.Number).
// exact is a NUMERIC's text as the engine holds it: never rounded (jsontext.Number); NaN and
// the infinities, which no JSON number writes, stay text.
func exact(s string) any {
	switch s {
	case "NaN", "Infinity", "-Infinity":
		return s
	}
	return jsontext.Number(s)
}

// Encode turns a record value into the text PostgreSQL reads for the column's type.
func (*dialect) Encode(c *sqlconn.Column, v any) (*string, error) {
	if v == nil {
		return nil, nil
	}
	var s string
	var err error
	switch c.Kind {
	case sqlconn.Bytes:
		s, err = byteaText(v)
	case sqlconn.JSON:
		s, err = encodeJSON(v)
	case sqlconn.Array:
		s, err = arrayText(c.Elem, v)
	default:
		s, err = text(v)
	}
	if err != nil {
		return nil, err
	}
	return &s, nil
}

func byteaText(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("the column holds bytes: write them as standard base64 text, not %T", v)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("the column holds bytes: write them as standard base64 text (%v)", err)
	}
	return `\x` + hex.EncodeToString(b), nil
}

// text is a scalar's text: numbers in their shortest exact form, objects and arrays as JSON.
func text(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case int:
		return strconv.Itoa(x), nil
	case int32:
		return strconv.FormatInt(int64(x), 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return "", fmt.Errorf("%v is not a number JSON can hold", x)
		}
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32), nil
	case json.Number:
		return string(x), nil
	case map[string]any, []any:
		return encodeJSON(x)
	}
	return "", fmt.Errorf("cannot store a value of type %T", v)
}

// encodeJSON writes a JSON column's text (jsontext.Marshal).
func encodeJSON(v any) (string, error) {
	b, err := jsontext.Marshal(v)
	return string(b), err
}

// arrayText writes an array literal: {1,2,NULL}, {"a \"b\"","c"}, {{1,2},{3,4}}.
func arrayText(elem sqlconn.Kind, v any) (string, error) {
	items, ok := v.([]any)
	if !ok {
		return "", fmt.Errorf("the column holds an array: give a list, not %T", v)
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		switch x := it.(type) {
		case nil:
			b.WriteString("NULL")
			continue
		case []any:
			if elem != sqlconn.JSON {
				s, err := arrayText(elem, x)
				if err != nil {
					return "", err
				}
				b.WriteString(s)
				continue
			}
		}
		var s string
		var err error
		switch elem {
		case sqlconn.Bytes:
			s, err = byteaText(it)
		case sqlconn.JSON:
			s, err = encodeJSON(it)
		default:
			s, err = text(it)
		}
		if err != nil {
			return "", fmt.Errorf("element %d: %w", i, err)
		}
		b.WriteByte('"')
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String(), nil
}

// RecordError: data exceptions (22: a value the type cannot hold, too long, out of range),
// integrity constraints (23: unique, foreign key, not null, check) and errors raised by
// triggers (P0001) are the record's.
func (*dialect) RecordError(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	return strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23") || pe.Code == "P0001"
}

// Retry: serialization failures, deadlocks, a server shutting down or starting, and a
// connection that failed (the transaction was rolled back by the server, or never began).
func (*dialect) Retry(err error) bool {
	if sqlconn.Committing(err) {
		return false // the commit's outcome is unknown: the engine's intents recover it
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "40001", pe.Code == "40P01", strings.HasPrefix(pe.Code, "57P"), strings.HasPrefix(pe.Code, "08"):
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return pgconn.SafeToRetry(err) || errors.As(err, &ce) || errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "conn closed")
}

// deletions is the table of deletion counts, one row per tracked table.
func (d *dialect) deletions() string { return d.QuoteTable("dataflow_deletions") }

// Deletions installs (once) an AFTER DELETE trigger that counts the table's deleted rows in
// dataflow_deletions, and reads the count. Installing counts as a deletion, so a count stored
// before a trigger went missing never equals one read after.
func (d *dialect) Deletions(ctx context.Context, db sqlconn.DB, t *sqlconn.Table, install bool) (int64, bool, error) {
	tx, err := db.Begin(ctx, !install)
	if err != nil {
		return 0, false, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	one := func(q string, args ...any) (string, error) {
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return "", err
		}
		defer rows.Close()
		var out string
		for rows.Next() {
			v, err := rows.Values()
			if err != nil {
				return "", err
			}
			if v[0] != nil {
				out = *v[0]
			}
		}
		return out, rows.Err()
	}
	present := func() (bool, error) {
		s, err := one(`SELECT (to_regclass($1) IS NOT NULL AND EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass($2) AND tgname = 'dataflow_count_deleted'))::text`, d.deletions(), t.Quoted)
		return s == "true", err
	}
	ok, err := present()
	if err != nil {
		return 0, false, err
	}
	if !ok && install {
		if ok, err = d.installDeletions(ctx, tx, t, present); err != nil {
			return 0, false, err
		}
	}
	if !ok {
		return 0, false, nil
	}
	s, err := one(`SELECT deleted::text FROM `+d.deletions()+` WHERE tbl = $1`, t.Quoted)
	if err != nil || s == "" {
		return 0, false, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false, err
	}
	if install {
		if err := tx.Commit(ctx); err != nil {
			return 0, false, err
		}
	}
	return n, true, nil
}

// installDeletions creates the table of deletion counts, its function and the table's trigger,
// under a lock, unless another run installed them meanwhile (present says).
func (d *dialect) installDeletions(ctx context.Context, tx sqlconn.Tx, t *sqlconn.Table, present func() (bool, error)) (bool, error) {
	fn := d.QuoteTable("dataflow_count_deleted")
	for _, q := range []string{
		`SELECT pg_advisory_xact_lock(hashtext('dataflow_deletions'))::text`,
		`CREATE TABLE IF NOT EXISTS ` + d.deletions() + ` (tbl text PRIMARY KEY, deleted bigint NOT NULL)`,
		`CREATE OR REPLACE FUNCTION ` + fn + `() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO ` + d.deletions() + ` (tbl, deleted) VALUES (TG_ARGV[0], 1)
	ON CONFLICT (tbl) DO UPDATE SET deleted = ` + d.deletions() + `.deleted + 1;
	RETURN NULL;
END $$`,
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return false, err
		}
	}
	ok, err := present() // another run may have installed it meanwhile
	if err != nil {
		return false, err
	}
	if !ok {
		for _, q := range []string{
			`CREATE TRIGGER dataflow_count_deleted AFTER DELETE ON ` + t.Quoted + ` FOR EACH ROW EXECUTE FUNCTION ` + fn + `(` + literal(t.Quoted) + `)`,
			`INSERT INTO ` + d.deletions() + ` (tbl, deleted) VALUES (` + literal(t.Quoted) + `, 1) ON CONFLICT (tbl) DO UPDATE SET deleted = ` + d.deletions() + `.deleted + 1`,
		} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return false, err
			}
		}
		ok = true
	}
	return ok, nil
}

func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
