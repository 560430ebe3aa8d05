package sqlite

import (
	"database/sql"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/schema"
)

// predictTables are tables of every column affinity, with literal and other defaults, and
// the tables whose rows cannot be predicted (a trigger that changes the row, a conflict
// clause, STRICT, a view): a Create's records must be what a read of the rows returns,
// whatever the prediction does with them.
const predictTables = `
CREATE TABLE things (
    id       INTEGER PRIMARY KEY,
    i        INTEGER, r REAL, t TEXT, n NUMERIC, b BLOB, untyped, flag BOOLEAN, doc TEXT,
    js       JSON, point POINT, fp "FLOATING POINT", vc VARCHAR(10), dbl DOUBLE PRECISION,
    d_int    INTEGER DEFAULT 7, d_real REAL DEFAULT 2, d_text TEXT DEFAULT 'it''s',
    d_num    NUMERIC DEFAULT '12', d_neg INTEGER DEFAULT -3, d_float NUMERIC DEFAULT 1.0,
    d_frac   TEXT DEFAULT 1.5, d_blob BLOB DEFAULT x'00ff', d_null TEXT, d_true BOOLEAN DEFAULT TRUE,
    d_zeros  INTEGER DEFAULT '0042', d_big INTEGER DEFAULT 9223372036854775807, d_exp REAL DEFAULT 1e3,
    d_now    TEXT DEFAULT CURRENT_TIMESTAMP, d_expr TEXT DEFAULT (lower('ABC')), d_paren INTEGER DEFAULT (5),
    g        INTEGER GENERATED ALWAYS AS (i * 2) VIRTUAL
);
CREATE TABLE triggered (id INTEGER PRIMARY KEY, v TEXT, w INTEGER);
CREATE TRIGGER "triggered: after insert" AFTER INSERT ON triggered BEGIN
    UPDATE triggered SET v = upper(new.v), w = 99 WHERE id = new.id;
END;
CREATE TABLE deleted (id INTEGER PRIMARY KEY, v TEXT);
CREATE TRIGGER deleted_count AFTER DELETE ON deleted BEGIN SELECT 1; END;
CREATE TABLE replacing (id INTEGER PRIMARY KEY, v TEXT NOT NULL ON CONFLICT REPLACE DEFAULT 'replaced');
CREATE TABLE strict_rows (id INTEGER PRIMARY KEY, v ANY, n INTEGER) STRICT;
CREATE TABLE texts (id TEXT PRIMARY KEY, v NUMERIC, stamp TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));
CREATE TABLE keyed (k VARCHAR(20) PRIMARY KEY, v REAL, stamp TEXT DEFAULT CURRENT_TIMESTAMP) WITHOUT ROWID;
CREATE TABLE numbered (code INTEGER PRIMARY KEY DESC, v TEXT, stamp TEXT DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE "rowid names" (rowid TEXT, _rowid_ TEXT, oid TEXT, v TEXT DEFAULT (upper('x')), id TEXT PRIMARY KEY);
`

const predictYAML = `system: p
name: P
connector: sqlite
path: ${DB}
entities:
  Thing: {table: things, id: id}
  Triggered: {table: triggered, id: id}
  Deleted: {table: deleted, id: id}
  Replacing: {table: replacing, id: id}
  Strict: {table: strict_rows, id: id}
  Text: {table: texts, id: id}
  Keyed: {table: keyed, id: k}
  Numbered: {table: numbered, id: code}
  Names: {table: rowid names, id: id}
`

func openPredict(t *testing.T) (*conn, string) {
	t.Helper()
	sys, schemas, path := describedSystem(t, predictTables, predictYAML)
	schemas["Thing"].Root.Properties["doc"] = &schema.Property{Types: []string{schema.Object, schema.Null}, Open: true}
	schemas["Thing"].Root.Properties["js"] = &schema.Property{Types: []string{schema.Object, schema.Array, schema.Number, schema.Null}}
	return mustOpen(t, sys, schemas), path
}

