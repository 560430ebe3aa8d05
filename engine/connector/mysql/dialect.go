package mysql

// The MySQL/MariaDB dialect: the catalogue, backticks, parameters, and values.
//
//	column type                       record value
//	TINYINT(1), BOOL                  bool
//	other integers, BIGINT UNSIGNED   int64, json.Number beyond it (exact)
//	DECIMAL                           exact: int64, float64 whose shortest form is the value, else json.Number
//	FLOAT, DOUBLE                     float64
//	DATE                              "2024-03-01"
//	DATETIME                          "2024-03-01T12:30:00.5" (no zone)
//	TIMESTAMP                         "2024-03-01T12:30:00.5Z" (the instant, in UTC)
//	JSON (MariaDB: LONGTEXT CHECK (json_valid(...)))  the JSON value
//	BINARY, VARBINARY, BLOB           standard base64 text
//	CHAR, VARCHAR, TEXT, ENUM, SET, TIME  text
//
// Timestamps are written from any ISO 8601 form: one with a zone is converted to UTC.

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/dataflow-sync/dataflow/internal/jsontext"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector/sqlconn"
	"github.com/go-sql-driver/mysql"
)

type dialect struct {
	database, addr string
}

func (*dialect) Name() string { return "mysql" }

// Quote quotes an identifier with backticks, embedded ones doubled.
func (*dialect) Quote(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

// QuoteTable quotes a table name; "shop.customer" is table customer of database shop.
func (d *dialect) QuoteTable(name string) string {
	if i := strings.IndexByte(name, '.'); i > 0 {
		return d.Quote(name[:i]) + "." + d.Quote(name[i+1:])
	}
	return d.Quote(name)
}

// Param is ?, or FROM_BASE64(?) for bytes.
func (*dialect) Param(_ int, c *sqlconn.Column) string {
	if c.Kind == sqlconn.Bytes {
		return "FROM_BASE64(?)"
	}
	return "?"
}

func (d *dialect) In(col string, c *sqlconn.Column, _ int, vals []string) (string, []any) {
	ps := make([]string, len(vals))
	args := make([]any, len(vals))
	for i, v := range vals {
		ps[i], args[i] = d.Param(0, c), v
	}
	return col + " IN (" + strings.Join(ps, ", ") + ")", args
}

// Select reads bytes as base64, others as the server's text.
func (*dialect) Select(col string, c *sqlconn.Column) string {
	if c.Kind == sqlconn.Bytes {
		return "TO_BASE64(" + col + ")"
	}
	return col
}

func (*dialect) CountText() string { return "count(*)" }

const columnsSQL = `SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY, EXTRA,
	COLUMN_DEFAULT IS NOT NULL, COALESCE(CHARACTER_MAXIMUM_LENGTH, 0)
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?
ORDER BY ORDINAL_POSITION`

// split is a table name's database (nil for the DSN's) and name.
func split(table string) (any, string) {
	if i := strings.IndexByte(table, '.'); i > 0 {
		return table[:i], table[i+1:]
	}
	return nil, table
}

// Columns describes a table from information_schema.
func (d *dialect) Columns(ctx context.Context, q sqlconn.Querier, table string) ([]sqlconn.Column, error) {
	schemaName, name := split(table)
	rows, err := q.Query(ctx, columnsSQL, schemaName, name)
	if err != nil {
		return nil, err
	}
	var cols []sqlconn.Column
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			rows.Close()
			return nil, err
		}
		s := func(i int) string {
			if v[i] == nil {
				return ""
			}
			return *v[i]
		}
		c := sqlconn.Column{Name: s(0), Declared: declared(strings.ToLower(s(1)), s(2)), NotNull: s(3) == "NO", PK: s(4) == "PRI",
			Auto: strings.Contains(strings.ToLower(s(5)), "auto_increment") || s(6) == "1"}
		c.Kind = kindOf(strings.ToLower(s(1)), strings.ToLower(s(2)))
		if c.Kind == sqlconn.Text {
			switch strings.ToLower(s(1)) {
			case "char", "varchar":
				c.MaxLen, _ = strconv.Atoi(s(7))
			case "enum":
				c.Enum = enumValues(s(2))
			}
		}
		cols = append(cols, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("table %s does not exist, or the user has no privilege on it", d.QuoteTable(table)) // information_schema hides such tables
	}
	// MariaDB's JSON is LONGTEXT with a CHECK (json_valid(`col`)) constraint.
	if rows, err := q.Query(ctx, `SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?`, schemaName, name); err == nil {
		for rows.Next() {
			v, err := rows.Values()
			if err != nil || v[0] == nil {
				continue
			}
			for i := range cols {
				if cols[i].Kind == sqlconn.Text && strings.EqualFold(strings.ReplaceAll(*v[0], " ", ""), "json_valid("+d.Quote(cols[i].Name)+")") {
					cols[i].Kind, cols[i].Declared = sqlconn.JSON, "json" // as it was declared, and as MySQL says
				}
			}
		}
		rows.Close()
	}
	return cols, nil
}

