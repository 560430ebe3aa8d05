package sync_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/state"
	dsync "github.com/dataflow-sync/dataflow/engine/sync"
)

// wmNow is the clock of the watermark tests: after every stamp of the fixtures, before the
// far-future ones.
var wmNow = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

// wmRun runs every flow once with the watermark tests' clock and options.
func (p *e2eProject) wmRun(opts dsync.Options) *dsync.Report {
	p.t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return wmNow }
	}
	rep, err := p.run(e2eRunConfig{opts: opts})
	if err != nil {
		p.t.Fatalf("run: %v", err)
	}
	return rep
}

// watermark reads a flow's stored watermark of one side.
func (p *e2eProject) watermark(flow, side string) string {
	p.t.Helper()
	var wm string
	p.store(func(st state.Store) (err error) {
		wm, err = st.Watermark(p.t.Context(), flow, side)
		return err
	})
	return wm
}

// One row whose updated value is not a time, or is far in the future, must not become the
// watermark: every later row would then be older than it and never read again, while every
// run reported success. The row is synced, named in a warning, and left out of the watermark.
func TestWatermarkIgnoresBadAndFutureStamps(t *testing.T) {
	for _, tc := range []struct {
		bad, warning string
	}{
		{"N/A", `products: source record 11 (Product): updated_at "N/A" is not a time or a number; the record is left out of the watermark`},
		{"9999-12-31T00:00:00Z", `products: source record 11 (Product): updated_at "9999-12-31T00:00:00Z" is in the future; the watermark stays before this read's start, so later changes are still read`},
	} {
		t.Run(tc.bad, func(t *testing.T) {
			p := newE2E(t, "basic.yaml")
			p.wmRun(dsync.Options{})
			before := p.watermark("products", state.Source)
			p.exec("crm", "INSERT INTO products (id, sku, name, price, stock, updated_at) VALUES (11, 'P-11', 'Bad stamp', 1, 1, ?)", tc.bad)
			rep := p.wmRun(dsync.Options{})
			if got := e2eFlow(t, rep, "products").CreatedTarget; got != 1 {
				t.Errorf("the row with a bad stamp: %d created, want 1", got)
			}
			if !containsLine(rep.Warnings, tc.warning) {
				t.Errorf("warnings:\n%s\nwant the line\n%s", strings.Join(rep.Warnings, "\n"), tc.warning)
			}
			if got := p.watermark("products", state.Source); got != before {
				t.Errorf("watermark after the bad stamp = %q, want it unchanged (%q)", got, before)
			}
			// A later row, and a later edit of an older one, are still read, run after run.
			for i, stamp := range []string{"2024-03-01T00:00:00Z", "2024-03-02T00:00:00Z", "2024-03-03T00:00:00Z"} {
				id := 12 + i
				p.exec("crm", "INSERT INTO products (id, sku, name, price, stock, updated_at) VALUES (?, ?, 'Later', 1, 1, ?)", id, fmt.Sprintf("P-%d", id), stamp)
				rep := p.wmRun(dsync.Options{})
				if got := e2eFlow(t, rep, "products").CreatedTarget; got != 1 {
					t.Fatalf("run %d after the bad stamp: %d created, want the new row (stamped %s)", i+1, got, stamp)
				}
				if got := p.watermark("products", state.Source); got != stamp {
					t.Errorf("run %d: watermark %q, want %q", i+1, got, stamp)
				}
			}
			if n := p.count("shop", "products"); n != 14 {
				t.Errorf("the shop has %d products, want 14", n)
			}
		})
	}
}

func containsLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

