package sync_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	gosync "sync"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/state"
	dsync "github.com/dataflow-sync/dataflow/engine/sync"
)

// ---- runs ----

// run runs the engine once; killAfter >= 0 kills it at that call. It returns the report of a
// run that was not killed (nil when it failed the checks).
func (w *modelWorld) run(killAfter int) *dsync.Report {
	ctx := context.Background()
	stamp := w.tick()
	for _, side := range []string{state.Source, state.Target} {
		if _, err := w.db(side).Exec("UPDATE clock SET now = ?", stamp); err != nil {
			w.t.Fatal(err)
		}
	}
	pre := w.snapshot()
	conns := w.conns
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	k := &modelKiller{budget: killAfter, cancel: cancel, rng: rand.New(rand.NewSource(w.rng.Int63()))}
	shop := &modelConn{Conn: conns["shop"], k: k, chunk: w.v.chunk, made: w.made, side: state.Source}
	store := &modelConn{Conn: conns["store"], k: k, chunk: w.v.chunk, made: w.made, side: state.Target, ids: &w.engID}
	runConns := map[string]connector.Conn{"shop": shop, "store": store}
	if w.v.finder {
		runConns = map[string]connector.Conn{"shop": modelFinderConn{shop}, "store": modelFinderConn{store}}
	}
	runner := &dsync.Runner{
		Project: w.proj,
		Conns:   runConns,
		State:   &modelStore{Store: w.store, k: k},
		Opts: dsync.Options{BatchSize: w.v.batch, MaxDeleteShare: 1, Now: func() time.Time { return w.now },
			ClockSkew: w.v.skew, Reconcile: w.reconcile},
	}
	if w.shape != nil {
		w.shape.wrap(runner)
	}
	rep, err := runner.Run(runCtx)
	w.runs++
	if rep != nil && len(rep.Flows) > 0 {
		f := rep.Flows[0]
		for what, n := range map[string]int{"merged": f.Merged, "created in the target": f.CreatedTarget, "created in the source": f.CreatedSource,
			"updated in the target": f.UpdatedTarget, "updated in the source": f.UpdatedSource, "conflicts": f.Conflicts, "deleted": f.Deleted,
			"unlinked": f.Unlinked, "recovered": f.Recovered} {
			if n > 0 {
				w.cover("runs that " + what)
			}
		}
	}
	if k.dead {
		w.cover("runs killed: " + strings.SplitN(k.note, ",", 2)[0])
		w.kills++
		w.killedSince = true
		w.logf("run killed at call %d: %s", killAfter, k.note)
		return nil
	}
	w.logf("run @%s: %s", stamp[11:], modelSummary(rep))
	if w.shape != nil {
		if judged, done := w.shape.judge(w, pre, rep, err); done {
			return judged
		}
	}
	if err != nil {
		w.t.Errorf("seed %d: a run that was not killed failed: %v", w.seed, err)
		return nil
	}
	if rep.Stopped {
		w.t.Errorf("seed %d: a run that was not killed stopped", w.seed)
		return nil
	}
	if rep.Failed() > 0 {
		dead, _ := w.store.DeadLetters(ctx, w.flow.ID())
		var reasons []string
		for _, d := range dead {
			reasons = append(reasons, fmt.Sprintf("%s %s: %s", d.Side, d.RecordID, d.Reason))
		}
		w.t.Errorf("seed %d: %d records failed in a run that was not killed:\n  %s", w.seed, rep.Failed(), strings.Join(reasons, "\n  "))
		return nil
	}
	w.checkRun(pre)
	if w.t.Failed() {
		return nil
	}
	return rep
}

func modelSummary(rep *dsync.Report) string {
	if rep == nil || len(rep.Flows) == 0 {
		return "no report"
	}
	f := rep.Flows[0]
	return fmt.Sprintf("read %d+%d, created →T %d →S %d, merged %d, updated →T %d →S %d, conflicts %d, deleted %d, unlinked %d, recovered %d, waiting %d, failed %d",
		f.ReadSource, f.ReadTarget, f.CreatedTarget, f.CreatedSource, f.Merged, f.UpdatedTarget, f.UpdatedSource,
		f.Conflicts, f.Deleted, f.Unlinked, f.Recovered, f.Waiting, f.Failed)
}

