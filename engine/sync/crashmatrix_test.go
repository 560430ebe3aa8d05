package sync_test

// The crash-point matrix (docs/semantics.md §3.7): for each kind of write (create, update, delete) in
// each direction, a run is killed at every call it makes to a system or to the link state,
// in turn, and at write calls with none, part and all of the batch applied: after the intent
// is committed and before the create, after the create but before its response, mid-batch,
// after the link is saved, and so on. The run after the kill (recovery) is itself killed at
// each of its calls in turn. Then an unkilled run and a quiet run must leave the same
// invariants every time: both sides hold exactly the expected records, once each, with the
// expected values; every link points at existing records; no intent is pending; and the quiet
// run writes nothing.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	gosync "sync"
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

var errCrashed = errors.New("crashed (the crash-point matrix's simulated kill)")

// crashPlan says where a run dies: at call At (counting from 0), with Applied records of a
// write batch applied (-1: all of them).
type crashPlan struct {
	At, Applied int
	// Lost makes call At, a deferred commit (state.Deferring), one that a power loss undoes:
	// neither it nor a deferred commit after it happens, the run goes on, and dies at its next
	// ordinary commit, whose durable commit would have made them durable.
	Lost bool
}

var noCrash = crashPlan{At: -1}

// crashPoint counts a run's calls, names them, and kills the run at its plan.
type crashPoint struct {
	mu    gosync.Mutex
	plan  crashPlan
	calls []string
	dead  string // what the kill interrupted
	lost  string // the deferred commit a power loss undoes (plan.Lost)
}

// reach is called before each call: it reports whether the call goes ahead, and for a
// killed write how many records of its batch are applied first.
func (p *crashPoint) reach(what string, batch int) (goAhead bool, applied int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead != "" {
		return false, 0
	}
	p.calls = append(p.calls, what)
	if p.lost != "" && strings.HasPrefix(what, "commit") {
		if strings.HasSuffix(what, deferredMark) {
			return false, 0 // undone too: the log is written in order
		}
		p.dead = "power loss: " + p.lost + " undone, before " + what
		return false, 0
	}
	if len(p.calls)-1 != p.plan.At {
		return true, 0
	}
	if p.plan.Lost {
		p.lost = what
		return false, 0
	}
	applied = p.plan.Applied
	if applied < 0 || applied > batch {
		applied = batch
	}
	p.dead = what
	if batch > 0 {
		p.dead = fmt.Sprintf("%s, %d of %d applied", what, applied, batch)
	}
	return false, applied
}

// losing reports whether a commit refused is one a power loss undoes (plan.Lost): the lost
// one, or a deferred commit after it, before the run dies.
func (p *crashPoint) losing() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dead == "" && p.lost != ""
}

type crashConn struct {
	connector.Conn
	p    *crashPoint
	side string
}

func (c *crashConn) Scan(ctx context.Context, entity, since string, fn func([]connector.Record) error) error {
	if ok, _ := c.p.reach(c.side+" scan", 0); !ok {
		return errCrashed
	}
	return c.Conn.Scan(ctx, entity, since, fn)
}

func (c *crashConn) Get(ctx context.Context, entity string, ids []string) (map[string]connector.Record, error) {
	if ok, _ := c.p.reach(c.side+" get", 0); !ok {
		return nil, errCrashed
	}
	return c.Conn.Get(ctx, entity, ids)
}

func (c *crashConn) Create(ctx context.Context, entity string, data []map[string]any) ([]connector.Result, error) {
	ok, n := c.p.reach(c.side+" create", len(data))
	if !ok {
		if n > 0 {
			c.Conn.Create(context.Background(), entity, data[:n])
		}
		return nil, errCrashed
	}
	return c.Conn.Create(ctx, entity, data)
}

func (c *crashConn) Update(ctx context.Context, entity string, recs []connector.Record) ([]connector.Result, error) {
	ok, n := c.p.reach(c.side+" update", len(recs))
	if !ok {
		if n > 0 {
			c.Conn.Update(context.Background(), entity, recs[:n])
		}
		return nil, errCrashed
	}
	return c.Conn.Update(ctx, entity, recs)
}