// declared is a column's type as discover describes it: COLUMN_TYPE without an integer's
// display width, which MariaDB writes (int(11), bigint(20) unsigned) and Oracle MySQL 8.0.19+
// no longer does (int, bigint unsigned), so that a table's schema file is the same from
// either. TINYINT(1) keeps its width: it is what makes the column a boolean (both write it).
func declared(dataType, columnType string) string {
	switch dataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year":
	default:
		return columnType
	}
	rest, ok := strings.CutPrefix(columnType, dataType+"(")
	if !ok || dataType == "tinyint" && strings.HasPrefix(rest, "1)") {
		return columnType
	}
	end := strings.IndexByte(rest, ')')
	if end < 0 {
		return columnType
	}
	return dataType + rest[end+1:]
}

// enumValues reads enum('a','b”c') into its values.
func enumValues(columnType string) []string {
	s := strings.TrimSuffix(strings.TrimPrefix(columnType, "enum("), ")")
	var out []string
	for len(s) > 0 && s[0] == '\'' {
		var b strings.Builder
		i := 1
		for ; i < len(s); i++ {
			if s[i] == '\'' {
				if i+1 < len(s) && s[i+1] == '\'' {
					b.WriteByte('\'')
					i++
					continue
				}
				break
			}
			b.WriteByte(s[i])
		}
		out = append(out, b.String())
		s = strings.TrimPrefix(s[min(i+1, len(s)):], ",")
	}
	return out
}

func kindOf(dataType, columnType string) sqlconn.Kind {
	switch dataType {
	case "tinyint":
		if strings.HasPrefix(columnType, "tinyint(1)") {
			return sqlconn.Bool
		}
		return sqlconn.Int
	case "smallint", "mediumint", "int", "integer", "bigint", "year":
		return sqlconn.Int
	case "decimal", "numeric":
		return sqlconn.Decimal
	case "float", "double", "real":
		return sqlconn.Float
	case "json":
		return sqlconn.JSON
	case "date":
		return sqlconn.Date
	case "time":
		return sqlconn.Time
	case "datetime":
		return sqlconn.DateTime
	case "timestamp":
		return sqlconn.Instant
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		return sqlconn.Bytes
	case "uuid": // MariaDB 10.7+
		return sqlconn.UUID
	}
	return sqlconn.Text
}