// describedSystem makes a database of the statements ddl in a new file, and returns the system
// of yamlText on it (its ${DB} the file), its entities as Describe describes them, and the file.
func describedSystem(t *testing.T, ddl, yamlText string) (*config.System, map[string]*schema.Entity, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(ddl)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	sys := loadSystem(t, yamlText, map[string]string{"DB": path})
	schemas := map[string]*schema.Entity{}
	for _, e := range sys.Entities {
		s, err := Driver{}.Describe(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		schemas[e.Name.Value] = s
	}
	return sys, schemas, path
}

// predictValues are values of every kind a record holds, given to every column in turn.
var predictValues = []any{
	int64(5), int64(-1), int64(0), int64(math.MaxInt64), int64(1 << 53), int64(1<<53 + 1),
	1.5, 2.0, math.Copysign(0, -1), 0.1, 1e20, 9.223372036854775807e18, -9.223372036854775808e18, 123456789.125, 1e-300,
	"42", "042", " 42 ", "4.5", "1e3", "-7", "-0", "+7", "abc", "", "12.0", "0x10", ".5", "5.",
	"9223372036854775807", "9223372036854775808", "123456789012345678", "-123456789012345678", "1234567890123456789",
	"\t3", "Inf", "NaN", "nº 7", "2024-11-01T00:00:00Z", "19.90 EUR", "1e", "1e5x", " .5e-3 ", "5\x00", "7\x00x", "x\x007",
	"\v8\f", "1.5e+3", "+", "-.", "--1", "1..2",
	true, false, nil,
	map[string]any{"a": int64(1), "b": []any{1.5, "x", nil}}, []any{int64(1), int64(2)},
}

// TestCreatePredictsRowsAsRead creates rows of every affinity given every kind of value, with
// columns left out to their defaults, into tables whose rows the connector predicts and into
// tables whose rows it must read back, and checks that each Result's record is exactly what a
// Get and a Scan of the row return.
func TestCreatePredictsRowsAsRead(t *testing.T) {
	c, _ := openPredict(t)
	cases := map[string][]string{
		"Thing": {"i", "r", "t", "n", "b", "untyped", "flag", "doc", "js", "point", "fp", "vc", "dbl",
			"d_int", "d_real", "d_text", "d_num", "d_neg", "d_float", "d_frac", "d_blob", "d_null", "d_true", "d_zeros", "d_big", "d_exp",
			"d_now", "d_expr", "d_paren"},
		"Triggered": {"v", "w"},
		"Deleted":   {"v"},
		"Replacing": {"v"},
		"Strict":    {"v", "n"},
		"Text":      {"v", "stamp"},
		"Keyed":     {"v", "stamp"},
		"Numbered":  {"v", "stamp"},
		"Names":     {"rowid", "_rowid_", "oid", "v"},
	}
	for entity, cols := range cases {
		t.Run(entity, func(t *testing.T) {
			var data []map[string]any
			for k := range predictValues {
				d := map[string]any{}
				for j, col := range cols {
					if (k+j)%5 == 4 {
						continue // left out: its default
					}
					v := predictValues[(k+j)%len(predictValues)]
					if col == "b" || col == "d_blob" {
						v = []any{"AAE=", "", nil, int64(3), "////"}[(k+j)%5]
					}
					d[col] = v
				}
				switch entity {
				case "Keyed":
					d["k"] = fmt.Sprintf("key %d", k)
				case "Numbered":
					d["code"] = int64(1000 - k)
				case "Text":
					if k%2 == 0 {
						d["id"] = fmt.Sprintf("t%d", k)
					} else if k%3 == 0 {
						d["id"] = int64(k) // to a TEXT id: RETURNING
					}
				}
				data = append(data, d)
			}
			data = append(data, map[string]any{}) // every column left out
			if entity == "Keyed" {
				data[len(data)-1]["k"] = "empty"
			}
			// One record per batch, so that no other record's column read back hides a
			// wrong prediction, then all in one batch.
			var res []connector.Result
			// Create may keep the maps it is given (as the records it returns): each call is
			// given copies.
			copies := func(data []map[string]any) []map[string]any {
				out := make([]map[string]any, len(data))
				for i, d := range data {
					out[i] = maps.Clone(d)
				}
				return out
			}
			for i := range data {
				r, err := c.Create(ctx, entity, copies(data[i:i+1]))
				if err != nil {
					t.Fatal(err)
				}
				res = append(res, r...)
			}
			for i := range data {
				if id, ok := data[i]["k"].(string); ok {
					data[i]["k"] = id + " again"
				}
				if id, ok := data[i]["code"].(int64); ok {
					data[i]["code"] = id + 1000
				}
				if id, ok := data[i]["id"].(string); ok {
					data[i]["id"] = id + " again"
				} else if id, ok := data[i]["id"].(int64); ok {
					data[i]["id"] = id + 1000
				}
			}
			all, err := c.Create(ctx, entity, copies(data))
			if err != nil {
				t.Fatal(err)
			}
			res = append(res, all...)
			data = append(data, data...)
			var created []string
			for i, r := range res {
				if r.Err != nil {
					t.Logf("record %d %v: %v", i, data[i], r.Err)
					continue
				}
				created = append(created, r.Record.ID)
			}
			if len(created) < len(data)/2 {
				t.Fatalf("only %d of %d records created", len(created), len(data))
			}
			got, err := c.Get(ctx, entity, created)
			if err != nil {
				t.Fatal(err)
			}
			scanned, _ := scanAll(t, c, entity, "")
			byID := map[string]int{}
			for i, r := range scanned {
				byID[r.ID] = i
			}
			for i, r := range res {
				if r.Err != nil {
					continue
				}
				if g, ok := got[r.Record.ID]; !ok || !reflect.DeepEqual(g, r.Record) {
					t.Errorf("record %d %v:\ncreated %#v\nget     %#v", i, data[i], r.Record, g)
				}
				if s, ok := byID[r.Record.ID]; !ok || !reflect.DeepEqual(scanned[s], r.Record) {
					t.Errorf("record %d: created %#v, scanned %#v", i, r.Record, scanned[s])
				}
				for col, v := range r.Record.Data {
					if f, ok := v.(float64); ok && f == 0 && math.Signbit(f) {
						if gf, _ := got[r.Record.ID].Data[col].(float64); !math.Signbit(gf) {
							t.Errorf("record %d, %s: created -0, read 0", i, col)
						}
					}
				}
			}
		})
	}
}

// TestRowShape checks which tables' rows are predicted and which of their columns are read
// back when left out: without it, a prediction that always fell back to reading the rows
// back would pass TestCreatePredictsRowsAsRead.
func TestRowShape(t *testing.T) {
	c, _ := openPredict(t)
	for _, tc := range []struct {
		entity  string
		predict bool
		asked   []string
		rowid   string
	}{
		{"Thing", true, []string{"id", "d_frac", "d_zeros", "d_now", "d_expr"}, "rowid"},
		{"Triggered", false, nil, ""},
		{"Deleted", true, []string{"id"}, "rowid"},
		{"Replacing", false, nil, ""},
		{"Strict", false, nil, ""},
		{"Text", true, []string{"stamp"}, "rowid"},
		{"Keyed", true, []string{"stamp"}, ""},
		{"Numbered", true, []string{"stamp"}, "rowid"},
		{"Names", true, []string{"v"}, ""},
	} {
		e, err := c.entity(ctx, tc.entity)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := c.w.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := e.shape(ctx, tx)
		tx.Rollback()
		if err != nil {
			t.Fatal(err)
		}
		var asked []string
		for _, i := range s.asked {
			asked = append(asked, e.cols[i].name)
		}
		if s.predict != tc.predict || !slices.Equal(asked, tc.asked) || s.rowid != tc.rowid {
			t.Errorf("%s: predict %v, asked %q, rowid %q; want %v, %q, %q", tc.entity, s.predict, asked, s.rowid, tc.predict, tc.asked, tc.rowid)
		}
	}
}

// TestCreateSeesNewTrigger adds a trigger that changes inserted rows after a first Create: the
// next Create's records are the rows as the trigger left them.
func TestCreateSeesNewTrigger(t *testing.T) {
	c, path := openPredict(t)
	first := written(t)(c.Create(ctx, "Deleted", []map[string]any{{"v": "a"}}))
	if first[0].Data["v"] != "a" {
		t.Fatalf("first create: %v", first[0].Data)
	}
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`CREATE TRIGGER deleted_upper AFTER INSERT ON deleted BEGIN UPDATE deleted SET v = upper(new.v) WHERE id = new.id; END`)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	second := written(t)(c.Create(ctx, "Deleted", []map[string]any{{"v": "b"}}))
	if second[0].Data["v"] != "B" {
		t.Errorf("after the trigger was added, created %v, want v B as stored", second[0].Data)
	}
}