// A record stamped shortly before the read started may have company: another writer whose
// clock is behind, or whose transaction commits later, adds a record stamped before it after
// the read. The watermark stays before the read's start less the clock skew, so such a record
// is read next time.
func TestWatermarkStaysBeforeTheReadStartLessTheSkew(t *testing.T) {
	p := newE2E(t, "basic.yaml")
	p.wmRun(dsync.Options{})
	before := p.watermark("products", state.Source)
	p.exec("crm", "INSERT INTO products (id, sku, name, price, stock, updated_at) VALUES (11, 'P-11', 'Just now', 1, 1, '2024-06-01T11:58:00Z')")
	p.wmRun(dsync.Options{})
	if got := p.watermark("products", state.Source); got != before {
		t.Errorf("watermark = %q, want %q: a stamp within the clock skew of the read's start does not move it", got, before)
	}
	// Committed after that read, stamped before its newest record.
	p.exec("crm", "INSERT INTO products (id, sku, name, price, stock, updated_at) VALUES (12, 'P-12', 'Late commit', 1, 1, '2024-06-01T11:57:00Z')")
	rep := p.wmRun(dsync.Options{Now: func() time.Time { return wmNow.Add(time.Minute) }})
	if got := e2eFlow(t, rep, "products").CreatedTarget; got != 1 {
		t.Errorf("the late commit: %d created, want 1", got)
	}
	// Once the read starts well after them, the watermark takes them.
	p.wmRun(dsync.Options{Now: func() time.Time { return wmNow.Add(time.Hour) }})
	if got := p.watermark("products", state.Source); got != "2024-06-01T11:58:00Z" {
		t.Errorf("watermark an hour later = %q, want 2024-06-01T11:58:00Z", got)
	}
	// A smaller allowance (Options.ClockSkew) lets the watermark come closer.
	p.exec("crm", "UPDATE products SET name = 'Closer', updated_at = '2024-06-01T13:00:30Z' WHERE id = 1")
	p.wmRun(dsync.Options{ClockSkew: time.Second, Now: func() time.Time { return wmNow.Add(time.Hour + time.Minute) }})
	if got := p.watermark("products", state.Source); got != "2024-06-01T13:00:30Z" {
		t.Errorf("watermark with a skew of 1s = %q, want 2024-06-01T13:00:30Z", got)
	}
}

// An entity's lookback re-reads a window before the watermark: a record stamped inside it,
// committed after the watermark passed it, is read.
func TestLookbackRereadsAWindowBeforeTheWatermark(t *testing.T) {
	for _, lookback := range []string{"", "10m"} {
		t.Run("lookback="+lookback, func(t *testing.T) {
			p := newE2E(t, "one-way.yaml") // the shop is not read, so only the CRM's watermark decides
			if lookback != "" {
				p.project.Systems["crm"].Entities["Product"].Config.Lookback.Value = lookback
			}
			p.exec("crm", "UPDATE products SET updated_at = '2024-05-01 10:00:00' WHERE id = 1")
			p.wmRun(dsync.Options{})
			if got := p.watermark("products", state.Source); got != "2024-05-01 10:00:00" {
				t.Fatalf("watermark = %q", got)
			}
			p.exec("crm", "UPDATE products SET name = 'Late', updated_at = '2024-05-01 09:55:00' WHERE id = 2")
			rep := p.wmRun(dsync.Options{})
			got := e2eFlow(t, rep, "products").UpdatedTarget
			want := 0
			if lookback != "" {
				want = 1
			}
			if got != want {
				t.Errorf("lookback %q: %d updated in the shop, want %d", lookback, got, want)
			}
		})
	}
}

// wmPagingConn lists an entity as an API that pages by offset over a listing sorted by the
// updated value does: each page is cut from the listing as it is when the page is asked for,
// so records the run writes (and the system stamps) move to the end and later pages skip
// others. It makes no snapshot (no SnapshotScan).
type wmPagingConn struct {
	connector.Conn
	page int
}

func (c *wmPagingConn) Capabilities() connector.Capabilities {
	return connector.Capabilities{Delete: true, ReturnsStored: true}
}