func (c *crashConn) Delete(ctx context.Context, entity string, ids []string) ([]error, error) {
	ok, n := c.p.reach(c.side+" delete", len(ids))
	if !ok {
		if n > 0 {
			c.Conn.Delete(context.Background(), entity, ids[:n])
		}
		return nil, errCrashed
	}
	return c.Conn.Delete(ctx, entity, ids)
}

// Capabilities are the connection's, so that the matrix runs production's paths (read-ahead
// scans, prebuilt creates, large batches, counts), with every call of its optional abilities
// a crash point too.
func (c *crashConn) Capabilities() connector.Capabilities {
	caps := c.Conn.Capabilities()
	if caps.Finder != nil {
		caps.Finder = crashFinder{c}
	}
	if caps.Counter != nil {
		caps.Counter = crashCounter{c}
	}
	if caps.DeleteCounter != nil {
		caps.DeleteCounter = crashDeleteCounter{c}
	}
	return caps
}

// crashFinder, crashCounter and crashDeleteCounter put a crash point before the calls of the
// connection's optional abilities.
type (
	crashFinder        struct{ c *crashConn }
	crashCounter       struct{ c *crashConn }
	crashDeleteCounter struct{ c *crashConn }
)

func (f crashFinder) Find(ctx context.Context, entity string, paths []string, keys [][]string) ([]connector.Record, error) {
	if ok, _ := f.c.p.reach(f.c.side+" find", 0); !ok {
		return nil, errCrashed
	}
	return f.c.Conn.Capabilities().Finder.Find(ctx, entity, paths, keys)
}

func (n crashCounter) Count(ctx context.Context, entity string) (int, error) {
	if ok, _ := n.c.p.reach(n.c.side+" count", 0); !ok {
		return 0, errCrashed
	}
	return n.c.Conn.Capabilities().Counter.Count(ctx, entity)
}

func (n crashDeleteCounter) Deletions(ctx context.Context, entity string) (int64, bool, error) {
	if ok, _ := n.c.p.reach(n.c.side+" deletions", 0); !ok {
		return 0, false, errCrashed
	}
	return n.c.Conn.Capabilities().DeleteCounter.Deletions(ctx, entity)
}

type crashStore struct {
	state.Store
	p *crashPoint
}

// Overlaps forwards the store's state.Overlapping, so that links are committed on a second
// goroutine as in production.
func (s *crashStore) Overlaps() bool {
	o, ok := s.Store.(state.Overlapping)
	return ok && o.Overlaps()
}

func (s *crashStore) Begin(ctx context.Context) (state.Tx, error) {
	tx, err := s.Store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &crashTx{Tx: tx, p: s.p}, nil
}

// BeginDeferred forwards the store's state.Deferring, as in production; its commits are
// crash points too, named with deferredMark.
func (s *crashStore) BeginDeferred(ctx context.Context) (state.Tx, error) {
	d, ok := s.Store.(state.Deferring)
	if !ok {
		return s.Begin(ctx)
	}
	tx, err := d.BeginDeferred(ctx)
	if err != nil {
		return nil, err
	}
	return &crashTx{Tx: tx, p: s.p, deferred: true}, nil
}

// deferredMark ends the name of a deferred commit.
const deferredMark = ", deferred"

// crashTx names its commit by what the transaction wrote, so that the matrix can say "after
// the intent" or "after the link is saved".
type crashTx struct {
	state.Tx
	p        *crashPoint
	wrote    []string
	deferred bool // of BeginDeferred
}

func (tx *crashTx) note(what string) {
	if len(tx.wrote) == 0 || tx.wrote[len(tx.wrote)-1] != what {
		tx.wrote = append(tx.wrote, what)
	}
}

func (tx *crashTx) AddIntent(in *state.Intent) (int64, error) {
	tx.note("intent")
	return tx.Tx.AddIntent(in)
}

func (tx *crashTx) AddIntents(ins []state.Intent) ([]int64, error) {
	tx.note("intent")
	return tx.Tx.AddIntents(ins)
}

func (tx *crashTx) PutLinks(links []*state.Link) error {
	if len(links) > 0 {
		tx.note("link")
	}
	return tx.Tx.PutLinks(links)
}

