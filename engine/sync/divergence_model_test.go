package sync_test

// Steps of the randomized model test (model*_test.go) for the silent divergences of issue 14
// that come from what a system's listing does, not from what users edit:
//
//   - a run whose listing of one side is reordered while it pages: the wrapper pages by
//     offset over an order (records the run wrote move to the end, then by stamp and id) that
//     the run's own writes change, so later pages skip records and repeat others; unless the
//     connection declares a snapshot scan (connector.Capabilities.SnapshotScan), and then it
//     hands out pages of one consistent read. A pair the run did not see may stay as it was
//     (checkRun leaves it out), but the next run must sync it: no watermark passes a record
//     the run skipped, and a record skipped unlinked is linked by the next run;
//   - a run in which one side's listing is empty, as an expired token makes it: every Scan,
//     Get and Find of that side answers nothing. Nothing may be unlinked, deleted or created
//     (the circuit breaker holds the mass disappearance as pending, the run stops with
//     ErrBreaker, nothing is written); the model then rejects the pending change or leaves it,
//     the listing comes back and the next run, a reconcile or not, must leave every pair in
//     agreement, with the values the three-way merge gives (checkRun).
//
// Their draws come from a generator of their own (drng), which also stands in for the
// world's during the step, so that the other steps of a seed draw what they did before.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
	dsync "github.com/dataflow-sync/dataflow/engine/sync"
)

// modelFlowBackProps are the properties the flow-back variant adds after modelProps: ids
// that the creating system assigns and that flow to the other (items-to-things-*-flowback.yaml).
var modelFlowBackProps = []struct{ src, tgt string }{{"id", "item_id"}, {"thing_id", "id"}}

// assigned reports whether the flow's property i is one of modelFlowBackProps.
func (w *modelWorld) assigned(i int) bool {
	return w.v.flowBack && i >= len(modelProps) && i < len(modelProps)+len(modelFlowBackProps)
}

// modelRunShape is a special run: wrap changes the runner (its connections, its options)
// before the run; judge checks what the run did instead of run's checks when it says done;
// unread reports a pair that the run could not see and that checkRun must leave out.
type modelRunShape interface {
	wrap(r *dsync.Runner)
	judge(w *modelWorld, pre *modelSnap, rep *dsync.Report, err error) (*dsync.Report, bool)
	unread(w *modelWorld, pre *modelSnap, s, t string, vs, vt []string) bool
}

// divergenceStep makes, now and then, one of this file's steps.
func (w *modelWorld) divergenceStep() {
	saved := w.rng
	w.rng = w.drng
	defer func() { w.rng = saved }()
	if w.v.flowBack && w.drng.Intn(100) < 4 {
		w.editAssigned()
	}
}

// plainRun is a step's run: now and then a reordered or an emptied listing's run instead,
// at most one of each per seed (each costs a run more, and the package's test time is the
// budget), in seeds that edit parts (not the regressions, which replay their steps).
func (w *modelWorld) plainRun() {
	if !w.lists {
		w.run(-1)
		return
	}
	saved := w.rng
	w.rng = w.drng
	p := w.drng.Intn(100)
	switch {
	case p < 25 && w.reordered == 0 && !w.killedSince:
		w.reordered++
		w.reorderedRun()
	case p >= 25 && p < 40 && w.emptied == 0:
		if side, ok := w.emptiable(); ok {
			w.emptied++
			w.emptiedRun(side)
			break
		}
		w.rng = saved
		w.run(-1)
	default:
		w.rng = saved
		w.run(-1)
	}
	w.rng = saved
}

// editOne sets one property (not the code) of a record, stamped, as edit does.
func (w *modelWorld) editOne(side, id string) {
	pi := 1 + w.drng.Intn(len(modelProps)-1)
	v := w.value(side, pi, false)
	table, stampCol := modelTable(side)
	stamp := w.tick()
	w.exec(side, "UPDATE "+table+" SET "+modelCol(side, pi)+" = ?, "+stampCol+" = ? WHERE id = ?", v, stamp, id)
	w.logf("edit %s %s: %s = %s @%s", side, id, modelCol(side, pi), mapping.Canonical(v), stamp[11:])
}

