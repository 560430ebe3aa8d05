package sync_test

// A randomized model-based test of the sync semantics (docs/semantics.md §3). For each seed, two SQLite
// systems (testdata/model) go through a random interleaving of user edits (creates, some with
// a code that an unlinked record of the other side has, so that merge links them; edits of
// one property, stamped with a strictly later time; clears; deletes; edits of a record's parts,
// a list that is child rows in the source and a JSON list in the store: parts added, removed,
// their quantities set or cleared, often on both sides of a pair, so that the lists differ
// from the base on both sides, in length too), runs of the engine, and
// runs killed at a random instant. A run is killed by wrapping the connections and the link
// state: after a random number of calls every call fails and the context is cancelled; a write
// interrupted by the kill may have been applied in part (a prefix of its batch) or in full
// without the engine learning it, and nothing the engine does after the kill reaches the
// systems or the state. The seed ends with quiet runs and the invariants:
//
//   - after every run that was not killed: the run succeeded (no error, no failed record, no
//     intent left), linked pairs agree on every property, and the value of every property of
//     every linked pair is what the three-way merge says it must be, computed by the model
//     from the values before the run and the values at the last successful run (the base).
//     Without a kill since that run the expectation is exact (one side changed: its value;
//     both: the newer record's, ties to the source; a first merge: a non-empty value beats an
//     empty one, then the newer record); after a kill the base the engine holds may be newer
//     than the model's, so a property changed on both sides may end with either value, but
//     with no other. The parts are merged part by part (a part is named by its label, which
//     the store holds as the part's id): a part added on one side is added, one removed on
//     one side and not changed on the other is removed, a quantity changed on one side is
//     that side's, and a part changed on both sides (two quantities, or a removal and a
//     change) is the newer record's; after a kill each part is as one side had it, and no
//     part is there twice. A record whose copy the engine created before a kill and had not
//     linked yet (it has the intent's merge key; codes are unique on each side) must be
//     adopted and merged three-way from what the create sent (the intent), so that edits
//     made to either record since the kill survive (semantics §3.7: a kill loses no update);
//   - with delete: propagate, a record the user deleted does not come back: neither its
//     linked partner nor a copy the engine made of it before a kill survives the quiet runs;
//   - after the quiet runs (runs until one writes nothing, at most 5): every link points at
//     existing records, every record on each side is linked exactly once (create is always
//     both ways, so nothing stays unlinked), no code appears twice on either side, no intent,
//     dead letter or waiting record is left, and one more run writes nothing.
//
// The seed picks a variant: delete propagate or keep; systems that stamp every write
// themselves (triggers, as Squarespace does) or only the user's edits; stamps of a fixed
// width or RFC 3339 with as many fraction digits as needed (every fourth seed); the number of
// records per Scan callback (the wrapper re-chunks the connector's batches);
// Options.BatchSize; and connections that find records by merge keys (connector.Finder) or not
// (every other seed); and, in two seeds of five, a flow that also syncs the ids each system
// assigns on create to the other (items-to-things-*-flowback.yaml), which must flow back in
// the run that creates the record. The regressions replay their steps without parts edits.
//
// divergence_model_test.go adds steps for what a system's listing does: a run whose listing
// of one side is reordered while it pages, and one whose listing of one side is empty (an
// expired token), held by the circuit breaker; and after each reconcile run the check that
// every record is linked exactly once and nothing is duplicated.
//
// What the model leaves out, on purpose: users who make duplicates themselves (a new record
// with the code of a linked record, or of a record the engine is copying), clearing a code
// (NOT NULL in the source), edits while a run is under way (the run is a unit here; a
// concurrent edit is a race docs/semantics.md §3 says nothing about), and the circuit breaker
// (Options.MaxDeleteShare is 1) but in the emptied listing's run.
//
// DATAFLOW_MODEL_SEEDS=N runs N seeds (default 500, 100 with -short). A failure prints the
// seed, the variant and the step log; replay it with
//
//	go test ./engine/sync/ -run 'TestModel/seed=123$' -v
//
// Replays are exact: the engine assigns no random ids here (the wrapper gives new target
// records sequential ids, the way a system would) and the fake clock drives every stamp.

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
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

const modelFixtures = "../../testdata/model"

