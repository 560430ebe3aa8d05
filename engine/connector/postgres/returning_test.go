package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/connector/sqlconn"
	"github.com/dataflow-sync/dataflow/internal/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// givenDDL has a column of every type the connector reads, and three tables whose ids the
// records give: as text (stored as sent), as a UUID and as a numeric(10,2) (stored otherwise
// than sent when given in capitals, or as 1.5).
const givenDDL = `CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE typed (
	id text PRIMARY KEY,
	big bigint, small smallint, price numeric(10,2), wide numeric, ratio double precision,
	active boolean, day date, at timestamp(0), at_tz timestamptz, span interval, clock time,
	uid uuid, doc jsonb, plain json, tags text[], nums integer[], raw bytea, feeling mood,
	code varchar(5), fixed char(4), note text,
	stamped timestamptz DEFAULT '2025-01-02 03:04:05+00', status text DEFAULT 'new'
);
CREATE TABLE by_uuid (id uuid PRIMARY KEY, note text, at_tz timestamptz);
CREATE TABLE by_amount (id numeric(10,2) PRIMARY KEY, note text, price numeric(10,2))`

// typedRecord is record i of a batch: values the server stores in its own form (rounded,
// padded, trimmed, in UTC, in small letters), NULLs, and an empty text.
func typedRecord(i int) map[string]any {
	r := map[string]any{
		"id": fmt.Sprintf("row-%04d", i), "note": fmt.Sprintf("note %d", i),
		"big": int64(9007199254740993) + int64(i), "small": int64(-7), "price": json.Number(fmt.Sprintf("%d.005", i+1)),
		"wide": json.Number("12345678901234567890.123456789"), "ratio": 0.1,
		"active": i%2 == 0, "day": "2024-03-01", "at": "2024-03-01 12:30:00.6", "at_tz": "2024-03-01 13:30:00+01",
		"span": "90 minutes", "clock": "12:30", "uid": "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
		"doc": map[string]any{"n": int64(i), "deep": map[string]any{"x": []any{int64(1), "two"}}}, "plain": []any{int64(1), int64(2)},
		"tags": []any{"a", "b c", `q"uote`, "back\\slash", "tab\tnew\nline"}, "nums": []any{int64(1), nil, int64(3)},
		"raw": "AP8Q", "feeling": "happy", "code": "abcde   ", "fixed": "ab",
	}
	switch i % 3 {
	case 1:
		r["note"], r["code"], r["doc"] = nil, nil, nil
	case 2:
		r["note"] = ""
	}
	return r
}