func (c *wmPagingConn) Scan(ctx context.Context, entity, since string, fn func([]connector.Record) error) error {
	for offset := 0; ; offset += c.page {
		var all []connector.Record
		if err := c.Conn.Scan(ctx, entity, since, func(recs []connector.Record) error { all = append(all, recs...); return nil }); err != nil {
			return err
		}
		if offset >= len(all) {
			return nil
		}
		if err := fn(all[offset:min(offset+c.page, len(all))]); err != nil {
			return err
		}
	}
}

// The run's own writes reorder a listing that is not a snapshot: records the later pages
// skip must not fall under the watermark, or no later run reads them. The watermark then
// counts only what the scan handed over before the run's first write to that side.
func TestWatermarkDoesNotPassRecordsAScanSkipped(t *testing.T) {
	p := newE2E(t, "basic.yaml")
	p.wmRun(dsync.Options{})
	p.exec("shop", "UPDATE products SET modified = '2024-01-15T00:00:00Z'")
	p.exec("shop", "UPDATE products SET modified = '2024-01-20T00:00:00Z' WHERE id = ?", p.mustTarget("products", "10"))
	p.wmRun(dsync.Options{}) // both sides now read from their watermarks, past most records
	// The CRM stamps the rows it is written to unless the writer sets updated_at, as an API does.
	p.exec("crm", `CREATE TRIGGER stamp AFTER UPDATE ON products WHEN NEW.updated_at = OLD.updated_at BEGIN
		UPDATE products SET updated_at = '2024-05-31T00:00:00Z' WHERE id = NEW.id; END`)
	for id := 1; id <= 6; id++ {
		p.exec("crm", "UPDATE products SET name = name || ' (new)', updated_at = ? WHERE id = ?", fmt.Sprintf("2024-02-0%dT00:00:00Z", id), id)
	}
	// An edit in the shop of a product on the first page ([10, 1]), which the source pass
	// writes back to the CRM: product 1 moves to the end, and the second page is [3, 4].
	p.exec("shop", "UPDATE products SET quantity = 77, modified = '2024-02-10T00:00:00Z' WHERE id = ?", p.mustTarget("products", "1"))
	paging := func(system string, c connector.Conn) connector.Conn {
		if system == "crm" {
			return &wmPagingConn{Conn: c, page: 2}
		}
		return c
	}
	for run := 1; run <= 3; run++ {
		if _, err := p.run(e2eRunConfig{wrap: paging, opts: dsync.Options{BatchSize: 2, Now: func() time.Time { return wmNow }}}); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}
	for id := 1; id <= 6; id++ {
		name := p.text("crm", "SELECT name FROM products WHERE id = ?", id)
		if got := p.text("shop", "SELECT title FROM products WHERE id = ?", p.mustTarget("products", fmt.Sprint(id))); got != name {
			t.Errorf("product %d: the shop's title is %q, want the CRM's %q", id, got, name)
		}
	}
}