// Decode turns a column's text into a record value.
func (*dialect) Decode(c *sqlconn.Column, text string) (any, error) {
	switch c.Kind {
	case sqlconn.Int:
		if i, err := strconv.ParseInt(text, 10, 64); err == nil {
			return i, nil
		}
		return json.Number(text), nil // BIGINT UNSIGNED beyond int64
	case sqlconn.Decimal:
		return exact(text), nil
	case sqlconn.Float:
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return text, nil
		}
		return f, nil
	case sqlconn.Bool:
		return text != "0", nil
	case sqlconn.Bytes:
		return strings.NewReplacer("\n", "", "\r", "").Replace(text), nil // TO_BASE64 wraps lines
	case sqlconn.JSON:
		return jsontext.Decode(text)
	case sqlconn.DateTime:
		return strings.Replace(text, " ", "T", 1), nil
	case sqlconn.Instant:
		if strings.HasPrefix(text, "0000") {
			return text, nil
		}
		return strings.Replace(text, " ", "T", 1) + "Z", nil
	}
	return text, nil
}

// exact is a DECIMAL's text as the engine holds it: never rounded (jsontext.Number).
func exact(s string) any { return jsontext.Number(s) }

// Encode turns a record value into the text MySQL reads for the column.
func (*dialect) Encode(c *sqlconn.Column, v any) (*string, error) {
	if v == nil {
		return nil, nil
	}
	var s string
	var err error
	switch c.Kind {
	case sqlconn.JSON:
		s, err = encodeJSON(v)
	case sqlconn.Bool:
		switch x := v.(type) {
		case bool:
			s = map[bool]string{true: "1", false: "0"}[x]
		case string:
			s = map[string]string{"true": "1", "false": "0"}[x]
			if s == "" {
				s = x
			}
		default:
			s, err = text(v)
		}
	case sqlconn.DateTime, sqlconn.Instant:
		s, err = text(v)
		if err == nil {
			s = timestamp(s)
		}
	default:
		s, err = text(v)
	}
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// timestamp is an ISO 8601 time as MySQL reads it: "2024-03-01 12:30:00.5", in UTC when it
// had a zone. Other text is left to the server, which says what is wrong with it.
func timestamp(s string) string {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02T15:04Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Format("2006-01-02 15:04:05.999999")
		}
	}
	if len(s) > 10 && s[10] == 'T' {
		return s[:10] + " " + s[11:]
	}
	return s
}

func text(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		if x {
			return "1", nil
		}
		return "0", nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case int:
		return strconv.Itoa(x), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return "", fmt.Errorf("%v is not a number JSON can hold", x)
		}
		return strconv.FormatFloat(x, 'g', -1, 64), nil
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

// Insert inserts a row and returns its id's text: the id given, or LAST_INSERT_ID().
func (d *dialect) Insert(ctx context.Context, stx sqlconn.Tx, t *sqlconn.Table, cols []int, args []any, id int) (string, error) {
	names, params := make([]string, len(cols)), make([]string, len(cols))
	given := ""
	for i, c := range cols {
		names[i], params[i] = d.Quote(t.Cols[c].Name), d.Param(0, &t.Cols[c])
		if c == id {
			if s, ok := args[i].(string); ok {
				given = s
			}
		}
	}
	q := "INSERT INTO " + t.Quoted + " (" + strings.Join(names, ", ") + ") VALUES (" + strings.Join(params, ", ") + ")"
	_, first, err := insertExec(ctx, stx, q, args...)
	if err != nil {
		return "", err
	}
	if given != "" {
		return given, nil
	}
	if first == 0 {
		return "", fmt.Errorf("the new row of table %s has no id: give %q a value", t.Quoted, t.Cols[id].Name)
	}
	return strconv.FormatUint(first, 10), nil
}

// insertExec runs an INSERT and returns the rows inserted and LAST_INSERT_ID(): from the
// server's reply to it on a transaction of this package (one round trip), else by a query.
func insertExec(ctx context.Context, stx sqlconn.Tx, q string, args ...any) (int64, uint64, error) {
	if t, ok := stx.(*tx); ok {
		return t.execID(ctx, q, args...)
	}
	n, err := stx.Exec(ctx, q, args...)
	if err != nil {
		return 0, 0, err
	}
	first, err := lastInsertID(ctx, stx)
	return n, first, err
}