func (tx *crashTx) DeleteIntent(id int64) error {
	tx.note("intent done")
	return tx.Tx.DeleteIntent(id)
}

func (tx *crashTx) DeleteIntents(ids []int64) error {
	tx.note("intent done")
	return tx.Tx.DeleteIntents(ids)
}

func (tx *crashTx) PutLink(l *state.Link) error {
	tx.note("link")
	return tx.Tx.PutLink(l)
}

func (tx *crashTx) Commit() error {
	what := "commit"
	if len(tx.wrote) > 0 {
		what += " (" + strings.Join(tx.wrote, ", ") + ")"
	}
	if tx.deferred {
		what += deferredMark
	}
	if ok, _ := tx.p.reach(what, 0); !ok {
		tx.Tx.Rollback()
		if tx.p.losing() {
			return nil // the run goes on as if it had committed
		}
		return errCrashed
	}
	return tx.Tx.Commit()
}

// crashStates keep the link states of the matrix's worlds: a SQLite file in the world's
// directory (sqliteCrashStates), or a database of a PostgreSQL server (pgCrashStates, in
// crashmatrix_pg_test.go), so that the same matrix proves the recovery over either store.
type crashStates interface {
	// open opens the world's link state as a new process would, made at the first ReadWrite.
	open(ctx context.Context, w *crashWorld, mode state.Mode) (state.Store, error)
	// copy makes to's link state a copy of from's (closed): a case starts at the checkpoint.
	copy(t *testing.T, from, to *crashWorld)
	// remove deletes the world's link state.
	remove(t *testing.T, w *crashWorld)
}

// sqliteCrashStates keep each world's link state in its directory's state.db, which copyDir
// copies and os.RemoveAll removes with the systems' files.
type sqliteCrashStates struct{}

func (sqliteCrashStates) open(ctx context.Context, w *crashWorld, mode state.Mode) (state.Store, error) {
	return state.Open(ctx, filepath.Join(w.dir, "state.db"), mode)
}

func (sqliteCrashStates) copy(*testing.T, *crashWorld, *crashWorld) {}

func (sqliteCrashStates) remove(*testing.T, *crashWorld) {}

// crashWorld is one case's systems, in files of its own directory, and its link state.
type crashWorld struct {
	t      *testing.T
	dir    string
	states crashStates
	proj   *mapping.Project
	flow   *mapping.Flow
	clock  time.Time
}