// newStampProject writes a one-way project between two SQLite files whose items carry a
// last-modified column of the given SQL type, and loads it.
func newStampProject(t *testing.T, column string) *e2eProject {
	t.Helper()
	dir := t.TempDir()
	write := func(name, text string) {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, table := range map[string]string{"a.db": "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, version " + column + ")",
		"b.db": "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)"} {
		db, err := sql.Open("sqlite3", filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(table); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	write("systems/a.yaml", "system: a\nname: A\nconnector: sqlite\npath: ${A_DB}\nentities:\n  Item: {table: items, id: id, updated: version}\n")
	write("systems/b.yaml", "system: b\nname: B\nconnector: sqlite\npath: ${B_DB}\nentities:\n  Item: {table: items, id: id}\n")
	write("items.yaml", "dataflow: items\nsource: a\ntarget: b\nflows:\n  - id: items\n    source: Item\n    target: Item\n    sync: to-target\n    create: always\n    properties:\n      - {source: name, target: name}\n")
	env := map[string]string{"A_DB": filepath.Join(dir, "a.db"), "B_DB": filepath.Join(dir, "b.db")}
	return e2eLoad(t, dir, env, filepath.Join(dir, "items.yaml"))
}

// An updated column that is a counter: the watermark and the read since it compare numbers,
// so that a counter passing 9, 99 or 999999999 (a Unix time in 2001) loses nothing, whether
// the column stores numbers or decimal text.
func TestWatermarkOfIntegerCounters(t *testing.T) {
	for _, column := range []string{"INTEGER", "TEXT"} {
		t.Run(column, func(t *testing.T) {
			p := newStampProject(t, column)
			p.exec("a", "INSERT INTO items VALUES (1, 'one', 8), (2, 'two', 9)")
			p.wmRun(dsync.Options{})
			for i, step := range [][2]string{{"1", "10"}, {"2", "99"}, {"1", "100"}, {"2", "999999999"}, {"1", "1000000000"}} {
				name := fmt.Sprintf("edit %d", i)
				p.exec("a", "UPDATE items SET name = ?, version = ? WHERE id = ?", name, step[1], step[0])
				rep := p.wmRun(dsync.Options{})
				if got := e2eFlow(t, rep, "items").UpdatedTarget; got != 1 {
					t.Errorf("version %s: %d updated, want 1", step[1], got)
				}
				if got := p.text("b", "SELECT name FROM items WHERE id = ?", p.mustTarget("items", step[0])); got != name {
					t.Errorf("version %s: b holds %q, want %q", step[1], got, name)
				}
				if got := p.watermark("items", state.Source); got != step[1] {
					t.Errorf("version %s: watermark %q", step[1], got)
				}
				if len(rep.Warnings) > 0 {
					t.Errorf("version %s: warnings %q", step[1], rep.Warnings)
				}
			}
		})
	}
}

// Times with offsets compare as instants: a later instant whose text sorts before the
// watermark's (another offset, a space for the T) is read, and the watermark is the latest
// instant.
func TestWatermarkOfTimesWithZones(t *testing.T) {
	p := newStampProject(t, "TEXT")
	p.exec("a", "INSERT INTO items VALUES (1, 'one', '2024-05-01T10:00:00+02:00'), (2, 'two', '2024-05-01T07:00:00Z')")
	p.wmRun(dsync.Options{})
	if got := p.watermark("items", state.Source); got != "2024-05-01T10:00:00+02:00" {
		t.Fatalf("watermark %q, want the later instant 2024-05-01T10:00:00+02:00 (08:00Z)", got)
	}
	for i, stamp := range []string{"2024-05-01T09:30:00Z", "2024-05-01 09:45:00", "2024-05-01T05:50:00-04:00", "2024-05-01T11:55:00+02:00"} {
		name := fmt.Sprintf("edit %d", i)
		p.exec("a", "UPDATE items SET name = ?, version = ? WHERE id = 2", name, stamp)
		rep := p.wmRun(dsync.Options{})
		if got := e2eFlow(t, rep, "items").UpdatedTarget; got != 1 {
			t.Errorf("stamp %s: %d updated, want 1", stamp, got)
		}
		if got := p.watermark("items", state.Source); got != stamp {
			t.Errorf("after %s: watermark %q", stamp, got)
		}
	}
}

// A state that an earlier dataflow poisoned (its watermark is N/A, or in 9999) recovers: the
// stored watermark is dropped with a warning, the side read whole, and the watermark set anew.
func TestPoisonedStoredWatermarkIsDropped(t *testing.T) {
	for _, stored := range []string{"N/A", "9999-12-31T00:00:00Z"} {
		t.Run(stored, func(t *testing.T) {
			p := newE2E(t, "one-way.yaml")
			p.wmRun(dsync.Options{})
			st, err := state.Open(t.Context(), p.state, state.ReadWrite)
			if err != nil {
				t.Fatal(err)
			}
			tx, err := st.Begin(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if err := tx.SetWatermark("products", state.Source, stored); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			st.Close()
			p.exec("crm", "INSERT INTO products (id, sku, name, price, stock, updated_at) VALUES (11, 'P-11', 'New', 1, 1, '2024-03-01T00:00:00Z')")
			rep := p.wmRun(dsync.Options{})
			if got := e2eFlow(t, rep, "products").CreatedTarget; got != 1 {
				t.Errorf("%d created, want the new row", got)
			}
			want := map[string]string{
				"N/A":                  `products: source Product: the stored watermark "N/A" is not a stamp (a time or a number); the Product is read whole and the watermark set anew`,
				"9999-12-31T00:00:00Z": `products: source Product: the stored watermark "9999-12-31T00:00:00Z" is later than this read's start less the clock skew (2024-06-01T11:55:00Z); the Product is read whole and the watermark set anew`,
			}[stored]
			if !containsLine(rep.Warnings, want) {
				t.Errorf("warnings:\n%s\nwant the line\n%s", strings.Join(rep.Warnings, "\n"), want)
			}
			if got := p.watermark("products", state.Source); got != "2024-03-01T00:00:00Z" {
				t.Errorf("watermark %q, want 2024-03-01T00:00:00Z", got)
			}
		})
	}
}

// wmCutConn hands over the first page of a scan, then fails: a read cut short.
type wmCutConn struct {
	connector.Conn
	err error
}

func (c *wmCutConn) Capabilities() connector.Capabilities {
	return connector.Capabilities{Delete: true, ReturnsStored: true}
}

func (c *wmCutConn) Scan(ctx context.Context, entity, since string, fn func([]connector.Record) error) error {
	var all []connector.Record
	if err := c.Conn.Scan(ctx, entity, since, func(recs []connector.Record) error { all = append(all, recs...); return nil }); err != nil {
		return err
	}
	if len(all) > 2 {
		if err := fn(all[:2]); err != nil {
			return err
		}
		return c.err
	}
	return fn(all)
}

// A scan cut short (an error, an interrupt) leaves the watermark where it was, although the
// records it handed over were processed: the ones it did not read are under no watermark.
func TestWatermarkStaysWhenTheScanIsCutShort(t *testing.T) {
	for _, cut := range []error{errors.New("connection reset"), context.Canceled} {
		t.Run(cut.Error(), func(t *testing.T) {
			p := newE2E(t, "one-way.yaml")
			p.wmRun(dsync.Options{})
			before := p.watermark("products", state.Source)
			for id := 1; id <= 4; id++ {
				p.exec("crm", "UPDATE products SET name = name || ' (new)', updated_at = ? WHERE id = ?", fmt.Sprintf("2024-02-0%dT00:00:00Z", id), id)
			}
			wrap := func(system string, c connector.Conn) connector.Conn {
				if system == "crm" {
					return &wmCutConn{Conn: c, err: cut}
				}
				return c
			}
			_, err := p.run(e2eRunConfig{wrap: wrap, opts: dsync.Options{BatchSize: 1, Now: func() time.Time { return wmNow }}})
			if err == nil && !errors.Is(cut, context.Canceled) {
				t.Fatal("the run whose scan failed succeeded")
			}
			// The first page is products 10 (at the watermark) and 1.
			if got := p.text("shop", "SELECT title FROM products WHERE id = ?", p.mustTarget("products", "1")); got != "Espresso beans (new)" {
				t.Fatalf("the records handed over were not processed: title of 1 is %q", got)
			}
			if got := p.watermark("products", state.Source); got != before {
				t.Errorf("watermark after a scan cut short = %q, want it unchanged (%q)", got, before)
			}
			p.wmRun(dsync.Options{})
			for id := 2; id <= 4; id++ {
				if got := p.text("shop", "SELECT title FROM products WHERE id = ?", p.mustTarget("products", fmt.Sprint(id))); !strings.HasSuffix(got, " (new)") {
					t.Errorf("product %d after the next run: %q", id, got)
				}
			}
		})
	}
}