// modelRegressions are seeds that found engine bugs, run by name whatever the seed count
// (-run 'TestModel/regression=adopt-base'). Each failed at commit 3e40568.
var modelRegressions = []struct {
	name string
	seed int64
}{
	// A target record is created; the run is killed after its copy was created in the source
	// and before the link was committed; the user edits the target record; recovery adopted
	// the copy with the base taken from the target as it is now, so the edit was never seen
	// as a change: the pair disagreed for good (create.go, adopt: rebase with the current
	// record instead of the intent's data).
	{"adopt-base-is-the-intent", 497},
	// The run is killed after creating a source copy of a target record; the user edits the
	// copy; recovery looked for the copy by its full content only, so the edited copy was not
	// adopted but linked by merge criteria as a first merge, where "a non-empty value beats
	// an empty one" undid the user's clear (create.go, recoverIntents: contains() only).
	{"adopt-an-edited-copy-by-merge-key", 328},
	// delete: keep. The user deletes a target record; its source partner is not edited again,
	// so incremental reads never return it: the link to the deleted record stayed forever and
	// the record was never created again (flow.go: no delete pass under keep; batch.go: the
	// link was dropped only when the survivor happened to be read).
	{"keep-dangling-link", 185},
	// delete: keep. The survivor of a deleted target is read (it was edited), its link
	// dropped, but it was not created again in that run nor marked to be read again, and
	// the watermark moved past it: it stayed unlinked (batch.go, the partner-gone branch).
	{"keep-survivor-created-again", 476},
	// delete: propagate. A source record is created, the run killed after its copy was made
	// in the target; the user deletes the source record; recovery left the copy unlinked
	// ("the record it was created from is gone") and a later run created it back in the
	// source: the delete was lost (create.go, adopt).
	{"propagate-orphan-copy-deleted", 208},
	// Stamps in RFC 3339 with a variable number of fraction digits (nano variant). A run at
	// 00:00:21Z stamps what it writes in the target with 21Z and takes it as the watermark; the
	// user edits a target record at 21.723Z; the next run reads "modifiedOn >= '…21Z'", which
	// compares text, and "…21.723Z" sorts before "…21Z": the edit is never read (connector
	// sqlite, conn.go Scan: the since filter compares text, while the engine's watermark is
	// the latest stamp as a time). Still failing at 1718669.
	{"watermark-compares-stamps-as-text", 19},
	// delete: keep, systems that stamp only the user's edits. Runs are killed after the
	// engine created source copies of target records; the user deletes the originals; recovery
	// leaves each copy as an unlinked record (create.go, dropOrphan under keep), but nothing
	// marks it to be read again and, never edited, it never comes out of an incremental read:
	// it stays unlinked for good. Still failing at 1718669.
	{"keep-orphan-copy-stays-unlinked", 2118},
}

// modelFailures counts failing seeds, so that only the first few print their whole step log.
var modelFailures atomic.Int32

// modelCoverage counts what the seeds exercised, printed with -v: a model that checks nothing
// passes too.
var modelCoverage struct {
	gosync.Mutex
	counts map[string]int
}

func (w *modelWorld) cover(what string) {
	modelCoverage.Lock()
	defer modelCoverage.Unlock()
	if modelCoverage.counts == nil {
		modelCoverage.counts = map[string]int{}
	}
	modelCoverage.counts[what]++
}

func TestModel(t *testing.T) {
	n := 500
	if testing.Short() {
		n = 100
	}
	if s := os.Getenv("DATAFLOW_MODEL_SEEDS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			t.Fatalf("DATAFLOW_MODEL_SEEDS=%q: want a number of seeds", s)
		}
		n = v
	}
	t.Cleanup(func() {
		modelCoverage.Lock()
		defer modelCoverage.Unlock()
		var lines []string
		for k, v := range modelCoverage.counts {
			lines = append(lines, fmt.Sprintf("%8d  %s", v, k))
		}
		sort.Strings(lines)
		t.Logf("what the seeds exercised:\n%s", strings.Join(lines, "\n"))
	})
	for _, r := range modelRegressions {
		seed := r.seed
		t.Run("regression="+r.name, func(t *testing.T) {
			t.Parallel()
			runModel(t, seed, true)
		})
	}
	for seed := int64(1); seed <= int64(n); seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			runModel(t, seed, false)
		})
	}
}

// The properties of the flow, in the order of its property table.
var modelProps = []struct{ src, tgt string }{
	{"code", "sku"}, {"name", "title"}, {"qty", "amount"}, {"price", "cost"}, {"active", "enabled"},
}