// ---- the kill ----

var errModelKilled = errors.New("killed (the model test's simulated crash)")

// modelKiller kills a run at a given call: that call and every later one of the connections
// and the link state fail, and the run's context is cancelled. A write interrupted by the kill
// may have been applied in part or in full first.
type modelKiller struct {
	mu     gosync.Mutex
	budget int // calls left before the kill; < 0: never
	dead   bool
	cancel context.CancelFunc
	rng    *rand.Rand
	note   string
}

// point is called before each call; it reports whether the call goes ahead, and whether the
// kill happens at this call (then the call is not made, or made in part by the caller).
func (k *modelKiller) point() (goAhead, killNow bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case k.dead:
		return false, false
	case k.budget < 0:
		return true, false
	case k.budget == 0:
		return false, true
	}
	k.budget--
	return true, false
}

func (k *modelKiller) die(note string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dead, k.note = true, note
	k.cancel()
}

// applied picks how much of an interrupted batch of n the system applied.
func (k *modelKiller) applied(n int) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.rng.Intn(n + 1)
}

// modelConn is a connection whose calls the killer can interrupt. It also re-chunks scans and
// gives records created in the target sequential ids, so that runs are reproducible.
type modelConn struct {
	connector.Conn
	k     *modelKiller
	chunk int
	ids   *int // non-nil: give new records text ids
	side  string
	made  map[modelKey]bool // the records the engine created
}

func (c *modelConn) create(ctx context.Context, entity string, data []map[string]any) ([]connector.Result, error) {
	res, err := c.Conn.Create(ctx, entity, data)
	for _, r := range res {
		if r.Err == nil {
			c.made[modelKey{c.side, r.Record.ID}] = true
		}
	}
	return res, err
}

func (c *modelConn) Scan(ctx context.Context, entity, since string, fn func([]connector.Record) error) error {
	if ok, kill := c.k.point(); !ok {
		if kill {
			c.k.die("before Scan " + entity)
		}
		return errModelKilled
	}
	return c.Conn.Scan(ctx, entity, since, func(recs []connector.Record) error {
		for start := 0; start < len(recs); start += c.chunk {
			if ok, kill := c.k.point(); !ok {
				if kill {
					c.k.die(fmt.Sprintf("in Scan %s, before records %d..", entity, start))
				}
				return errModelKilled
			}
			if err := fn(recs[start:min(start+c.chunk, len(recs))]); err != nil {
				return err
			}
		}
		return nil
	})
}

func (c *modelConn) Get(ctx context.Context, entity string, ids []string) (map[string]connector.Record, error) {
	if ok, kill := c.k.point(); !ok {
		if kill {
			c.k.die("before Get " + entity)
		}
		return nil, errModelKilled
	}
	return c.Conn.Get(ctx, entity, ids)
}

func (c *modelConn) Create(ctx context.Context, entity string, data []map[string]any) ([]connector.Result, error) {
	if c.ids != nil {
		withIDs := make([]map[string]any, len(data))
		for i, d := range data {
			m := make(map[string]any, len(d)+1)
			for k, v := range d {
				m[k] = v
			}
			if m["id"] == nil {
				*c.ids++
				m["id"] = fmt.Sprintf("e%05d", *c.ids)
			}
			withIDs[i] = m
		}
		data = withIDs
	}
	ok, kill := c.k.point()
	if kill {
		n := c.k.applied(len(data))
		if n > 0 {
			c.create(context.Background(), entity, data[:n])
		}
		c.k.die(fmt.Sprintf("in Create %s, %d of %d created", entity, n, len(data)))
	}
	if !ok {
		return nil, errModelKilled
	}
	return c.create(ctx, entity, data)
}

func (c *modelConn) Update(ctx context.Context, entity string, recs []connector.Record) ([]connector.Result, error) {
	ok, kill := c.k.point()
	if kill {
		n := c.k.applied(len(recs))
		if n > 0 {
			c.Conn.Update(context.Background(), entity, recs[:n])
		}
		c.k.die(fmt.Sprintf("in Update %s, %d of %d updated", entity, n, len(recs)))
	}
	if !ok {
		return nil, errModelKilled
	}
	return c.Conn.Update(ctx, entity, recs)
}

