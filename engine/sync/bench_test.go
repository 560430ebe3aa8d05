package sync_test

// Benchmarks of whole runs over the real SQLite connector and link state, in b.TempDir() (so
// with the durable commits a run makes): the first one-way sync of N products into an empty
// target, and a run where nothing changed, with and without a watermark. The products come
// from a generator with a fixed seed; the systems and the flow are the model test's
// (testdata/model), synced one way (testdata/model/bench).
//
//	go test ./engine/sync/ -run '^$' -bench . -benchtime 5x

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine"
	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/schema"
	"github.com/dataflow-sync/dataflow/engine/state"
	dsync "github.com/dataflow-sync/dataflow/engine/sync"
)

const benchProducts = 10000

// benchSource writes a source database of n products, the same for the same n and seed, and
// returns its path.
func benchSource(b testing.TB, dir string, n int, seed int64) string {
	b.Helper()
	fixtures, err := filepath.Abs(modelFixtures)
	if err != nil {
		b.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join(fixtures, "source.sql"))
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "source-template.db")
	db, err := sql.Open("sqlite3", "file:"+path+"?_synchronous=OFF")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(string(script)); err != nil {
		b.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	stmt, err := tx.Prepare("INSERT INTO items (code, name, qty, price, active, updated_at) VALUES (?, ?, ?, ?, ?, ?)")
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewSource(seed))
	words := []string{"Espresso", "Filter", "Green", "Black", "Oolong", "Grinder", "Kettle", "Mug", "Decanter", "Beans"}
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		var name any = fmt.Sprintf("%s %s %d g", words[rng.Intn(len(words))], words[rng.Intn(len(words))], 50*(1+rng.Intn(20)))
		if rng.Intn(20) == 0 {
			name = nil
		}
		_, err := stmt.Exec(fmt.Sprintf("P%06d", i), name, rng.Intn(500), float64(rng.Intn(100000))/100, rng.Intn(5) != 0,
			start.Add(time.Duration(i)*time.Second).Format(modelStampLayout))
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		b.Fatal(err)
	}
	return path
}

// benchEnv is one set of systems and link state for a benchmark run.
type benchEnv struct {
	runner *dsync.Runner
	conns  map[string]connector.Conn
	store  *state.SQLite
}

func (e *benchEnv) close() {
	for _, c := range e.conns {
		c.Close()
	}
	e.store.Close()
}

// benchLoad compiles the benchmark's dataflow with the given source system file.
func benchLoad(b testing.TB, shopFile string) *mapping.Project {
	b.Helper()
	fixtures, err := filepath.Abs(modelFixtures)
	if err != nil {
		b.Fatal(err)
	}
	env := map[string]string{"MODEL_SHOP_DB": "shop.db", "MODEL_SHOP_INIT": "source.sql", "MODEL_STORE_DB": "store.db", "MODEL_STORE_INIT": "target.sql"}
	eng, err := engine.New(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		b.Fatal(err)
	}
	res, err := eng.Load(context.Background(), []string{
		filepath.Join(fixtures, shopFile), filepath.Join(fixtures, "systems", "store.yaml"),
		filepath.Join(fixtures, "bench", "items-to-things.yaml"),
	})
	if err != nil {
		b.Fatal(err)
	}
	if res.Diagnostics.HasErrors() {
		b.Fatalf("the benchmark's mappings do not load: %v", res.Diagnostics)
	}
	return res.Project
}