func TestAffinityOf(t *testing.T) {
	for declared, want := range map[string]affinity{
		"": affBlob, "INTEGER": affInteger, "int": affInteger, "BIGINT": affInteger, "POINT": affInteger,
		"FLOATING POINT": affInteger, "TEXT": affText, "VARCHAR(10)": affText, "CLOB": affText, "CHARINT": affInteger,
		"CHARBLOB": affText, "BLOB": affBlob, "REAL": affReal, "DOUBLE PRECISION": affReal, "FLOAT": affReal,
		"NUMERIC(10,2)": affNumeric, "BOOLEAN": affNumeric, "DATETIME": affNumeric, "JSON": affNumeric, "STRING": affNumeric,
		"REALBLOB": affBlob,
	} {
		if got := affinityOf(declared); got != want {
			t.Errorf("affinityOf(%q) = %d, want %d", declared, got, want)
		}
	}
}

func TestTriggerEvent(t *testing.T) {
	for def, want := range map[string]string{
		`CREATE TRIGGER t AFTER DELETE ON x BEGIN SELECT 1; END`:                                     "DELETE",
		`create temp trigger if not exists main."a delete b" before insert on x begin select 1; end`: "INSERT",
		`CREATE TRIGGER [on delete] INSTEAD OF UPDATE OF v ON x BEGIN SELECT 1; END`:                 "UPDATE",
		`CREATE TRIGGER /* delete */ t -- delete
		 INSERT ON x BEGIN SELECT 1; END`: "INSERT",
		`CREATE TRIGGER "dataflow_count_deleted_items" AFTER DELETE ON "items" BEGIN SELECT 1; END`: "DELETE",
		`CREATE TRIGGER t AFTER`:    "",
		`CREATE VIEW v AS SELECT 1`: "",
	} {
		if got := triggerEvent(def); got != want {
			t.Errorf("triggerEvent(%q) = %q, want %q", def, got, want)
		}
	}
}