// A batch of creates of rows that give their ids returns each record as the row stored for
// it, every type in the server's own form (a numeric(10,2) rounded, a timestamp(0) rounded,
// the blanks past a varchar(5) trimmed, a timestamptz in UTC, a UUID in
// small letters, defaults filled in), each the same as a later Get reads, in one INSERT that
// RETURNING the rows (no read-back, no materialized rows joined to the insert). Where the
// column stores the id otherwise than sent (a UUID in capitals, a numeric(10,2) id), each
// record still gets its own row and its id as stored.
func TestCreateBatchOfGivenIDsReturnsRowsAsStored(t *testing.T) {
	db := pgtest.New(t)
	db.Exec(t, givenDDL)
	tr := &tracer{}
	c := openTraced(t, db.DSN(), system(`Typed: {table: typed, id: id}`, `ByUUID: {table: by_uuid, id: id}`, `ByAmount: {table: by_amount, id: id}`), tr)
	ctx := context.Background()
	recs := make([]map[string]any, 300)
	for i := range recs {
		recs[i] = typedRecord(i)
	}
	if _, err := c.Get(ctx, "Typed", []string{"none"}); err != nil { // the table described
		t.Fatal(err)
	}
	tr.reset()
	res, err := c.Create(ctx, "Typed", recs)
	if err != nil {
		t.Fatal(err)
	}
	var inserts []string
	for _, q := range tr.sql {
		if strings.Contains(q, "INSERT") {
			inserts = append(inserts, q)
		}
	}
	if len(inserts) != 1 || !strings.HasPrefix(inserts[0], `INSERT INTO "typed" (`) || strings.Contains(inserts[0], "MATERIALIZED") || !strings.Contains(inserts[0], " RETURNING ") {
		t.Errorf("the batch was inserted by %q; want one INSERT INTO \"typed\" ... RETURNING", inserts)
	}
	// the insert plan; the BEGIN and the insert, in one pipeline; the commit
	if rt, st := tr.reset(); rt != 3 || st != 4 {
		t.Errorf("300 creates took %d round trips, %d statements; want 3 round trips of 4 statements (plan; begin and insert; commit)", rt, st)
	}
	ids := make([]string, len(res))
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("record %d: %v", i, r.Err)
		}
		ids[i] = r.Record.ID
	}
	got, err := c.Get(ctx, "Typed", ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		want := map[string]any{
			"id": fmt.Sprintf("row-%04d", i), "note": fmt.Sprintf("note %d", i),
			"big": int64(9007199254740993) + int64(i), "small": int64(-7), "price": decimal(fmt.Sprintf("%d.01", i+1)),
			"wide": json.Number("12345678901234567890.123456789"), "ratio": 0.1,
			"active": i%2 == 0, "day": "2024-03-01", "at": "2024-03-01T12:30:01", "at_tz": "2024-03-01T12:30:00+00:00",
			"span": "01:30:00", "clock": "12:30:00", "uid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
			"doc": map[string]any{"n": int64(i), "deep": map[string]any{"x": []any{int64(1), "two"}}}, "plain": []any{int64(1), int64(2)},
			"tags": []any{"a", "b c", `q"uote`, "back\\slash", "tab\tnew\nline"}, "nums": []any{int64(1), nil, int64(3)},
			"raw": "AP8Q", "feeling": "happy", "code": "abcde", "fixed": "ab",
			"stamped": "2025-01-02T03:04:05+00:00", "status": "new",
		}
		switch i % 3 {
		case 1:
			want["note"], want["code"], want["doc"] = nil, nil, nil
		case 2:
			want["note"] = ""
		}
		if r.Record.ID != want["id"] {
			t.Errorf("record %d: id %s, want %s", i, r.Record.ID, want["id"])
		}
		for k := range want {
			if !reflect.DeepEqual(r.Record.Data[k], want[k]) {
				t.Errorf("record %d, %s: returned %#v, want %#v", i, k, r.Record.Data[k], want[k])
			}
		}
		if !reflect.DeepEqual(r.Record, got[r.Record.ID]) {
			t.Errorf("record %d: returned %v, Get reads %v", i, r.Record, got[r.Record.ID])
		}
		if t.Failed() {
			t.FailNow()
		}
	}

	// Ids stored otherwise than sent: every record gets the row stored for it, and its id as
	// stored.
	for _, tc := range []struct {
		entity string
		id     func(i int) any
		want   func(i int) string
	}{
		{"ByUUID", func(i int) any { return fmt.Sprintf("A0EEBC99-9C0B-4EF8-BB6D-%012X", 0xABC000+i) },
			func(i int) string { return fmt.Sprintf("a0eebc99-9c0b-4ef8-bb6d-%012x", 0xabc000+i) }},
		{"ByAmount", func(i int) any { return 0.5 + float64(i) }, func(i int) string { return fmt.Sprint(0.5 + float64(i)) }},
		// rounded to the column's scale: 7.005 is stored, and found again, as 7.01
		{"ByAmount", func(i int) any { return json.Number(fmt.Sprintf("%d.005", i)) }, func(i int) string { return fmt.Sprintf("%d.01", i) }},
	} {
		recs := make([]map[string]any, 200)
		for i := range recs {
			recs[i] = map[string]any{"id": tc.id(i), "note": fmt.Sprintf("note %d", i)}
			if tc.entity == "ByUUID" {
				recs[i]["at_tz"] = fmt.Sprintf("2024-03-01 13:%02d:00+01", i%60)
			} else {
				recs[i]["price"] = json.Number(fmt.Sprintf("%d.005", i+2))
			}
		}
		res, err := c.Create(ctx, tc.entity, recs)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]string, len(res))
		for i, r := range res {
			ids[i] = r.Record.ID
		}
		got, err := c.Get(ctx, tc.entity, ids)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Err != nil || r.Record.ID != tc.want(i) || r.Record.Data["note"] != fmt.Sprintf("note %d", i) || !reflect.DeepEqual(r.Record, got[r.Record.ID]) {
				t.Fatalf("%s record %d: %v (%v); want id %s, note %d, as Get reads it: %v", tc.entity, i, r.Record, r.Err, tc.want(i), i, got[r.Record.ID])
			}
			if tc.entity == "ByUUID" && r.Record.Data["at_tz"] != fmt.Sprintf("2024-03-01T12:%02d:00+00:00", i%60) {
				t.Fatalf("%s record %d: at_tz %v", tc.entity, i, r.Record.Data["at_tz"])
			}
			if tc.entity == "ByAmount" && r.Record.Data["price"] != decimal(fmt.Sprintf("%d.01", i+2)) {
				t.Fatalf("%s record %d: price %v, want %d.01", tc.entity, i, r.Record.Data["price"], i+2)
			}
		}
	}
}

