package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/connector/sqlconn"
	"github.com/dataflow-sync/dataflow/internal/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// tracer counts what a connection sends: round trips (a statement, or a pipeline of them) and
// statements, and keeps the statements' text.
type tracer struct {
	mu                     sync.Mutex
	roundTrips, statements int
	sql                    []string
}

func (tr *tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.roundTrips++
	tr.statements++
	tr.sql = append(tr.sql, d.SQL)
	return ctx
}
func (tr *tracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (tr *tracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.roundTrips++
	return ctx
}
func (tr *tracer) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.statements++
	tr.sql = append(tr.sql, d.SQL)
}
func (tr *tracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// reset starts counting again and returns the counts so far.
func (tr *tracer) reset() (roundTrips, statements int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	roundTrips, statements = tr.roundTrips, tr.statements
	tr.roundTrips, tr.statements, tr.sql = 0, 0, nil
	return roundTrips, statements
}

// openTraced opens a system as Driver.Open does, on a pool whose connections report to tr.
func openTraced(t *testing.T, dsn, src string, tr *tracer) connector.Conn {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	cfg.ConnConfig.Tracer = tr
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := sqlconn.New(&dialect{}, &db{pool}, loadSystem(t, src, map[string]string{"DSN": dsn}), sqlconn.Options{})
	t.Cleanup(func() { c.Close() })
	return c
}

func items(n int, bad map[int]map[string]any) []map[string]any {
	recs := make([]map[string]any, n)
	for i := range recs {
		recs[i] = map[string]any{"name": fmt.Sprintf("item %d", i), "qty": int64(i)}
		for k, v := range bad[i] {
			recs[i][k] = v
		}
	}
	return recs
}

// checkCreated checks that each record created is the one given at its index, as stored.
func checkCreated(t *testing.T, c connector.Conn, recs []map[string]any, res []connector.Result, failed map[int]bool) {
	t.Helper()
	var ids []string
	for i, r := range res {
		if failed[i] {
			continue
		}
		if r.Err != nil {
			t.Fatalf("record %d: %v", i, r.Err)
		}
		if r.Record.Data["name"] != recs[i]["name"] {
			t.Fatalf("record %d read back as %v, want name %v", i, r.Record.Data, recs[i]["name"])
		}
		ids = append(ids, r.Record.ID)
	}
	got, err := c.Get(context.Background(), "Item", ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if !failed[i] && got[r.Record.ID].Data["name"] != recs[i]["name"] {
			t.Fatalf("record %d: id %s holds %v, want name %v", i, r.Record.ID, got[r.Record.ID].Data, recs[i]["name"])
		}
	}
	if n, err := c.(connector.Counter).Count(context.Background(), "Item"); err != nil || n != len(ids) {
		t.Fatalf("%d rows stored (%v), want %d", n, err, len(ids))
	}
}

// A batch of creates is one multi-row INSERT per 2,000 records, returning the rows as stored, whether the ids come from a
// serial, an identity GENERATED ALWAYS, or the connector (a text id), each record given the id
// of its own row.
func TestCreateIsMultiRow(t *testing.T) {
	for name, ddl := range map[string]string{
		"serial":          `CREATE TABLE items (id serial PRIMARY KEY, name text, qty integer)`,
		"identity always": `CREATE TABLE items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text, qty integer)`,
		"text id":         `CREATE TABLE items (id text PRIMARY KEY, name text, qty integer)`,
	} {
		t.Run(name, func(t *testing.T) {
			db := pgtest.New(t)
			db.Exec(t, ddl)
			tr := &tracer{}
			c := openTraced(t, db.DSN(), system(`Item: {table: items, id: id}`), tr)
			recs := items(1000, nil)
			tr.reset()
			res, err := c.Create(context.Background(), "Item", recs)
			if err != nil {
				t.Fatal(err)
			}
			// begin, the table's columns and insert plan, one insert that returns the rows as
			// stored (no read-back), commit
			if rt, st := tr.reset(); rt > 5 || st > 5 {
				t.Errorf("1,000 creates took %d round trips, %d statements; want at most 5 of each", rt, st)
			}
			checkCreated(t, c, recs, res, nil)
		})
	}
}

// One record of a batch that its column cannot hold is a dead letter with PostgreSQL's
// message; the others are written, still in bulk (found by halving the failing chunk).
func TestCreateBatchWithOneBadRow(t *testing.T) {
	db := pgtest.New(t)
	db.Exec(t, `CREATE TABLE items (id serial PRIMARY KEY, name text UNIQUE, qty integer)`)
	tr := &tracer{}
	c := openTraced(t, db.DSN(), system(`Item: {table: items, id: id}`), tr)
	recs := items(1000, map[int]map[string]any{617: {"qty": "many"}, 800: {"name": "item 3"}})
	tr.reset()
	res, err := c.Create(context.Background(), "Item", recs)
	if err != nil {
		t.Fatal(err)
	}
	if rt, _ := tr.reset(); rt > 150 {
		t.Errorf("1,000 creates with 2 bad ones took %d round trips, want at most 150", rt)
	}
	if got, want := fmt.Sprint(res[617].Err), `ERROR: invalid input syntax for type integer: "many" (SQLSTATE 22P02)`; got != want {
		t.Errorf("record 617: %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(res[800].Err), `ERROR: duplicate key value violates unique constraint "items_name_key" (SQLSTATE 23505)`; got != want {
		t.Errorf("record 800: %s, want %s", got, want)
	}
	checkCreated(t, c, recs, res, map[int]bool{617: true, 800: true})
}

// What the database assigns on a batched create is read back: column defaults and generated
// columns (RETURNING them), a value an AFTER trigger sets (read back after the insert), and
// an id a BEFORE trigger rewrites (such tables go a row at a time in one pipeline, each id
// RETURNING).
func TestCreateBatchReadsBackWhatTheDatabaseAssigned(t *testing.T) {
	db := pgtest.New(t)
	db.Exec(t, `CREATE TABLE items (id text PRIMARY KEY, name text, qty integer, status text DEFAULT 'new', stamp text)`,
		`CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE items SET stamp = 'after ' || NEW.name WHERE id = NEW.id; RETURN NULL; END $$`,
		`CREATE TRIGGER stamp AFTER INSERT ON items FOR EACH ROW EXECUTE FUNCTION stamp()`,
		`CREATE TABLE renamed (id text PRIMARY KEY, name text, qty integer)`,
		`CREATE FUNCTION rename() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.id := 'R-' || NEW.name; RETURN NEW; END $$`,
		`CREATE TRIGGER rename BEFORE INSERT ON renamed FOR EACH ROW EXECUTE FUNCTION rename()`,
		`CREATE TABLE plain (id serial PRIMARY KEY, name text, qty integer, status text DEFAULT 'new', twice integer GENERATED ALWAYS AS (qty * 2) STORED)`)
	c := open(t, db.DSN(), system(`Item: {table: items, id: id}`, `Renamed: {table: renamed, id: id}`, `Plain: {table: plain, id: id}`))
	res, err := c.Create(context.Background(), "Plain", items(3, nil))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.Record.ID != fmt.Sprint(i+1) || r.Record.Data["status"] != "new" || r.Record.Data["twice"] != int64(2*i) || r.Record.Data["name"] != fmt.Sprintf("item %d", i) {
			t.Errorf("plain record %d read back as %s %v (%v)", i, r.Record.ID, r.Record.Data, r.Err)
		}
	}
	res, err = c.Create(context.Background(), "Item", items(3, nil))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.Record.Data["status"] != "new" || r.Record.Data["stamp"] != fmt.Sprintf("after item %d", i) {
			t.Errorf("record %d read back as %v (%v)", i, r.Record.Data, r.Err)
		}
	}
	res, err = c.Create(context.Background(), "Renamed", items(3, nil))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if want := fmt.Sprintf("R-item %d", i); r.Err != nil || r.Record.ID != want || r.Record.Data["name"] != fmt.Sprintf("item %d", i) {
			t.Errorf("record %d: id %s, %v (%v); want id %s", i, r.Record.ID, r.Record.Data, r.Err, want)
		}
	}
}