// recordErrors are the server's errors of one row's values.
var recordErrors = map[uint16]bool{
	1048: true, // column cannot be null
	1062: true, // duplicate entry
	1264: true, // out of range value
	1265: true, // data truncated
	1292: true, // incorrect date/time value
	1364: true, // field has no default value
	1366: true, // incorrect integer/decimal/string value
	1406: true, // data too long
	1451: true, // a foreign key refers to the row
	1452: true, // a foreign key refers to no row
	1690: true, // value out of range
	3140: true, // invalid JSON (MySQL)
	3819: true, // check constraint (MySQL)
	4025: true, // check constraint (MariaDB)
	1644: true, // SIGNAL in a trigger
}

func (*dialect) RecordError(err error) bool {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	return recordErrors[me.Number] || me.SQLState[0] == '2' && (me.SQLState[1] == '2' || me.SQLState[1] == '3')
}

// Retry: deadlocks, lock waits, a server going away, and a connection that failed.
func (*dialect) Retry(err error) bool {
	if sqlconn.Committing(err) {
		return false
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		// deadlock, lock wait timeout, server shutdown, connection killed (MariaDB), too many
		// connections, and disconnected for inactivity (Oracle MySQL 8.0.24+ says so before it
		// closes a session idle past wait_timeout; MariaDB just closes it, a bad connection)
		case 1213, 1205, 1053, 1927, 1040, 4031:
			return true
		}
		return false
	}
	var ne net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) || errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// Deletions installs (once) an AFTER DELETE trigger that counts the table's deleted rows in
// dataflow_deletions, and reads the count; installing counts as a deletion.
func (d *dialect) Deletions(ctx context.Context, db sqlconn.DB, t *sqlconn.Table, install bool) (int64, bool, error) {
	schemaName, name := split(t.Name)
	trigger := "dataflow_count_deleted_" + name
	if len(trigger) > 64 {
		trigger = trigger[:64]
	}
	one := func(q sqlconn.Querier, sql string, args ...any) (string, error) {
		rows, err := q.Query(ctx, sql, args...)
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
	present := func(q sqlconn.Querier) (bool, error) {
		s, err := one(q, `SELECT (SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'dataflow_deletions')
			+ (SELECT count(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = COALESCE(?, DATABASE()) AND TRIGGER_NAME = ?)`, schemaName, trigger)
		return s == "2", err
	}
	ok, err := present(db)
	if err != nil {
		return 0, false, err
	}
	if !ok && install {
		// DDL commits by itself in MySQL: each statement stands alone, and a lost race to
		// create the trigger is an error that a second look settles.
		if _, err := db.Exec(ctx, "CREATE TABLE IF NOT EXISTS dataflow_deletions (tbl VARCHAR(255) PRIMARY KEY, deleted BIGINT NOT NULL)"); err != nil {
			return 0, false, err
		}
		qualified := d.Quote(trigger)
		if s, ok := schemaName.(string); ok {
			qualified = d.Quote(s) + "." + qualified
		}
		_, err := db.Exec(ctx, `CREATE TRIGGER `+qualified+` AFTER DELETE ON `+t.Quoted+` FOR EACH ROW
			INSERT INTO `+d.Quote(d.database)+`.dataflow_deletions (tbl, deleted) VALUES (`+literal(t.Quoted)+`, 1) ON DUPLICATE KEY UPDATE deleted = deleted + 1`)
		if err != nil {
			if ok, perr := present(db); perr != nil || !ok {
				return 0, false, err
			}
		} else if _, err := db.Exec(ctx, `INSERT INTO dataflow_deletions (tbl, deleted) VALUES (?, 1) ON DUPLICATE KEY UPDATE deleted = deleted + 1`, t.Quoted); err != nil {
			return 0, false, err
		}
		ok = true
	}
	if !ok {
		return 0, false, nil
	}
	s, err := one(db, `SELECT deleted FROM dataflow_deletions WHERE tbl = ?`, t.Quoted)
	if err != nil || s == "" {
		return 0, false, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil, err
}

func literal(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", "''").Replace(s) + "'"
}