// A batch with a bad row among rows that give their ids: the bad one fails alone with
// PostgreSQL's message, the others are stored and returned as stored.
func TestCreateBatchOfGivenIDsWithOneBadRow(t *testing.T) {
	db := pgtest.New(t)
	db.Exec(t, givenDDL)
	c := open(t, db.DSN(), system(`Typed: {table: typed, id: id}`))
	recs := make([]map[string]any, 500)
	for i := range recs {
		recs[i] = typedRecord(i)
	}
	recs[123]["fixed"] = "too long"
	recs[321]["id"] = recs[320]["id"]
	res, err := c.Create(context.Background(), "Typed", recs)
	if err != nil {
		t.Fatal(err)
	}
	wantErr := map[int]string{
		123: "ERROR: value too long for type character(4) (SQLSTATE 22001)",
		321: `ERROR: duplicate key value violates unique constraint "typed_pkey" (SQLSTATE 23505)`,
	}
	for i, r := range res {
		if got := fmt.Sprint(r.Err); wantErr[i] != "" && got != wantErr[i] {
			t.Errorf("record %d: %s, want %s", i, got, wantErr[i])
		}
		if wantErr[i] == "" && (r.Err != nil || r.Record.ID != recs[i]["id"] || r.Record.Data["at_tz"] != "2024-03-01T12:30:00+00:00") {
			t.Fatalf("record %d: %v (%v)", i, r.Record, r.Err)
		}
	}
	if n, err := c.(connector.Counter).Count(context.Background(), "Typed"); err != nil || n != 498 {
		t.Errorf("%d rows stored (%v), want 498", n, err)
	}
}

