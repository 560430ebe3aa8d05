package mysql

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/schema"
	"github.com/dataflow-sync/dataflow/internal/mysqltest"
)

const typesDDL = "CREATE TABLE `all types` (" +
	"id BIGINT AUTO_INCREMENT PRIMARY KEY, big BIGINT UNSIGNED, small SMALLINT, price DECIMAL(10,2), wide DECIMAL(40,20), " +
	"ratio DOUBLE, active TINYINT(1), flags TINYINT, day DATE, at DATETIME(6), at_tz TIMESTAMP(6) NULL, doc JSON, " +
	"raw VARBINARY(100), feeling ENUM('sad','ok','happy'), code VARCHAR(3), note TEXT)"

// Every type reads as the README's table says, exactly; NULL as nil; Create reads back the same.
func TestTypesRoundTrip(t *testing.T) { mysqltest.Each(t, testTypesRoundTrip) }

func testTypesRoundTrip(t *testing.T, f mysqltest.Flavour) {
	db := mysqltest.NewOf(t, f)
	db.Exec(t, typesDDL, "SET time_zone = '+00:00'", "INSERT INTO `all types` (big, small, price, wide, ratio, active, flags, day, at, at_tz, doc, raw, feeling, code, note) "+
		"VALUES (18446744073709551615, -7, 0.99, 12345678901234567890.12345678901234567890, 0.1, 1, 5, '2024-03-01', '2024-03-01 12:30:00.5', '2024-03-01 12:30:00', "+
		`'{"n": 1, "f": 19.9, "big": 12345678901234567890}', X'00ff10', 'happy', 'abc', NULL)`)
	c := open(t, db.DSN(), system("Row: {table: all types, id: id}"))
	recs := scanAll(t, c, "Row", "")
	if len(recs) != 1 {
		t.Fatalf("read %d records", len(recs))
	}
	want := map[string]any{
		"id": int64(1), "big": json.Number("18446744073709551615"), "small": int64(-7),
		"price": 0.99, "wide": json.Number("12345678901234567890.12345678901234567890"), "ratio": 0.1,
		"active": true, "flags": int64(5), "day": "2024-03-01", "at": "2024-03-01T12:30:00.500000", "at_tz": "2024-03-01T12:30:00.000000Z",
		"doc": map[string]any{"n": int64(1), "f": 19.9, "big": json.Number("12345678901234567890")},
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
	want["id"] = int64(2)
	if back := res[0].Record.Data; !reflect.DeepEqual(back, want) {
		for k := range want {
			if !reflect.DeepEqual(back[k], want[k]) {
				t.Errorf("read back %s: got %#v, want %#v", k, back[k], want[k])
			}
		}
	}
	// A time with a zone is written as its instant in UTC.
	res, err = c.Create(context.Background(), "Row", []map[string]any{{"at_tz": "2024-03-01T13:30:00+01:00"}})
	if err != nil || res[0].Err != nil || res[0].Record.Data["at_tz"] != "2024-03-01T12:30:00.000000Z" {
		t.Fatalf("a time with a zone: %v %v", err, res)
	}
}

// A value the column cannot hold fails its record with the server's message.
func TestValueTheColumnCannotHold(t *testing.T) { mysqltest.Each(t, testValueTheColumnCannotHold) }

func testValueTheColumnCannotHold(t *testing.T, f mysqltest.Flavour) {
	db := mysqltest.NewOf(t, f)
	db.Exec(t, typesDDL)
	c := open(t, db.DSN(), system("Row: {table: all types, id: id}"))
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
	badDate := "Error 1292 (22007): Incorrect date value: 'not a date' for column `" + db.Name + "`.`all types`.`day` at row 1"
	if f == mysqltest.OracleMySQL { // names the column alone
		badDate = "Error 1292 (22007): Incorrect date value: 'not a date' for column 'day' at row 1"
	}
	wantErr := []string{
		"",
		"Error 1406 (22001): Data too long for column 'code' at row 1",
		"Error 1264 (22003): Out of range value for column 'small' at row 1",
		"Error 1265 (01000): Data truncated for column 'feeling' at row 1",
		badDate,
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
	if n := len(scanAll(t, c, "Row", "")); n != 2 {
		t.Errorf("%d rows stored, want the 2 good ones", n)
	}
}

// An entity without a schema file is described from information_schema.
func TestDescribe(t *testing.T) { mysqltest.Each(t, testDescribe) }

func testDescribe(t *testing.T, f mysqltest.Flavour) {
	db := mysqltest.NewOf(t, f)
	db.Exec(t, typesDDL)
	s, err := Driver{}.Describe(context.Background(), loadSystem(t, system("Row: {table: all types, id: id}"), map[string]string{"DSN": db.DSN()}).Entity("Row"))
	if err != nil {
		t.Fatal(err)
	}
	type desc struct {
		Types     []string
		Format    string
		Enum      []string
		MaxLength int
	}
	want := map[string]desc{
		"id":      {Types: []string{"integer"}},
		"big":     {Types: []string{"integer", "null"}},
		"price":   {Types: []string{"number", "null"}},
		"active":  {Types: []string{"boolean", "null"}},
		"flags":   {Types: []string{"integer", "null"}},
		"day":     {Types: []string{"string", "null"}, Format: "date"},
		"at_tz":   {Types: []string{"string", "null"}, Format: "date-time"},
		"doc":     {Types: []string{"object", "null"}},
		"raw":     {Types: []string{"string", "null"}, Format: "byte"},
		"feeling": {Types: []string{"string", "null"}, Enum: []string{"sad", "ok", "happy"}},
		"code":    {Types: []string{"string", "null"}, MaxLength: 3},
	}
	for name, w := range want {
		p := s.Root.Properties[name]
		if p == nil {
			t.Errorf("no property %s", name)
			continue
		}
		if got := (desc{p.Types, p.Format, p.Enum, p.MaxLength}); !reflect.DeepEqual(got, w) {
			t.Errorf("%s: %+v, want %+v", name, got, w)
		}
	}
	// The description is the type as declared, the same from MariaDB (which writes int(11)
	// and LONGTEXT for JSON in information_schema) and Oracle MySQL (int, json).
	for name, w := range map[string]string{"id": "bigint", "big": "bigint unsigned", "small": "smallint", "active": "tinyint(1)",
		"flags": "tinyint", "doc": "json", "price": "decimal(10,2)", "code": "varchar(3)"} {
		if p := s.Root.Properties[name]; p != nil && p.Description != "column "+name+" "+w {
			t.Errorf("%s: description %q, want %q", name, p.Description, "column "+name+" "+w)
		}
	}
	_ = schema.String
}

// With track_deletes a trigger counts deletions, whoever deletes; installing counts as one.
func TestTrackDeletes(t *testing.T) { mysqltest.Each(t, testTrackDeletes) }

func testTrackDeletes(t *testing.T, f mysqltest.Flavour) {
	db := mysqltest.NewOf(t, f)
	db.Exec(t, "CREATE TABLE products (id INT AUTO_INCREMENT PRIMARY KEY, name TEXT)", "INSERT INTO products (name) VALUES ('a'), ('b'), ('c')")
	c := open(t, db.DSN(), system("Product: {table: products, id: id}")+"track_deletes: true\n")
	dc := c.Capabilities().DeleteCounter
	ctx := context.Background()
	n, ok, err := dc.Deletions(ctx, "Product")
	if err != nil || !ok || n != 1 {
		t.Fatalf("after install: %d %v %v", n, ok, err)
	}
	db.Exec(t, "DELETE FROM products WHERE name IN ('a', 'b')")
	if errs, err := c.Delete(ctx, "Product", []string{"3"}); err != nil || errs[0] != nil {
		t.Fatal(err, errs)
	}
	n, ok, err = dc.Deletions(ctx, "Product")
	if err != nil || !ok || n != 4 {
		t.Fatalf("after 3 deletions: %d %v %v", n, ok, err)
	}
	c2 := open(t, db.DSN(), system("Product: {table: products, id: id}"))
	if _, ok, _ := c2.Capabilities().DeleteCounter.Deletions(ctx, "Product"); ok {
		t.Fatal("counted without track_deletes")
	}
}