const (
	modelSrcTable, modelTgtTable = "items", "things"
	modelSrcStamp, modelTgtStamp = "updated_at", "modifiedOn"
	modelStampLayout             = "2006-01-02T15:04:05.000000Z"
)

type modelVariant struct {
	del     string        // the flow's delete policy: propagate or keep
	stamped bool          // the systems stamp every write themselves (triggers), not only the user's edits
	chunk   int           // records per Scan callback
	batch   int           // Options.BatchSize
	nano    bool          // stamps in RFC 3339 with a variable number of fraction digits
	finder  bool          // the connections find records by merge keys (connector.Finder)
	skew    time.Duration // Options.ClockSkew: tiny, so that watermarks follow the fake clock, or the default
	// flowBack: the flow also syncs the ids each system assigns on create to the other
	// (items-to-things-*-flowback.yaml): a create's assigned id must flow back in the same run.
	flowBack bool
}

func (v modelVariant) String() string {
	return fmt.Sprintf("delete=%s stamped=%v nano-stamps=%v scan-chunk=%d batch=%d finder=%v skew=%s flow-back=%v", v.del, v.stamped, v.nano, v.chunk, v.batch, v.finder, v.skew, v.flowBack)
}

type modelKey struct{ side, id string }

// modelSnap is what both systems and the link state hold at one moment.
type modelSnap struct {
	recs    map[modelKey]connector.Record
	order   map[string][]string // ids per side, in insertion order (rowid)
	links   map[string]string   // source id → target id
	rev     map[string]string   // target id → source id
	intents []state.Intent
}

// modelBase is the last synced values of a pair, in target form, per property.
type modelBase struct{ s, t []string }

type modelWorld struct {
	t     *testing.T
	seed  int64
	rng   *rand.Rand
	v     modelVariant
	dir   string
	proj  *mapping.Project
	flow  *mapping.Flow
	store *state.SQLite
	sys   map[string]*config.System // by system id, with the seed's paths
	conns map[string]connector.Conn // the engine's connections, by system id
	// the user's handles on the systems' databases, and read-only connections for snapshots
	src, tgt     *sql.DB
	srcRd, tgtRd connector.Conn

	now    time.Time
	ticks  int
	codes  int // codes handed out
	userID int // target ids given by the user
	engID  int // target ids given to the engine's creates
	log    []string

	base        map[[2]string]modelBase // by source id, target id: the pairs of the last successful run
	killedSince bool                    // a run was killed since the last successful run
	runs, kills int
	// gone holds, with delete: propagate, the codes of linked records the user deleted, and of
	// records whose copy the engine made before a kill and had not linked yet: no record may
	// have them after the quiet runs, unless the user gives the code to a new record again.
	gone map[string]string
	made map[modelKey]bool // the records the engine created
	// lists: the user edits the records' parts too (not in the regressions, which replay the
	// steps they were found with); lrng draws those edits, so that rng draws what it did
	// before parts existed. labels counts the parts' labels handed out.
	lists  bool
	lrng   *rand.Rand
	labels int
	// reconcile makes the next run a reconcile (Options.Reconcile).
	reconcile bool
	// drng draws the steps of divergence_model_test.go (listings reordered while paging,
	// emptied for a run), and shape, when set, is the special run one of them makes.
	drng  *rand.Rand
	shape modelRunShape
	// reordered and emptied count those steps made.
	reordered, emptied int
}

func runModel(t *testing.T, seed int64, regression bool) {
	w := newModelWorld(t, seed, regression)
	defer w.close()
	defer func() {
		if t.Failed() {
			w.dump()
		}
	}()
	w.play()
}

func (w *modelWorld) dump() {
	replay := fmt.Sprintf("go test ./engine/sync/ -run 'TestModel/seed=%d$' -v", w.seed)
	if w.seed > 100 {
		replay = fmt.Sprintf("DATAFLOW_MODEL_SEEDS=%d ", w.seed) + replay
	}
	if modelFailures.Add(1) > 3 {
		w.t.Logf("seed %d (%s) failed; for the step log: %s", w.seed, w.v, replay)
		return
	}
	w.t.Logf("seed %d, variant %s; replay: %s\nstep log:\n%s", w.seed, w.v, replay, strings.Join(w.log, "\n"))
}

func (w *modelWorld) logf(format string, args ...any) {
	w.log = append(w.log, fmt.Sprintf("%3d. ", len(w.log)+1)+fmt.Sprintf(format, args...))
}