func newCrashWorld(t *testing.T, states crashStates, proj *mapping.Project, dir string) *crashWorld {
	return &crashWorld{t: t, dir: dir, states: states, proj: proj, flow: proj.Dataflows[0].Flows[0],
		clock: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// copyTo makes the world at dir a copy of w (files and link state) at w's clock.
func (w *crashWorld) copyTo(dir string) *crashWorld {
	w.t.Helper()
	cw := newCrashWorld(w.t, w.states, w.proj, dir)
	copyDir(w.t, w.dir, dir)
	w.states.copy(w.t, w, cw)
	cw.clock = w.clock
	return cw
}

// remove deletes the world's files and link state.
func (w *crashWorld) remove() {
	w.states.remove(w.t, w)
	os.RemoveAll(w.dir)
}

// tick moves both systems' clocks (their triggers stamp writes with it) a second on.
func (w *crashWorld) tick() {
	w.clock = w.clock.Add(time.Second)
	for _, db := range []string{"shop.db", "store.db"} {
		if _, err := os.Stat(filepath.Join(w.dir, db)); err != nil {
			continue // not created yet: the run creates it from its init script
		}
		w.exec(db, "UPDATE clock SET now = ?", w.clock.Format("2006-01-02T15:04:05.000000Z"))
	}
}

func (w *crashWorld) exec(db, query string, args ...any) {
	w.t.Helper()
	h, err := sql.Open("sqlite3", "file:"+filepath.Join(w.dir, db)+"?_busy_timeout=10000")
	if err != nil {
		w.t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.Exec(query, args...); err != nil {
		w.t.Fatalf("%s: %s: %v", db, query, err)
	}
}

// rows reads "code|name|qty" of every record of a side, sorted.
func (w *crashWorld) rows(db string) []string {
	w.t.Helper()
	q := "SELECT code || '|' || coalesce(name, '') || '|' || coalesce(qty, '') FROM items ORDER BY 1"
	if db == "store.db" {
		q = "SELECT sku || '|' || coalesce(title, '') || '|' || coalesce(amount, '') FROM things ORDER BY 1"
	}
	h, err := sql.Open("sqlite3", "file:"+filepath.Join(w.dir, db)+"?mode=ro")
	if err != nil {
		w.t.Fatal(err)
	}
	defer h.Close()
	rs, err := h.Query(q)
	if err != nil {
		w.t.Fatal(err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var s string
		if err := rs.Scan(&s); err != nil {
			w.t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// run runs the engine once as a new process would (fresh connections and link state) with
// the plan; it returns the calls made, what the kill interrupted ("" for none), the report
// and the run's error.
func (w *crashWorld) run(plan crashPlan) ([]string, string, *dsync.Report, error) {
	w.t.Helper()
	ctx := context.Background()
	w.tick()
	fixtures, err := filepath.Abs(modelFixtures)
	if err != nil {
		w.t.Fatal(err)
	}
	df := w.flow.Dataflow
	systems := map[string]*config.System{
		"shop":  modelSystem(df.Source.Config, filepath.Join(w.dir, "shop.db"), filepath.Join(fixtures, "source-stamped.sql")),
		"store": modelSystem(df.Target.Config, filepath.Join(w.dir, "store.db"), filepath.Join(fixtures, "target-stamped.sql")),
	}
	p := &crashPoint{plan: plan}
	conns := map[string]connector.Conn{}
	registry := engine.Connectors()
	for _, sys := range []*mapping.System{df.Source, df.Target} {
		driver, _ := registry.Driver(sys.Config.Connector.Value)
		entities := map[string]*schema.Entity{}
		for name, ent := range sys.Entities {
			entities[name] = ent.Schema
		}
		c, err := driver.(connector.Opener).Open(ctx, systems[sys.Config.ID.Value], entities, connector.OpenOptions{})
		if err != nil {
			w.t.Fatal(err)
		}
		defer c.Close()
		side := state.Source
		if sys == df.Target {
			side = state.Target
		}
		conns[sys.Config.ID.Value] = &crashConn{Conn: c, p: p, side: side}
	}
	st, err := w.states.open(ctx, w, state.ReadWrite)
	if err != nil {
		w.t.Fatal(err)
	}
	defer st.Close()
	runner := &dsync.Runner{Project: w.proj, Conns: conns, State: &crashStore{Store: st, p: p},
		Opts: dsync.Options{BatchSize: 2, MaxDeleteShare: 1, Now: func() time.Time { return w.clock }}}
	rep, err := runner.Run(ctx)
	if p.lost != "" && p.dead == "" {
		p.dead = "power loss: " + p.lost + " undone, at the end of the run"
	}
	return p.calls, p.dead, rep, err
}

// settle runs without a kill and checks the run succeeded.
func (w *crashWorld) settle(what string) *dsync.Report {
	w.t.Helper()
	_, _, rep, err := w.run(noCrash)
	if err != nil {
		w.t.Fatalf("%s: %v", what, err)
	}
	if rep.Failed() > 0 {
		w.t.Fatalf("%s: %d records failed", what, rep.Failed())
	}
	return rep
}

// check verifies the invariants after the settling runs.
func (w *crashWorld) check(want []string) error {
	ctx := context.Background()
	var problems []string
	for _, db := range []string{"shop.db", "store.db"} {
		if got := w.rows(db); strings.Join(got, "\n") != strings.Join(want, "\n") {
			problems = append(problems, fmt.Sprintf("%s holds %q, want %q", db, got, want))
		}
	}
	st, err := w.states.open(ctx, w, state.ReadOnly)
	if err != nil {
		return err
	}
	defer st.Close()
	if in, err := st.Intents(ctx, w.flow.ID()); err != nil {
		return err
	} else if len(in) > 0 {
		problems = append(problems, fmt.Sprintf("%d intents pending", len(in)))
	}
	links := 0
	err = st.ScanLinks(ctx, w.flow.ID(), func(ls []*state.Link) error {
		links += len(ls)
		return nil
	})
	if err != nil {
		return err
	}
	if links != len(want) {
		problems = append(problems, fmt.Sprintf("%d links, want %d", links, len(want)))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// crashScenario is one kind of write in one direction: prepare sets the systems up (the
// world is synced and quiet afterwards), change makes the edit the matrix's run writes, and
// want is what both sides must hold in the end.
type crashScenario struct {
	name    string
	prepare func(w *crashWorld)
	change  func(w *crashWorld)
	want    []string
	flat    bool // the flow without its list (a pure flow: the scan builds the creates ahead)
	// noMerge drops the flow's merge criteria: a record created and not linked is found
	// again only by its intent, not by its key.
	noMerge bool
}

func crashScenarios() []crashScenario {
	seedSource := func(w *crashWorld) {
		for i := 1; i <= 3; i++ {
			w.exec("shop.db", "INSERT INTO items (code, name, qty, price, active) VALUES (?, ?, ?, 1.5, 1)", fmt.Sprintf("C%d", i), fmt.Sprintf("item %d", i), i)
		}
	}
	seedTarget := func(w *crashWorld) {
		for i := 1; i <= 3; i++ {
			w.exec("store.db", "INSERT INTO things (id, sku, title, amount, cost, enabled) VALUES (?, ?, ?, ?, 1.5, 1)", fmt.Sprintf("t%d", i), fmt.Sprintf("C%d", i), fmt.Sprintf("item %d", i), fmt.Sprint(i))
		}
	}
	synced := func(w *crashWorld) {
		seedSource(w)
		w.settle("preparing")
	}
	nothing := func(*crashWorld) {}
	plain := []string{"C1|item 1|1", "C2|item 2|2", "C3|item 3|3"}
	edited := []string{"C1|edited 1|11", "C2|edited 2|12", "C3|edited 3|13"}
	return []crashScenario{
		{"create to target", nothing, seedSource, plain, false, false},
		{"create to source", nothing, seedTarget, plain, false, false},
		{"create to target without merge criteria", nothing, seedSource, plain, false, true},
		{"update to target", synced, func(w *crashWorld) {
			w.exec("shop.db", "UPDATE items SET name = 'edited ' || substr(code, 2), qty = qty + 10")
		}, edited, false, false},
		{"update to source", synced, func(w *crashWorld) {
			w.exec("store.db", "UPDATE things SET title = 'edited ' || substr(sku, 2), amount = CAST(amount + 10 AS TEXT)")
		}, edited, false, false},
		{"delete to target", synced, func(w *crashWorld) { w.exec("shop.db", "DELETE FROM items") }, nil, false, false},
		{"delete to source", synced, func(w *crashWorld) { w.exec("store.db", "DELETE FROM things") }, nil, false, false},
		{"create to target of a pure flow", nothing, seedSource, plain, true, false},
		{"create to source of a pure flow", nothing, seedTarget, plain, true, false},
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		in, err := os.Open(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(to, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCrashMatrix(t *testing.T) {
	runCrashMatrix(t, sqliteCrashStates{}, crashScenarios(), false)
}

// runCrashMatrix runs the scenarios' matrices with the link states kept by states.
// firstKillsOnly kills the first run at every crash point but does not kill the recovery
// runs (a subset for a slower store).
func runCrashMatrix(t *testing.T, states crashStates, scenarios []crashScenario, firstKillsOnly bool) {
	root := modelTempDir(t)
	for si, sc := range scenarios {
		proj := modelProject(t, "propagate")
		if sc.flat {
			proj = modelProject(t, "flat")
		}
		if sc.noMerge {
			proj = modelProject(t, "propagate-nomerge")
		}
		t.Run(strings.ReplaceAll(sc.name, " ", "-"), func(t *testing.T) {
			// The checkpoint: prepared, changed, not yet synced.
			base := filepath.Join(root, fmt.Sprint(si), "base")
			if err := os.MkdirAll(base, 0o755); err != nil {
				t.Fatal(err)
			}
			w := newCrashWorld(t, states, proj, base)
			defer w.remove()
			w.run(crashPlan{At: 0}) // creates the databases and the link state, killed at once
			sc.prepare(w)
			sc.change(w)
			// A probe run on a copy lists the calls the run makes.
			probe := w.copyTo(base + "-probe")
			calls, _, _, err := probe.run(noCrash)
			if err != nil {
				t.Fatal(err)
			}
			probe.remove()

			seen := map[string]bool{}
			cases := 0
			// try runs one case: the run killed as first says, then (when second is not
			// noCrash) the recovery run killed as second says, then the settling runs. It
			// returns the calls of the run after the first kill, when second is noCrash.
			try := func(first, second crashPlan) []string {
				cases++
				cw := w.copyTo(filepath.Join(root, fmt.Sprint(si), fmt.Sprint(cases)))
				defer cw.remove()
				_, label, _, _ := cw.run(first)
				calls, dead2, _, _ := cw.run(second)
				if dead2 != "" {
					label += " → recovery killed at " + dead2
				} else if second.At >= 0 {
					return nil // the recovery run made fewer calls than the plan reaches
				}
				seen[label] = true
				cw.settle("the run after the kills (" + label + ")")
				if rep := cw.settle("the quiet run (" + label + ")"); rep.Writes() > 0 {
					t.Errorf("killed %s: the quiet run wrote %d times", label, rep.Writes())
				}
				if err := cw.check(sc.want); err != nil {
					t.Errorf("killed %s: %v", label, err)
				}
				return calls
			}
			writes := func(call string) bool {
				for _, w := range []string{"create", "update", "delete", "commit"} {
					if strings.Contains(call, w) {
						return true
					}
				}
				return false
			}
			for at, call := range calls {
				applied := []int{-1}
				if writes(call) && !strings.HasPrefix(call, "commit") {
					applied = []int{0, 1, -1}
				}
				if strings.HasSuffix(call, deferredMark) {
					try(crashPlan{At: at, Lost: true}, noCrash)
				}
				for _, a := range applied {
					first := crashPlan{At: at, Applied: a}
					recovery := try(first, noCrash)
					if !writes(call) || a == 1 {
						continue // recovery after a kill before anything was written is a first run
					}
					// The recovery run killed at each of its writes and commits.
					for rat, rcall := range recovery {
						if firstKillsOnly {
							break
						}
						if writes(rcall) {
							try(first, crashPlan{At: rat, Applied: -1})
							if !strings.HasPrefix(rcall, "commit") {
								try(first, crashPlan{At: rat, Applied: 0})
							}
						}
					}
				}
			}
			labels := make([]string, 0, len(seen))
			for l := range seen {
				labels = append(labels, l)
			}
			sort.Strings(labels)
			t.Logf("%d cases over %d calls (%s); distinct crash points: %d", cases, len(calls), strings.Join(calls, ", "), len(labels))
			for _, want := range crashBoundaries(sc.name) {
				if firstKillsOnly && strings.HasPrefix(want, "→ recovery killed at ") {
					continue
				}
				found := false
				for _, l := range labels {
					if strings.Contains(l, want) {
						found = true
					}
				}
				if !found {
					t.Errorf("no case killed the run %q; the cases were:\n  %s", want, strings.Join(labels, "\n  "))
				}
			}
		})
	}
}

// crashBoundaries are the step boundaries each scenario must have been killed at (as the
// crash labels name them): after the intent and before the write ("0 of"), mid-batch ("1 of
// 2"), after the write with its response lost ("2 of 2"), after the link is saved, and during
// recovery.
func crashBoundaries(scenario string) []string {
	side := "target"
	if strings.Contains(scenario, " to source") {
		side = "source"
	}
	verb := strings.Fields(scenario)[0]
	out := []string{
		side + " " + verb + ", 0 of ", // after the intent (create) or the plan, before the write
		"→ recovery killed at " + side + " " + verb,
		"→ recovery killed at commit",
	}
	switch verb {
	case "create":
		out = append(out, side+" create, 1 of 2 applied", side+" create, 2 of 2 applied", "commit (intent)", "commit (intent done, link)",
			"power loss: commit (intent done, link), deferred undone, before commit (intent done, link)")
	case "update", "delete":
		out = append(out, side+" "+verb+", 1 of 2 applied", side+" "+verb+", 2 of 2 applied")
	}
	return out
}