func TestMayBeNumber(t *testing.T) {
	for s, want := range map[string]bool{
		"42": true, " 42 ": true, "-4.5": true, "+.5": true, "5.": true, "1e3": true, "1E-3": true, "\t\v\f\r\n7\n": true,
		"7\x00x": true, "": false, " ": false, ".": false, "+": false, "1e": false, "1e+": false, "0x10": false,
		"2024-11-01": false, "19.90 EUR": false, "Inf": false, "NaN": false, "x\x007": false, "1 2": false,
	} {
		if got := mayBeNumber(s); got != want {
			t.Errorf("mayBeNumber(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestCreateReadsAskedFarRowids creates rows whose rowids are far apart (given ids at both
// ends of the integers): the values read back (a CURRENT_TIMESTAMP default) are read by rowid,
// not over the range between them, and are the rows' own.
func TestCreateReadsAskedFarRowids(t *testing.T) {
	c, _ := openPredict(t)
	data := []map[string]any{{"id": int64(math.MinInt64 + 1), "t": "a"}, {"id": int64(math.MaxInt64), "t": "b"}, {"id": int64(5), "t": "c"}, {"t": "d"}}
	recs := written(t)(c.Create(ctx, "Thing", data))
	for i, r := range recs {
		if r.Data["d_now"] == nil || r.Data["t"] != data[i]["t"] {
			t.Errorf("record %d: %v", i, r.Data)
		}
		if g := get(t, c, "Thing", r.ID); !reflect.DeepEqual(g, r) {
			t.Errorf("record %d: created %v, read %v", i, r, g)
		}
	}
}