// benchOpen opens the systems in dir (the source a copy of template; the target created
// empty from its init script when missing) and the link state there.
func benchOpen(b testing.TB, proj *mapping.Project, dir, template string) *benchEnv {
	b.Helper()
	ctx := context.Background()
	fixtures, err := filepath.Abs(modelFixtures)
	if err != nil {
		b.Fatal(err)
	}
	shop := filepath.Join(dir, "shop.db")
	if _, err := os.Stat(shop); err != nil {
		copyFile(b, template, shop)
	}
	df := proj.Dataflows[0]
	systems := map[string]*config.System{
		"shop":  modelSystem(df.Source.Config, shop, filepath.Join(fixtures, "source.sql")),
		"store": modelSystem(df.Target.Config, filepath.Join(dir, "store.db"), filepath.Join(fixtures, "target.sql")),
	}
	e := &benchEnv{conns: map[string]connector.Conn{}}
	registry := engine.Connectors()
	for _, sys := range []*mapping.System{df.Source, df.Target} {
		driver, _ := registry.Driver(sys.Config.Connector.Value)
		entities := map[string]*schema.Entity{}
		for name, ent := range sys.Entities {
			entities[name] = ent.Schema
		}
		c, err := driver.(connector.Opener).Open(ctx, systems[sys.Config.ID.Value], entities, connector.OpenOptions{})
		if err != nil {
			b.Fatal(err)
		}
		e.conns[sys.Config.ID.Value] = c
	}
	if e.store, err = state.Open(ctx, filepath.Join(dir, "state.db"), state.ReadWrite); err != nil {
		b.Fatal(err)
	}
	e.runner = &dsync.Runner{Project: proj, Conns: e.conns, State: e.store}
	return e
}