// editAssigned is a user's edit, stamped, of the copy of an assigned id on the side it flows
// to: a store's item_id or a shop's thing_id set to a value of its own. The property is one
// way, so the next run must write the assigned id back (checkRun: the pair agrees on it).
func (w *modelWorld) editAssigned() {
	side := []string{state.Source, state.Target}[w.drng.Intn(2)]
	ids := w.ids(side)
	if len(ids) == 0 {
		return
	}
	id := ids[w.drng.Intn(len(ids))]
	table, stampCol := modelTable(side)
	col, v := "item_id", any(int64(900+w.drng.Intn(100)))
	if side == state.Source {
		col, v = "thing_id", fmt.Sprintf("x%05d", w.drng.Intn(100))
	}
	stamp := w.tick()
	w.exec(side, "UPDATE "+table+" SET "+col+" = ?, "+stampCol+" = ? WHERE id = ?", v, stamp, id)
	w.cover("user edits of an assigned id's copy")
	w.logf("edit %s %s: %s = %s @%s (one way: the next run writes it back)", side, id, col, mapping.Canonical(v), stamp[11:])
}

func modelSideName(side string) string {
	if side == state.Source {
		return "shop"
	}
	return "store"
}

// ---- a listing reordered while paging ----

// modelListing is one side's listing in a reordered run.
type modelListing struct {
	side     string
	page     int  // records per page
	snapshot bool // declares SnapshotScan and pages one read; else pages by offset, live
	seq      int
	moved    map[string]int // record id → when this run last wrote it (it moves to the end)
	skipped  map[string]bool
	repeated int // records a later page handed out again
	inner    connector.Conn
}

func (l *modelListing) wrap(r *dsync.Runner) {
	name := modelSideName(l.side)
	l.inner = r.Conns[name]
	r.Conns[name] = &modelListConn{Conn: l.inner, l: l}
}

func (l *modelListing) judge(*modelWorld, *modelSnap, *dsync.Report, error) (*dsync.Report, bool) {
	return nil, false
}

// unread: a pair that disagrees after the run, one of whose records the listing skipped and
// that the run did not touch (it was linked before and neither record changed).
func (l *modelListing) unread(w *modelWorld, pre *modelSnap, s, t string, vs, vt []string) bool {
	id := s
	if l.side == state.Target {
		id = t
	}
	if !l.skipped[id] || pre.links[s] != t {
		return false
	}
	preS, okS := pre.recs[modelKey{state.Source, s}]
	preT, okT := pre.recs[modelKey{state.Target, t}]
	if !okS || !okT {
		return false
	}
	ps, pt := w.vals(state.Source, preS), w.vals(state.Target, preT)
	differ := false
	for i := range vs {
		if ps[i] != vs[i] || pt[i] != vt[i] {
			return false // the run wrote the pair: it saw it
		}
		differ = differ || vs[i] != vt[i]
	}
	if differ {
		w.cover("pairs a reordered listing hid from a run")
	}
	return differ
}

// order sorts records as the system lists them: those the run wrote last, in the order it
// wrote them; before them the others by stamp (unstamped first, then times, then the rest as
// text) and id.
func (l *modelListing) order(recs []connector.Record) {
	_, col := modelTable(l.side)
	key := func(r connector.Record) (int, int, time.Time, string) {
		text := mapping.IDString(r.Data[col])
		if r.Data[col] == nil {
			return l.moved[r.ID], 0, time.Time{}, ""
		}
		if t, err := time.Parse(time.RFC3339Nano, text); err == nil {
			return l.moved[r.ID], 1, t, ""
		}
		return l.moved[r.ID], 2, time.Time{}, text
	}
	sort.SliceStable(recs, func(i, j int) bool {
		mi, ki, ti, si := key(recs[i])
		mj, kj, tj, sj := key(recs[j])
		switch {
		case mi != mj:
			return mi < mj
		case ki != kj:
			return ki < kj
		case !ti.Equal(tj):
			return ti.Before(tj)
		case si != sj:
			return si < sj
		}
		return recs[i].ID < recs[j].ID
	})
}

func (l *modelListing) wrote(ids ...string) {
	for _, id := range ids {
		l.seq++
		l.moved[id] = l.seq
	}
}

// modelListConn is a side's connection in a reordered run.
type modelListConn struct {
	connector.Conn
	l *modelListing
}

// Capabilities are the side's, but for its scan: paged here, on the run's goroutine (the
// listing's order follows the run's writes), and a snapshot only when this run says so.
func (c *modelListConn) Capabilities() connector.Capabilities {
	caps := c.Conn.Capabilities()
	caps.SnapshotScan, caps.ConcurrentScan = c.l.snapshot, false
	return caps
}

// readAll reads what the listing holds now, in its order.
func (c *modelListConn) readAll(ctx context.Context, entity, since string) ([]connector.Record, error) {
	var all []connector.Record
	err := c.Conn.Scan(ctx, entity, since, func(recs []connector.Record) error {
		all = append(all, recs...)
		return nil
	})
	c.l.order(all)
	return all, err
}