// decimal is a numeric's record value (a float64 here).
func decimal(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

// matchStored orders the rows RETURNING gave as the rows sent, by their ids, in whatever order
// they came; an id stored otherwise than sent is no match.
func TestMatchStored(t *testing.T) {
	s := func(v ...string) []*string {
		out := make([]*string, len(v))
		for i := range v {
			out[i] = &v[i]
		}
		return out
	}
	got := [][]*string{s("x", "b"), s("y", "c"), s("z", "a")}
	rows, ok := matchStored(got, []string{"a", "b", "c"}, 1)
	if !ok || *rows[0][0] != "z" || *rows[1][0] != "x" || *rows[2][0] != "y" {
		t.Errorf("matched %v %v", rows, ok)
	}
	if _, ok := matchStored(got, []string{"a", "b", "C"}, 1); ok {
		t.Error("an id stored as c matched the id C sent")
	}
	if rows, ok := matchStored(got, []string{"b", "c", "a"}, 1); !ok || &rows[0][0] != &got[0][0] {
		t.Errorf("rows in order: %v %v", rows, ok)
	}
}

// A timestamp's to_json text decodes to the string it quotes, an escaped one too.
func TestDecodeTimestampText(t *testing.T) {
	d := &dialect{}
	for text, want := range map[string]string{
		`"2024-03-01T12:30:00.5"`:     "2024-03-01T12:30:00.5",
		`"2024-03-01T12:30:00+00:00"`: "2024-03-01T12:30:00+00:00",
		`"infinity"`:                  "infinity",
		`"x\u0041\"y"`:                `xA"y`,
	} {
		for _, k := range []sqlconn.Kind{sqlconn.DateTime, sqlconn.Instant} {
			got, err := d.Decode(&sqlconn.Column{Kind: k}, text)
			if err != nil || got != want {
				t.Errorf("Decode(%s) = %#v, %v; want %q", text, got, err, want)
			}
		}
	}
	if _, err := d.Decode(&sqlconn.Column{Kind: sqlconn.Instant}, `"unterminated\"`); err == nil {
		t.Error("an unterminated string decoded")
	}
}

// A transaction's BEGIN goes with its first statement, whatever that is (a query, a statement,
// a pipeline), and the transaction is what it was: read-only and repeatable read for reads,
// rolled back when not committed; one that sent nothing commits, and once ended it is closed.
func TestTransactionBeginsWithItsFirstStatement(t *testing.T) {
	server := pgtest.New(t)
	server.Exec(t, `CREATE TABLE renamed (id text PRIMARY KEY, name text, qty integer)`,
		`CREATE FUNCTION rename() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.id := 'R-' || NEW.name; RETURN NEW; END $$`,
		`CREATE TRIGGER rename BEFORE INSERT ON renamed FOR EACH ROW EXECUTE FUNCTION rename()`)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, server.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	d := &db{pool}
	dl := &dialect{}
	read, err := d.Begin(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	got, err := sqlconn.Texts(ctx, read, `SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only')`)
	if err != nil || fmt.Sprint(got) != "[[repeatable read on]]" {
		t.Errorf("a read's transaction: %v %v", got, err)
	}
	if _, err := read.Exec(ctx, `INSERT INTO renamed (id, name) VALUES ('x', 'x')`); err == nil || !strings.Contains(err.Error(), "(SQLSTATE 25006)") {
		t.Errorf("a write in a read's transaction: %v", err)
	}
	read.Rollback(ctx)
	write, err := d.Begin(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := write.Exec(ctx, `INSERT INTO renamed (id, name) VALUES ('x', 'x')`); n != 1 || err != nil {
		t.Fatalf("insert: %d %v", n, err)
	}
	if err := write.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := write.Commit(ctx); err != pgx.ErrTxClosed {
		t.Errorf("a commit after the rollback: %v", err)
	}
	empty, err := d.Begin(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := empty.Commit(ctx); err != nil {
		t.Errorf("a commit of nothing: %v", err)
	}
	if err := empty.Rollback(ctx); err != pgx.ErrTxClosed {
		t.Errorf("a rollback after the commit: %v", err)
	}
	failed, err := d.Begin(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := failed.Exec(ctx, `INSERT INTO renamed (id, name, qty) VALUES ('x', 'x', $1::text::integer)`, "many"); err == nil || !dl.RecordError(err) {
		t.Fatalf("a bad insert: %v", err)
	}
	if err := failed.Commit(ctx); err != pgx.ErrTxCommitRollback {
		t.Errorf("the commit of a failed transaction: %v", err)
	}

	// The table's inserts are a pipeline (a BEFORE trigger rewrites ids); the second batch's,
	// its insert plan known, is the transaction's first statement.
	tr := &tracer{}
	c := openTraced(t, server.DSN(), system(`Renamed: {table: renamed, id: id}`), tr)
	for batch := range 2 {
		recs := items(3, nil)
		for i := range recs {
			recs[i]["name"] = fmt.Sprintf("b%d-%d", batch, i)
		}
		tr.reset()
		res, err := c.Create(ctx, "Renamed", recs)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if want := fmt.Sprintf("R-b%d-%d", batch, i); r.Err != nil || r.Record.ID != want || r.Record.Data["qty"] != int64(i) {
				t.Errorf("batch %d record %d: %v (%v), want id %s", batch, i, r.Record, r.Err, want)
			}
		}
		if rt, _ := tr.reset(); batch == 1 && rt != 3 {
			t.Errorf("the second batch took %d round trips, want 3 (begin and the inserts, the read-back, commit)", rt)
		}
	}
	if n, err := c.(connector.Counter).Count(ctx, "Renamed"); err != nil || n != 6 {
		t.Errorf("%d rows (%v), want 6", n, err)
	}
}