// modelProjects holds the compiled mappings of each delete policy, loaded once: the systems'
// paths are placeholders, replaced per seed in the connections' copies of the system configs.
var modelProjects struct {
	gosync.Mutex
	byDelete map[string]*mapping.Project
}

func modelProject(t *testing.T, del string) *mapping.Project { return modelProjectOf(t, del, false) }

// modelProjectOf is modelProject of the flow-back variant's mappings too.
func modelProjectOf(t *testing.T, del string, flowBack bool) *mapping.Project {
	modelProjects.Lock()
	defer modelProjects.Unlock()
	name, extra := "items-to-things-"+del, 0
	if flowBack {
		name, extra = name+"-flowback", len(modelFlowBackProps)
	}
	if p := modelProjects.byDelete[name]; p != nil {
		return p
	}
	fixtures, err := filepath.Abs(modelFixtures)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MODEL_SHOP_DB": "shop.db", "MODEL_SHOP_INIT": "source.sql", "MODEL_STORE_DB": "store.db", "MODEL_STORE_INIT": "target.sql"}
	eng, err := engine.New(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	res, err := eng.Load(context.Background(), []string{
		filepath.Join(fixtures, "systems", "shop.yaml"), filepath.Join(fixtures, "systems", "store.yaml"),
		filepath.Join(fixtures, name+".yaml"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Diagnostics.HasErrors() || len(res.Project.Dataflows) != 1 || len(res.Project.Dataflows[0].Flows) != 1 {
		t.Fatalf("the model's mappings do not load: %v", res.Diagnostics)
	}
	if n := len(res.Project.Dataflows[0].Flows[0].Properties); n != len(modelProps)+1+extra && !(del == "flat" && n == len(modelProps)+extra) {
		t.Fatalf("the flow has %d properties, the model %d and the parts", n, len(modelProps))
	}
	if modelProjects.byDelete == nil {
		modelProjects.byDelete = map[string]*mapping.Project{}
	}
	modelProjects.byDelete[name] = res.Project
	return res.Project
}

// modelTempDir is the seed's directory. The kills are simulated at the connections, not by
// cutting the power, so durable commits buy nothing here: on Linux the files go to /dev/shm
// (the test runs four times faster than with an fsync per commit on a disk), else to
// t.TempDir(). DATAFLOW_MODEL_TMP chooses another parent directory.
func modelTempDir(t *testing.T) string {
	parent := os.Getenv("DATAFLOW_MODEL_TMP")
	if parent == "" {
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			parent = "/dev/shm"
		}
	}
	if parent != "" {
		if dir, err := os.MkdirTemp(parent, "dataflow-model-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

func newModelWorld(t *testing.T, seed int64, regression bool) *modelWorld {
	rng := rand.New(rand.NewSource(seed))
	v := modelVariant{
		del:     []string{"propagate", "keep"}[rng.Intn(2)],
		stamped: rng.Intn(2) == 0,
		chunk:   1 + rng.Intn(7),
		batch:   []int{1, 3, 7}[rng.Intn(3)],
		nano:    seed%4 == 3, // not from rng: the variant came after seeds were pinned
		// Every other seed links through Finders; the regressions replay the index, as they
		// were found with it.
		finder: !regression && seed%2 == 0,
		// Not from rng either. A clock skew allowance of minutes keeps every watermark of a
		// seed, whose fake clock moves a second a step, before the seed's first edits.
		skew: []time.Duration{time.Nanosecond, time.Nanosecond, dsync.DefaultClockSkew}[seed%3],
		// Not from rng: two seeds in five sync the ids the systems assign.
		flowBack: !regression && seed%5 < 2,
	}
	w := &modelWorld{t: t, seed: seed, rng: rng, v: v, dir: modelTempDir(t),
		lists: !regression, lrng: rand.New(rand.NewSource(seed*7919 + 17)), drng: rand.New(rand.NewSource(seed*6007 + 29)),
		now:  time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		base: map[[2]string]modelBase{}, gone: map[string]string{}, made: map[modelKey]bool{}}
	fixtures, err := filepath.Abs(modelFixtures)
	if err != nil {
		t.Fatal(err)
	}
	srcInit, tgtInit := "source.sql", "target.sql"
	if v.stamped {
		srcInit, tgtInit = "source-stamped.sql", "target-stamped.sql"
	}
	w.proj = modelProjectOf(t, v.del, v.flowBack)
	w.flow = w.proj.Dataflows[0].Flows[0]
	w.sys = map[string]*config.System{
		"shop":  modelSystem(w.flow.Dataflow.Source.Config, filepath.Join(w.dir, "shop.db"), filepath.Join(fixtures, srcInit)),
		"store": modelSystem(w.flow.Dataflow.Target.Config, filepath.Join(w.dir, "store.db"), filepath.Join(fixtures, tgtInit)),
	}
	if w.store, err = state.Open(context.Background(), filepath.Join(w.dir, "state.db"), state.ReadWrite); err != nil {
		t.Fatal(err)
	}
	// The engine's connections (opening them creates the databases from the init scripts),
	// kept for the whole seed, and read-only ones for the snapshots.
	if w.conns, err = w.open(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	ro, err := w.open(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	w.srcRd, w.tgtRd = ro["shop"], ro["store"]
	for _, db := range []struct {
		p  **sql.DB
		at string
	}{{&w.src, filepath.Join(w.dir, "shop.db")}, {&w.tgt, filepath.Join(w.dir, "store.db")}} {
		h, err := sql.Open("sqlite3", "file:"+db.at+"?_busy_timeout=10000&_synchronous=OFF")
		if err != nil {
			t.Fatal(err)
		}
		h.SetMaxOpenConns(1)
		*db.p = h
	}
	w.logf("seed %d, %s", seed, v)
	return w
}

// modelSystem is a copy of a system's configuration with the seed's database and init script.
func modelSystem(sys *config.System, path, init string) *config.System {
	c := *sys
	c.Settings = map[string]config.Setting{}
	for k, v := range sys.Settings {
		c.Settings[k] = v
	}
	c.Settings["path"] = config.Setting{Str: config.Str{Value: path, Set: true}}
	c.Settings["init"] = config.Setting{Str: config.Str{Value: init, Set: true}}
	return &c
}

func (w *modelWorld) close() {
	for _, c := range []connector.Conn{w.srcRd, w.tgtRd} {
		if c != nil {
			c.Close()
		}
	}
	for _, c := range w.conns {
		c.Close()
	}
	for _, db := range []*sql.DB{w.src, w.tgt} {
		if db != nil {
			db.Close()
		}
	}
	if w.store != nil {
		w.store.Close()
	}
}

// open opens a connection to each system, as `dataflow run` does.
func (w *modelWorld) open(ctx context.Context, readOnly bool) (map[string]connector.Conn, error) {
	registry := engine.Connectors()
	conns := map[string]connector.Conn{}
	for _, sys := range []*mapping.System{w.flow.Dataflow.Source, w.flow.Dataflow.Target} {
		driver, _ := registry.Driver(sys.Config.Connector.Value)
		entities := map[string]*schema.Entity{}
		for name, ent := range sys.Entities {
			entities[name] = ent.Schema
		}
		c, err := driver.(connector.Opener).Open(ctx, w.sys[sys.Config.ID.Value], entities, connector.OpenOptions{ReadOnly: readOnly})
		if err != nil {
			for _, o := range conns {
				o.Close()
			}
			return nil, err
		}
		conns[sys.Config.ID.Value] = c
	}
	return conns, nil
}

// tick advances the fake clock and returns the new time as a stamp.
// With the nano variant the clock moves by up to 1.5 s, now and then to a whole second, and
// stamps are RFC 3339 with as many fraction digits as needed (Go's time.RFC3339Nano, what many
// services write): "05Z", "05.5Z", "05.123Z" do not sort as text as they do as times.
func (w *modelWorld) tick() string {
	w.ticks++
	if w.v.nano {
		if w.ticks%4 == 0 {
			w.now = w.now.Truncate(time.Second).Add(time.Second) // a stamp without a fraction
		} else {
			w.now = w.now.Add(time.Duration(1+w.ticks*7919%1500) * time.Millisecond)
		}
		return w.now.Format(time.RFC3339Nano)
	}
	w.now = w.now.Add(time.Second)
	return w.now.Format(modelStampLayout)
}

func (w *modelWorld) db(side string) *sql.DB {
	if side == state.Source {
		return w.src
	}
	return w.tgt
}

func modelTable(side string) (table, stamp string) {
	if side == state.Source {
		return modelSrcTable, modelSrcStamp
	}
	return modelTgtTable, modelTgtStamp
}

func modelCol(side string, pi int) string {
	if side == state.Source {
		return modelProps[pi].src
	}
	return modelProps[pi].tgt
}

func modelOther(side string) string {
	if side == state.Source {
		return state.Target
	}
	return state.Source
}