// An id the database writes in its own form (a UUID in capitals, a numeric id) is the
// record's id as the column holds it.
func TestCreateBatchIDsAsStored(t *testing.T) {
	db := pgtest.New(t)
	db.Exec(t, `CREATE TABLE items (id uuid PRIMARY KEY, name text, qty integer)`,
		`CREATE TABLE priced (id numeric(10,2) PRIMARY KEY, name text, qty integer)`)
	c := open(t, db.DSN(), system(`Item: {table: items, id: id}`, `Priced: {table: priced, id: id}`))
	res, err := c.Create(context.Background(), "Item", []map[string]any{{"id": "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "name": "x"}, {"id": "b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12", "name": "y"}})
	if err != nil || res[0].Record.ID != "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" || res[1].Record.ID != "b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12" {
		t.Fatalf("uuid ids: %v %v", res, err)
	}
	res, err = c.Create(context.Background(), "Priced", []map[string]any{{"id": 1.5, "name": "x"}, {"id": int64(2), "name": "y"}})
	if err != nil || res[0].Record.ID != "1.5" || res[1].Record.ID != "2" || res[0].Record.Data["name"] != "x" || res[1].Record.Data["name"] != "y" {
		t.Fatalf("numeric ids: %v %v", res, err)
	}
}

// A batch of updates is one pipeline per 500 records; one record whose value its column
// cannot hold is a dead letter with PostgreSQL's message, and the others are updated, still
// in pipelines (the failing chunk halved until the record is found).
func TestUpdateBatchWithOneBadRow(t *testing.T) {
	db := pgtest.New(t)
	db.Exec(t, `CREATE TABLE items (id serial PRIMARY KEY, name text, qty integer)`)
	tr := &tracer{}
	c := openTraced(t, db.DSN(), system(`Item: {table: items, id: id}`), tr)
	created, err := c.Create(context.Background(), "Item", items(1000, nil))
	if err != nil {
		t.Fatal(err)
	}
	patch := func(bad int) []connector.Record {
		recs := make([]connector.Record, len(created))
		for i, r := range created {
			recs[i] = connector.Record{ID: r.Record.ID, Data: map[string]any{"qty": int64(i + 5000)}}
			if i == bad {
				recs[i].Data["qty"] = "lots"
			}
		}
		return recs
	}
	tr.reset()
	if res, err := c.Update(context.Background(), "Item", patch(-1)); err != nil || res[0].Err != nil {
		t.Fatal(err, res[0].Err)
	}
	// begin, the read of the records (2 chunks), 2 pipelines, the read-back (2 chunks), commit
	if rt, _ := tr.reset(); rt > 8 {
		t.Errorf("1,000 updates took %d round trips, want at most 8", rt)
	}
	res, err := c.Update(context.Background(), "Item", patch(433))
	if err != nil {
		t.Fatal(err)
	}
	if rt, _ := tr.reset(); rt > 150 {
		t.Errorf("1,000 updates with a bad one took %d round trips, want at most 150", rt)
	}
	if got, want := fmt.Sprint(res[433].Err), `ERROR: invalid input syntax for type integer: "lots" (SQLSTATE 22P02)`; got != want {
		t.Errorf("record 433: %s, want %s", got, want)
	}
	for i, r := range res {
		if i != 433 && (r.Err != nil || r.Record.Data["qty"] != int64(i+5000)) {
			t.Fatalf("record %d: %v (%v)", i, r.Record.Data, r.Err)
		}
	}
	if got, err := c.Get(context.Background(), "Item", []string{created[433].Record.ID}); err != nil || got[created[433].Record.ID].Data["qty"] != int64(5433) {
		t.Errorf("the bad record holds %v (%v), want its qty unchanged (5433)", got, err)
	}
}

// A write whose context's fence fails by its commit (a leased run that lost its lease while it
// wrote: connector.Fence) rolls back whole, creates, updates and deletes alike.
func TestWritesRollBackAtAFailedFence(t *testing.T) {
	db := pgtest.New(t)
	db.Exec(t, `CREATE TABLE items (id serial PRIMARY KEY, name text, qty integer)`, `INSERT INTO items (name, qty) VALUES ('kept', 1)`)
	c := open(t, db.DSN(), system(`Item: {table: items, id: id}`))
	lost := errors.New("the lease of the flow was lost")
	fenced := connector.WithFence(context.Background(), func() error { return lost })
	if _, err := c.Create(fenced, "Item", items(300, nil)); !errors.Is(err, lost) {
		t.Errorf("Create under a failed fence: %v", err)
	}
	if _, err := c.Update(fenced, "Item", []connector.Record{{ID: "1", Data: map[string]any{"name": "changed"}}}); !errors.Is(err, lost) {
		t.Errorf("Update under a failed fence: %v", err)
	}
	if _, err := c.Delete(fenced, "Item", []string{"1"}); !errors.Is(err, lost) {
		t.Errorf("Delete under a failed fence: %v", err)
	}
	got, err := c.Get(context.Background(), "Item", []string{"1", "2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["1"].Data["name"] != "kept" {
		t.Errorf("items after the fenced writes: %v, want only item 1 as it was", got)
	}
}
