package postgres

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/internal/pgtest"
)

const typesDDL = `CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE "all types" (
	id bigserial PRIMARY KEY,
	big bigint, small smallint,
	price numeric(10,2), wide numeric, ratio double precision,
	active boolean, day date, at timestamp, at_tz timestamptz,
	uid uuid, doc jsonb, plain json, tags text[], nums integer[],
	raw bytea, feeling mood, code varchar(3), note text
)`

// Every type reads as the record value the README's table gives, exactly, NULL as nil, and
// the same values written by Create read back the same.
func TestTypesRoundTrip(t *testing.T) {
	db := pgtest.New(t)
	db.Exec(t, typesDDL, `INSERT INTO "all types" (big, small, price, wide, ratio, active, day, at, at_tz, uid, doc, plain, tags, nums, raw, feeling, code, note)
	VALUES (9007199254740993, -7, 0.99, 12345678901234567890.123456789, 0.1, true, '2024-03-01', '2024-03-01 12:30:00.5', '2024-03-01 13:30:00+01',
		'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"n": 1, "f": 19.9, "deep": {"x": [1, "two"]}, "big": 12345678901234567890}', '[1,2]',
		'{"a","b c","q\"uote"}', '{1,NULL,3}', '\x00ff10', 'happy', 'abc', NULL)`)
	c := open(t, db.DSN(), system(`Row: {table: all types, id: id}`))
	recs := scanAll(t, c, "Row", "")
	if len(recs) != 1 {
		t.Fatalf("read %d records", len(recs))
	}
	want := map[string]any{
		"id": int64(1), "big": int64(9007199254740993), "small": int64(-7),
		"price": 0.99, "wide": json.Number("12345678901234567890.123456789"), "ratio": 0.1,
		"active": true, "day": "2024-03-01", "at": "2024-03-01T12:30:00.5", "at_tz": "2024-03-01T12:30:00+00:00",
		"uid":   "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		"doc":   map[string]any{"n": int64(1), "f": 19.9, "deep": map[string]any{"x": []any{int64(1), "two"}}, "big": json.Number("12345678901234567890")},
		"plain": []any{int64(1), int64(2)},
		"tags":  []any{"a", "b c", `q"uote`}, "nums": []any{int64(1), nil, int64(3)},
		"raw": "AP8Q", "feeling": "happy", "code": "abc", "note": nil,
	}
	if got := recs[0].Data; !reflect.DeepEqual(got, want) {
		for k := range want {
			if !reflect.DeepEqual(got[k], want[k]) {
				t.Errorf("%s: got %#v, want %#v", k, got[k], want[k])
			}
		}
	}
	data := recs[0].Data
	delete(data, "id")
	res, err := c.Create(context.Background(), "Row", []map[string]any{data})
	if err != nil || res[0].Err != nil {
		t.Fatalf("create: %v %v", err, res)
	}
	back := res[0].Record.Data
	want["id"] = int64(2)
	if !reflect.DeepEqual(back, want) {
		for k := range want {
			if !reflect.DeepEqual(back[k], want[k]) {
				t.Errorf("read back %s: got %#v, want %#v", k, back[k], want[k])
			}
		}
	}
}

// A value the column cannot hold fails its record with PostgreSQL's message; the other records
// of the batch are written.
func TestValueTheColumnCannotHold(t *testing.T) {
	db := pgtest.New(t)
	db.Exec(t, typesDDL)
	c := open(t, db.DSN(), system(`Row: {table: all types, id: id}`))
	res, err := c.Create(context.Background(), "Row", []map[string]any{
		{"code": "ok"},
		{"code": "much too long"},
		{"small": int64(70000)},
		{"feeling": "angry"},
		{"day": "not a date"},
		{"code": "yes"},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantErr := []string{
		"",
		"ERROR: value too long for type character varying(3) (SQLSTATE 22001)",
		`ERROR: value "70000" is out of range for type smallint (SQLSTATE 22003)`,
		`ERROR: invalid input value for enum mood: "angry" (SQLSTATE 22P02)`,
		`ERROR: invalid input syntax for type date: "not a date" (SQLSTATE 22007)`,
		"",
	}
	for i, w := range wantErr {
		got := ""
		if res[i].Err != nil {
			got = res[i].Err.Error()
		}
		if got != w {
			t.Errorf("record %d: error %q, want %q", i, got, w)
		}
	}
	if res[0].Record.Data["code"] != "ok" || res[5].Record.Data["code"] != "yes" {
		t.Errorf("the good records were not read back: %v / %v", res[0].Record, res[5].Record)
	}
	if n := len(scanAll(t, c, "Row", "")); n != 2 {
		t.Errorf("%d rows stored, want the 2 good ones", n)
	}
	// The same in an update: the failing patch fails alone, the others are written.
	good, bad := res[0].Record.ID, res[5].Record.ID
	up, err := c.Update(context.Background(), "Row", []connector.Record{
		{ID: good, Data: map[string]any{"code": "new"}},
		{ID: bad, Data: map[string]any{"code": "far too long"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if up[0].Err != nil || up[0].Record.Data["code"] != "new" {
		t.Errorf("the good patch: %v %v", up[0].Err, up[0].Record.Data["code"])
	}
	if up[1].Err == nil || up[1].Err.Error() != "ERROR: value too long for type character varying(3) (SQLSTATE 22001)" {
		t.Errorf("the bad patch: %v", up[1].Err)
	}
	got, err := c.Get(context.Background(), "Row", []string{bad})
	if err != nil || got[bad].Data["code"] != "yes" {
		t.Errorf("the bad record changed: %v %v", got, err)
	}
}