func (c *modelListConn) Scan(ctx context.Context, entity, since string, fn func([]connector.Record) error) error {
	l := c.l
	if l.snapshot {
		all, err := c.readAll(ctx, entity, since)
		if err != nil {
			return err
		}
		for start := 0; start < len(all); start += l.page {
			if err := fn(all[start:min(start+l.page, len(all))]); err != nil {
				return err
			}
		}
		return nil
	}
	// Paged by offset: each page is read anew, so what the run wrote meanwhile moved.
	expected := map[string]bool{}
	handed := map[string]bool{}
	for off, first := 0, true; ; off, first = off+l.page, false {
		all, err := c.readAll(ctx, entity, since)
		if err != nil {
			return err
		}
		if first {
			for _, r := range all {
				expected[r.ID] = true
			}
		}
		page := all[min(off, len(all)):min(off+l.page, len(all))]
		for _, r := range page {
			if handed[r.ID] {
				l.repeated++
			}
			handed[r.ID] = true
		}
		if len(page) > 0 {
			if err := fn(page); err != nil {
				return err
			}
		}
		if len(page) < l.page {
			break
		}
		if off > 100000 {
			return fmt.Errorf("the reordered listing of %s does not end", entity)
		}
	}
	for id := range expected {
		if !handed[id] {
			l.skipped[id] = true
		}
	}
	return nil
}

func (c *modelListConn) Create(ctx context.Context, entity string, data []map[string]any) ([]connector.Result, error) {
	res, err := c.Conn.Create(ctx, entity, data)
	for _, r := range res {
		if r.Err == nil && r.Record.ID != "" {
			c.l.wrote(r.Record.ID)
		}
	}
	return res, err
}

func (c *modelListConn) Update(ctx context.Context, entity string, recs []connector.Record) ([]connector.Result, error) {
	res, err := c.Conn.Update(ctx, entity, recs)
	for i, r := range res {
		if r.Err == nil && i < len(recs) {
			c.l.wrote(recs[i].ID)
		}
	}
	return res, err
}

// reorderedRun runs the engine once with one side's listing reordered while paging (or, if
// the connection declares a snapshot scan, paged from one read), then once more as usual: the
// records the reordered run skipped must be synced by then (checkRun), those unlinked linked.
// After a kill the model does not know the engine's base, which the pairs the run leaves as
// they were keep: the step waits for a successful run.
func (w *modelWorld) reorderedRun() {
	// Mostly the source: the source's pass comes first and writes to the source what the
	// target changed; by the target's pass the pairs read are in sync, and it writes little
	// to the target while it pages.
	l := &modelListing{side: []string{state.Source, state.Source, state.Source, state.Target}[w.drng.Intn(4)], page: 1 + w.drng.Intn(2),
		snapshot: w.drng.Intn(4) == 0, moved: map[string]int{}, skipped: map[string]bool{}}
	// Edits on both sides first, so that the run has records to read on the paged side and
	// writes to make to it while it pages (the records it writes move to the end): linked
	// pairs edited on both sides, the other side later, and records edited on either.
	snap := w.snapshot()
	var pairs [][2]string
	for s, t := range snap.links {
		if _, ok := snap.recs[modelKey{state.Source, s}]; ok {
			if _, ok := snap.recs[modelKey{state.Target, t}]; ok {
				pairs = append(pairs, [2]string{s, t})
			}
		}
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i][0] < pairs[j][0] })
	for i, n := 0, 2+w.drng.Intn(4); i < n; i++ {
		if len(pairs) == 0 || w.drng.Intn(3) == 0 {
			w.edit(l.side, false)
			w.edit(modelOther(l.side), false)
			continue
		}
		pr := pairs[w.drng.Intn(len(pairs))]
		ids := map[string]string{state.Source: pr[0], state.Target: pr[1]}
		w.editOne(l.side, ids[l.side])
		w.editOne(modelOther(l.side), ids[modelOther(l.side)])
	}
	w.logf("the %s's listing pages by %d, %s", l.side, l.page, map[bool]string{true: "from a snapshot (SnapshotScan)", false: "by offset over an order the run's writes change"}[l.snapshot])
	w.shape = l
	rep := w.run(-1)
	w.shape = nil
	if rep == nil {
		return
	}
	ids := make([]string, 0, len(l.skipped))
	for id := range l.skipped {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if len(ids) > 0 {
		w.cover("reordered listings that skipped records")
		w.logf("the %s's listing skipped %v and handed out %d records twice", l.side, ids, l.repeated)
	} else if l.snapshot {
		w.cover("listings paged from a snapshot")
	}
	if w.run(-1) == nil {
		return
	}
	s := w.snapshot()
	for _, id := range ids {
		if _, ok := s.recs[modelKey{l.side, id}]; !ok {
			continue
		}
		linked := false
		if l.side == state.Source {
			_, linked = s.links[id]
		} else {
			_, linked = s.rev[id]
		}
		if !linked {
			w.t.Errorf("seed %d: %s %s, skipped by the reordered listing, is still unlinked after the next run: the watermark passed it", w.seed, l.side, id)
		}
	}
}