func (c *modelConn) Delete(ctx context.Context, entity string, ids []string) ([]error, error) {
	ok, kill := c.k.point()
	if kill {
		n := c.k.applied(len(ids))
		if n > 0 {
			c.Conn.Delete(context.Background(), entity, ids[:n])
		}
		c.k.die(fmt.Sprintf("in Delete %s, %d of %d deleted", entity, n, len(ids)))
	}
	if !ok {
		return nil, errModelKilled
	}
	return c.Conn.Delete(ctx, entity, ids)
}

// Capabilities are the connection's, so that the runs take production's paths (read-ahead
// scans, prebuilt creates, large batches, counts), with the calls of its counters going
// through the killer. It finds records only in modelFinderConn: the variant chooses.
func (c *modelConn) Capabilities() connector.Capabilities {
	caps := c.Conn.Capabilities()
	caps.Finder = nil
	if caps.Counter != nil {
		caps.Counter = c
	}
	if caps.DeleteCounter != nil {
		caps.DeleteCounter = c
	}
	return caps
}

func (c *modelConn) Count(ctx context.Context, entity string) (int, error) {
	if ok, kill := c.k.point(); !ok {
		if kill {
			c.k.die("before Count " + entity)
		}
		return 0, errModelKilled
	}
	return c.Conn.Capabilities().Counter.Count(ctx, entity)
}

func (c *modelConn) Deletions(ctx context.Context, entity string) (int64, bool, error) {
	if ok, kill := c.k.point(); !ok {
		if kill {
			c.k.die("before Deletions " + entity)
		}
		return 0, false, errModelKilled
	}
	return c.Conn.Capabilities().DeleteCounter.Deletions(ctx, entity)
}

// modelFinderConn is a modelConn that finds records by property values (Capabilities.Finder),
// a call the killer can interrupt like any other.
type modelFinderConn struct{ *modelConn }

func (c modelFinderConn) Capabilities() connector.Capabilities {
	caps := c.modelConn.Capabilities()
	caps.Finder = c
	return caps
}

func (c modelFinderConn) Find(ctx context.Context, entity string, paths []string, keys [][]string) ([]connector.Record, error) {
	if ok, kill := c.k.point(); !ok {
		if kill {
			c.k.die("before Find " + entity)
		}
		return nil, errModelKilled
	}
	return c.Conn.Capabilities().Finder.Find(ctx, entity, paths, keys)
}

// modelStore is the link state under the killer: after the kill nothing is committed; a
// commit is a point where the kill can happen (before it).
type modelStore struct {
	state.Store
	k *modelKiller
}

func (s *modelStore) Begin(ctx context.Context) (state.Tx, error) {
	if s.k.deadNow() {
		return nil, errModelKilled
	}
	tx, err := s.Store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &modelTx{Tx: tx, k: s.k}, nil
}

// BeginDeferred forwards the store's state.Deferring, as in production: the links committed
// on the second goroutine are deferred commits.
func (s *modelStore) BeginDeferred(ctx context.Context) (state.Tx, error) {
	d, ok := s.Store.(state.Deferring)
	if !ok {
		return s.Begin(ctx)
	}
	if s.k.deadNow() {
		return nil, errModelKilled
	}
	tx, err := d.BeginDeferred(ctx)
	if err != nil {
		return nil, err
	}
	return &modelTx{Tx: tx, k: s.k}, nil
}

// Overlaps forwards the store's state.Overlapping, so that links are committed on a second
// goroutine as in production.
func (s *modelStore) Overlaps() bool {
	o, ok := s.Store.(state.Overlapping)
	return ok && o.Overlaps()
}

func (k *modelKiller) deadNow() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.dead
}

type modelTx struct {
	state.Tx
	k *modelKiller
}

func (tx *modelTx) Commit() error {
	ok, kill := tx.k.point()
	if kill {
		tx.k.die("before a commit of the link state")
	}
	if !ok {
		tx.Tx.Rollback()
		return errModelKilled
	}
	return tx.Tx.Commit()
}