func copyFile(b testing.TB, from, to string) {
	b.Helper()
	in, err := os.Open(from)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkFullSync: the first run of a one-way flow, N products created in an empty target
// and linked. Each iteration starts from a fresh copy of the source, an empty target and an
// empty link state, made with the timer stopped.
func BenchmarkFullSync(b *testing.B) {
	proj := benchLoad(b, filepath.Join("systems", "shop.yaml"))
	template := benchSource(b, b.TempDir(), benchProducts, 1)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := benchOpen(b, proj, b.TempDir(), template)
		b.StartTimer()
		rep, err := e.runner.Run(ctx)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if f := rep.Flows[0]; f.CreatedTarget != benchProducts || f.Failed != 0 {
			b.Fatalf("created %d of %d products, %d failed", f.CreatedTarget, benchProducts, f.Failed)
		}
		if n, err := e.store.CountLinks(ctx, ""); err != nil || n != benchProducts {
			b.Fatalf("%d links, want %d (%v)", n, benchProducts, err)
		}
		e.close()
		b.StartTimer()
	}
	b.ReportMetric(float64(benchProducts)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkNoChangeRun: a run after the first, nothing changed in either system. With a
// watermark (the source's updated_at) the run reads nothing; without one it reads and
// compares every record. The systems are synced once before the timer starts; every
// iteration is another run with nothing to do.
func BenchmarkNoChangeRun(b *testing.B) {
	for _, c := range []struct{ name, shop string }{
		{"watermark", filepath.Join("systems", "shop.yaml")},
		{"no-watermark", filepath.Join("bench", "shop-without-updated.yaml")},
	} {
		b.Run(c.name, func(b *testing.B) {
			proj := benchLoad(b, c.shop)
			template := benchSource(b, b.TempDir(), benchProducts, 1)
			ctx := context.Background()
			e := benchOpen(b, proj, b.TempDir(), template)
			defer e.close()
			if rep, err := e.runner.Run(ctx); err != nil || rep.Flows[0].CreatedTarget != benchProducts {
				b.Fatalf("the first run: %v, %+v", err, rep)
			}
			b.ResetTimer()
			read := benchQuietRuns(b, e)
			b.ReportMetric(float64(benchProducts)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(read), "read/run")
		})
	}
}

// benchQuietRuns runs b.N runs in which nothing changed, failing any that writes, and returns
// the records the last one read.
func benchQuietRuns(b *testing.B, e *benchEnv) int {
	read := 0
	for i := 0; i < b.N; i++ {
		rep, err := e.runner.Run(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if rep.Writes() != 0 {
			b.Fatalf("a run with nothing changed wrote %d times", rep.Writes())
		}
		read = rep.Flows[0].ReadSource + rep.Flows[0].ReadTarget
	}
	return read
}

// BenchmarkNoChangeRunLinks: a run with nothing changed, over 10,000 and 100,000 links (the
// one-way flow with a watermark). A run where nothing changed should cost what changed, not
// what is linked: ns/op must not grow with the number of links.
//
//	go test ./engine/sync/ -run '^$' -bench NoChangeRunLinks -benchtime 3x
func BenchmarkNoChangeRunLinks(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		b.Run(fmt.Sprintf("links=%d", n), func(b *testing.B) {
			proj := benchLoad(b, filepath.Join("systems", "shop.yaml"))
			template := benchSource(b, b.TempDir(), n, 1)
			ctx := context.Background()
			e := benchOpen(b, proj, b.TempDir(), template)
			defer e.close()
			if rep, err := e.runner.Run(ctx); err != nil || rep.Flows[0].CreatedTarget != n {
				b.Fatalf("the first run: %v, %+v", err, rep)
			}
			// The second run starts from the first's counts; the timed runs are the ones after.
			if _, err := e.runner.Run(ctx); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			benchQuietRuns(b, e)
		})
	}
}

// firstSyncLinks makes a first sync of the n records of template with proj's flow (setup, when
// set, tunes the run) and returns its links: per source id, the base and the source digest.
// With again, a second run must find every record unchanged and save no link again.
func firstSyncLinks(t *testing.T, proj *mapping.Project, template string, n int, again bool, setup func(e *benchEnv)) map[string]string {
	t.Helper()
	ctx := context.Background()
	e := benchOpen(t, proj, t.TempDir(), template)
	defer e.close()
	if setup != nil {
		setup(e)
	}
	rep, err := e.runner.Run(ctx)
	if err != nil || rep.Flows[0].CreatedTarget != n || rep.Failed() != 0 {
		t.Fatalf("first sync: %v, %+v", err, rep.Flows[0])
	}
	if again {
		if rep, err := e.runner.Run(ctx); err != nil || rep.Writes() != 0 || rep.Flows[0].Unchanged != n {
			t.Fatalf("the second run: %v, %+v", err, rep.Flows[0])
		}
	}
	got := map[string]string{}
	err = e.store.ScanLinks(ctx, rep.Flows[0].Flow, func(links []*state.Link) error {
		for _, l := range links {
			b, err := l.Bases()
			if err != nil {
				return err
			}
			if l.MergedIn != l.LinkedIn {
				t.Errorf("the link of %s was saved again by run %d", l.SourceID, l.MergedIn)
			}
			got[l.SourceID] = fmt.Sprintf("%v %s", b, l.SourceHash)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("%d links, want %d", len(got), n)
	}
	return got
}

// sameLinks fails the test where got's links differ from want's.
func sameLinks(t *testing.T, how string, got, want map[string]string) {
	t.Helper()
	for id, w := range want {
		if got[id] != w {
			t.Fatalf("link of %s, %s:\n%s\nwant\n%s", id, how, got[id], w)
		}
	}
}

// A pure flow (no references, no lists) maps and digests a large batch on two goroutines; the
// links it makes are those of batches small enough for one (below 256 records), byte for byte
// (but for the target's digest, which covers the target's generated id), and the next run
// recognises every record as unchanged by its digests: it saves no link again.
func TestLargeBatchesMapOnTwoGoroutinesAsOnOne(t *testing.T) {
	const n = 1500
	// Without a watermark, the second run reads and compares every record.
	proj := benchLoad(t, filepath.Join("bench", "shop-without-updated.yaml"))
	template := benchSource(t, t.TempDir(), n, 7)
	batches := func(size int) func(e *benchEnv) { return func(e *benchEnv) { e.runner.Opts.BatchSize = size } }
	one := firstSyncLinks(t, proj, template, n, true, batches(200))
	sameLinks(t, "mapped on two goroutines", firstSyncLinks(t, proj, template, n, true, batches(n)), one)
}

// scanInLine hides a connection's capabilities: it is scanned on the run's goroutine, and what
// a first sync creates from it is built with its batch.
type scanInLine struct{ connector.Conn }

// A first sync of a pure flow builds its creates on the scan's goroutine, a batch ahead; the
// links (bases and digests) are those of a run that builds them with their batch.
func TestFirstSyncBuildsAheadAsWithItsBatch(t *testing.T) {
	const n = 1500
	proj := benchLoad(t, filepath.Join("bench", "shop-without-updated.yaml"))
	template := benchSource(t, t.TempDir(), n, 11)
	inLine := firstSyncLinks(t, proj, template, n, false, func(e *benchEnv) {
		e.runner.Conns = map[string]connector.Conn{"shop": scanInLine{e.conns["shop"]}, "store": e.conns["store"]}
	})
	sameLinks(t, "built ahead", firstSyncLinks(t, proj, template, n, false, nil), inLine)
}

// The links of a batch of creates wait for the next transaction (one commit per batch), and
// the next batch still sees them: a record created by one batch is linked when the next batch
// looks for records with its merge key, so a second source record with that key gets a record
// of its own instead of the first one's.
func TestStagedLinksAreSeenByTheNextBatch(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	proj := benchLoad(t, filepath.Join("systems", "shop.yaml"))
	template := benchSource(t, t.TempDir(), 4, 3)
	db, err := sql.Open("sqlite3", template)
	if err != nil {
		t.Fatal(err)
	}
	// The shop's codes are unique; this copy's are not.
	for _, stmt := range []string{
		`CREATE TABLE loose (id INTEGER PRIMARY KEY AUTOINCREMENT, code TEXT NOT NULL, name TEXT, qty INTEGER,
			price NUMERIC(10,2), active BOOLEAN, updated_at TEXT)`,
		`INSERT INTO loose SELECT id, code, name, qty, price, active, updated_at FROM items`,
		`DROP TABLE items`,
		`ALTER TABLE loose RENAME TO items`,
		`UPDATE items SET code = 'DUP' WHERE code IN ('P000001', 'P000002')`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	e := benchOpen(t, proj, dir, template)
	defer e.close()
	// The target is not empty, so that the run searches it by merge key.
	store, err := sql.Open("sqlite3", filepath.Join(dir, "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.Exec(`INSERT INTO things (id, sku, title) VALUES ('x1', 'OTHER', 'Not in the shop')`); err != nil {
		t.Fatal(err)
	}
	e.runner.Opts.BatchSize = 1
	rep, err := e.runner.Run(ctx)
	if err != nil || rep.Failed() != 0 || rep.Flows[0].CreatedTarget != 4 {
		t.Fatalf("run: %v, %+v", err, rep.Flows[0])
	}
	var dups int
	if err := store.QueryRow(`SELECT count(*) FROM things WHERE sku = 'DUP'`).Scan(&dups); err != nil || dups != 2 {
		t.Errorf("%d things with sku DUP (%v), want 2: one per shop item", dups, err)
	}
	if n, err := e.store.CountLinks(ctx, ""); err != nil || n != 4 {
		t.Errorf("%d links (%v), want 4", n, err)
	}
}

// A first sync holds what its batches hold, whatever the number of records: the live heap at
// the end of every batch (after a collection) peaks no higher for 6 times the records. Sets
// of the records a run touched, kept until its end, once grew it by some 320 bytes a record;
// a set of 80 bytes a record fails this test.
func TestFirstSyncMemoryIsFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("syncs 70,000 records")
	}
	ctx := context.Background()
	proj := benchLoad(t, filepath.Join("systems", "shop.yaml"))
	peak := func(n int) uint64 {
		template := benchSource(t, t.TempDir(), n, 5)
		e := benchOpen(t, proj, t.TempDir(), template)
		defer e.close()
		var most uint64
		e.runner.Opts.Progress = func(string, *dsync.FlowStats) {
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			most = max(most, m.HeapAlloc)
		}
		rep, err := e.runner.Run(ctx)
		if err != nil || rep.Flows[0].CreatedTarget != n {
			t.Fatalf("%d records: %v, %+v", n, err, rep.Flows[0])
		}
		return most
	}
	small, large := peak(10000), peak(60000)
	t.Logf("peak live heap at batch ends: %.1f MiB for 10,000 records, %.1f MiB for 60,000", float64(small)/(1<<20), float64(large)/(1<<20))
	if large > small+3<<20 {
		t.Errorf("the live heap grew from %.1f MiB (10,000 records) to %.1f MiB (60,000): more than the 3 MiB noise allows", float64(small)/(1<<20), float64(large)/(1<<20))
	}
}