// ---- a listing emptied for one run ----

// modelEmptied is a run in which one side answers every Scan, Get and Find with nothing.
type modelEmptied struct {
	side string
}

func (e *modelEmptied) wrap(r *dsync.Runner) {
	name := modelSideName(e.side)
	r.Conns[name] = &modelEmptyConn{Conn: r.Conns[name]}
	// The model runs without the circuit breaker (a share of 1); this run has one, so that
	// a listing that lost every linked record trips it.
	r.Opts.MaxDeleteShare = 0.3
}

func (e *modelEmptied) unread(*modelWorld, *modelSnap, string, string, []string, []string) bool {
	return false
}

// judge: the run stops at the breaker and changes nothing: no record written, created or
// deleted, no link dropped, and the disappearance recorded as one pending change.
func (e *modelEmptied) judge(w *modelWorld, pre *modelSnap, rep *dsync.Report, err error) (*dsync.Report, bool) {
	if !errors.Is(err, dsync.ErrBreaker) {
		w.t.Errorf("seed %d: a run whose %s listing was empty ended with %v, not at the circuit breaker", w.seed, e.side, err)
		return nil, true
	}
	post := w.snapshot()
	for s, t := range pre.links {
		if post.links[s] != t {
			w.t.Errorf("seed %d: the run whose %s listing was empty unlinked source %s from target %s", w.seed, e.side, s, t)
		}
	}
	for k, r := range pre.recs {
		p, ok := post.recs[k]
		switch {
		case !ok:
			w.t.Errorf("seed %d: the run whose %s listing was empty deleted %s %s", w.seed, e.side, k.side, k.id)
		case string(mapping.Canonical(p.Data)) != string(mapping.Canonical(r.Data)):
			w.t.Errorf("seed %d: the run whose %s listing was empty wrote %s %s: %s, was %s", w.seed, e.side, k.side, k.id,
				mapping.Canonical(p.Data), mapping.Canonical(r.Data))
		}
	}
	for k := range post.recs {
		if _, ok := pre.recs[k]; !ok {
			w.t.Errorf("seed %d: the run whose %s listing was empty created %s %s", w.seed, e.side, k.side, k.id)
		}
	}
	if len(post.links) != len(pre.links) {
		w.t.Errorf("seed %d: the run whose %s listing was empty left %d links, there were %d", w.seed, e.side, len(post.links), len(pre.links))
	}
	if rep != nil && len(rep.Flows) > 0 {
		if f := rep.Flows[0]; f.Deleted+f.Unlinked+f.CreatedSource+f.CreatedTarget+f.UpdatedSource+f.UpdatedTarget > 0 {
			w.t.Errorf("seed %d: the run whose %s listing was empty reports writes: %s", w.seed, e.side, modelSummary(rep))
		}
	}
	pending, perr := w.store.Pending(context.Background(), w.flow.ID())
	if perr != nil {
		w.t.Fatal(perr)
	}
	if len(pending) != 1 || pending[0].Status != state.PendingWaiting || len(pending[0].Links) != len(pre.links) {
		w.t.Errorf("seed %d: after the breaker held a listing of %d links that came back empty, the pending changes are %+v", w.seed, len(pre.links), pending)
	}
	return nil, true
}

type modelEmptyConn struct{ connector.Conn }

func (c *modelEmptyConn) Scan(context.Context, string, string, func([]connector.Record) error) error {
	return nil
}

func (c *modelEmptyConn) Get(context.Context, string, []string) (map[string]connector.Record, error) {
	return map[string]connector.Record{}, nil
}

// Capabilities: the side finds nothing either, and says nothing of its counts or deletions
// (an expired token does not answer those as the system would); what it can do otherwise it
// keeps, so that the run is production's.
func (c *modelEmptyConn) Capabilities() connector.Capabilities {
	caps := c.Conn.Capabilities()
	if caps.Finder != nil {
		caps.Finder = modelEmptyFinder{}
	}
	caps.Counter, caps.DeleteCounter = nil, nil
	return caps
}

type modelEmptyFinder struct{}

func (modelEmptyFinder) Find(context.Context, string, []string, [][]string) ([]connector.Record, error) {
	return nil, nil
}

// emptiable says whether the model can say "nothing may change" of a run now, and of which
// side's listing: at least two links (a breaker limit is at least one record), no intent of a
// killed run (recovery would look for copies on the empty side), and no unlinked record on
// the side that is read: an empty side cannot be told from a side without a record to merge
// with, so such a record would be created there, and under a merge key it may already have,
// duplicated. Those creates are legitimate for a record that is new; the model leaves them
// out.
func (w *modelWorld) emptiable() (side string, ok bool) {
	pre := w.snapshot()
	if len(pre.links) < 2 || len(pre.intents) > 0 {
		return "", false
	}
	side = []string{state.Source, state.Target}[w.drng.Intn(2)]
	read := modelOther(side)
	for _, id := range pre.order[read] {
		linked := false
		if read == state.Source {
			_, linked = pre.links[id]
		} else {
			_, linked = pre.rev[id]
		}
		if !linked {
			return "", false
		}
	}
	return side, true
}

// emptiedRun empties one side's listing for a run, then brings it back. The run must change
// nothing (judge); the model rejects the pending change or leaves it, and the next run (a
// reconcile, or not) then syncs whatever the users changed meanwhile, as checkRun expects it
// of any run.
func (w *modelWorld) emptiedRun(side string) {
	e := &modelEmptied{side: side}
	w.logf("the %s's listing is empty for a run (an expired token)", e.side)
	w.shape = e
	w.run(-1)
	w.shape = nil
	if w.t.Failed() {
		return
	}
	w.cover("runs whose listing was empty, held by the breaker")
	ctx := context.Background()
	if w.drng.Intn(2) == 0 {
		pending, err := w.store.Pending(ctx, w.flow.ID())
		if err != nil {
			w.t.Fatal(err)
		}
		tx, err := w.store.Begin(ctx)
		if err != nil {
			w.t.Fatal(err)
		}
		for _, p := range pending {
			if err := tx.DeletePending(p.ID); err != nil {
				w.t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			w.t.Fatal(err)
		}
		w.logf("the pending change is rejected")
	} else {
		w.logf("the pending change is left pending")
	}
	// The listing is back. The run after it, a reconcile or not, must sync what the users
	// changed meanwhile: the held run read the changed records whose partners were missing
	// without merging them, so its watermarks may not pass them.
	w.reconcile = w.drng.Intn(2) == 0
	w.logf("the %s's listing is back; a reconcile: %v", e.side, w.reconcile)
	rep := w.run(-1)
	if rep != nil {
		w.cover(fmt.Sprintf("runs after a listing came back (reconcile: %v)", w.reconcile))
		if w.reconcile {
			w.checkReconciled("the reconcile run after a listing came back")
		}
	}
	w.reconcile = false
}

// checkReconciled checks what a successful reconcile run must leave, with every record of
// both sides read: no link to a deleted record, every record linked exactly once (create is
// both ways), and no code twice on a side (nothing duplicated). That the linked pairs agree,
// and on what, checkRun has checked.
func (w *modelWorld) checkReconciled(what string) {
	s := w.snapshot()
	for src, tgt := range s.links {
		_, okS := s.recs[modelKey{state.Source, src}]
		_, okT := s.recs[modelKey{state.Target, tgt}]
		if !okS || !okT {
			w.t.Errorf("seed %d: after %s, link source %s (exists: %v) → target %s (exists: %v) points at a deleted record", w.seed, what, src, okS, tgt, okT)
		}
	}
	for _, side := range []string{state.Source, state.Target} {
		codes := map[string]string{}
		for _, id := range s.order[side] {
			linked := false
			if side == state.Source {
				_, linked = s.links[id]
			} else {
				_, linked = s.rev[id]
			}
			if !linked {
				w.t.Errorf("seed %d: after %s, %s %s exists and is not linked", w.seed, what, side, id)
			}
			code := mapping.IDString(s.recs[modelKey{side, id}].Data[modelCol(side, 0)])
			if prev, dup := codes[code]; dup {
				w.t.Errorf("seed %d: after %s, %s %s and %s have the same code %s: a duplicate", w.seed, what, side, prev, id, code)
			}
			codes[code] = id
		}
	}
	w.cover("reconcile runs checked: every record linked once, no duplicate")
}
