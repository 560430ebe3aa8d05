package sync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// flowRun is one flow's part of a run.
type flowRun struct {
	r     *Runner
	f     *mapping.Flow
	refs  *refs
	rep   *Report
	stats *FlowStats

	src, tgt             connector.Conn
	srcEntity, tgtEntity string
	srcUpdated           string // the entities' last-modified properties, "" when none
	tgtUpdated           string

	// runID is the run's id in the link state (0 in a dry run): the links this run makes and
	// merges carry it (state.Link), so the run needs no set of the records it touched.
	runID int64
	// dryProcessed holds, in a dry run (which saves no link), the source ids of the pairs it
	// planned, so that the target pass does not plan a pair twice.
	dryProcessed map[string]bool
	// failedNow holds the records that failed or waited in this run, so
	// that the other pass does not merge their pairs again; troubled holds the records with a
	// waiting or dead-letter entry, the only ones whose entries a success must clear. Both grow
	// with the failures, not with the records.
	failedNow, troubled map[Key]bool
	// srcPass says what the source pass read, once it is done (see readBefore).
	srcPass *passInfo
	// readWhole holds the sides whose pass read every record (no watermark, or a reconcile);
	// reconcileSet says that the flow's dataflow schedules reconciles (reconcile.go).
	readWhole    map[Side]bool
	reconcileSet bool
	// indexes of unlinked records by merge key, built when first needed.
	srcIndex, tgtIndex *mergeIndex
	// batchIdx holds, while a batch is linked through Finders, the records of each side with
	// the batch's merge keys (prepareMatch); noFinder is set once a connection could not
	// search by the merge criteria, and the full indexes serve for the rest of the flow run.
	batchIdx map[Side]*mergeIndex
	noFinder bool
	// dryLinked remembers, in a dry run, the records that would have been linked or created.
	dryLinked map[Key]bool
	// detached holds the records that stay unlinked after their partner was deleted under
	// delete: unlink.
	detached map[Key]bool
	// check is the run's delete check (deletecheck.go); scanning is the side whose pass is
	// scanning, whose records it counts.
	check    *deleteCheck
	scanning Side
	// digests holds, while a batch from the scan is merged, the digests of its records that
	// the scan computed (aligned with them; "" or nil where it did not); prebuilt, what the
	// scan built for their creates (prepareCreates).
	digests  []string
	prebuilt []*prebuilt
	// dig digests records on the flow run's goroutine, spare on the one split adds.
	dig, spare digesters
	// pure says that the flow has no references and no lists: mapping a record then reads
	// nothing but the record, and split may map records on two goroutines.
	pure bool
	// staged holds the links of the last batch of creates until a transaction commits them;
	// linking, those being committed on another goroutine, whose error linked gives (stage.go).
	staged, linking *stagedLinks
	linked          chan error
	// overlap says that the link state may be read, and written on another goroutine, while
	// a transaction is open (state.Overlapping).
	overlap bool
	// batchSize is the flow's Options.BatchSize, or its default.
	batchSize int
	// plan decides the merges of linked pairs (plan.go).
	plan *planner
	// vanished holds the links whose record on one side a pass did not find (its partner
	// was read), by source id, for the delete pass; it grows with the missing records only.
	vanished     []gone
	vanishedSeen map[string]bool
	// resync says that every linked pair is merged in this run, the digests of unchanged
	// records notwithstanding (resync.go); print is the fingerprint of the property table.
	resync bool
	print  string
}

// The default batch sizes (Options.BatchSize). A batch costs its commits and the index pages
// it dirties in the link state and in the systems, whatever its size: in a first sync of
// 50,000 records between SQLite files, 2,000 per batch took 0.7 times the time of 500; 5,000
// saved no more and took half as much memory again.
const (
	defaultBatch = 500
	largeBatch   = 2000
)

// passInfo is what a side's pass read: every record (whole), or those last modified at or
// after since.
type passInfo struct {
	whole bool
	since string
}

func newFlowRun(r *Runner, f *mapping.Flow, rf *refs, rep *Report, runID int64) (*flowRun, error) {
	if f.Source == nil || f.Target == nil {
		return nil, fmt.Errorf("flow %s is not valid", f.ID())
	}
	fr := &flowRun{
		r: r, f: f, refs: rf, rep: rep, stats: &FlowStats{Flow: f.ID()},
		src:       r.Conns[f.Dataflow.Source.Config.ID.Value],
		tgt:       r.Conns[f.Dataflow.Target.Config.ID.Value],
		srcEntity: f.Source.Name(), tgtEntity: f.Target.Name(),
		srcUpdated: f.Source.Config.Updated.Value, tgtUpdated: f.Target.Config.Updated.Value,
		runID:        runID,
		dryProcessed: map[string]bool{}, dryLinked: map[Key]bool{}, detached: map[Key]bool{},
		failedNow: map[Key]bool{}, troubled: map[Key]bool{},
		readWhole: map[Side]bool{},
	}
	if fr.src == nil || fr.tgt == nil {
		return nil, fmt.Errorf("flow %s: a system is not connected", f.ID())
	}
	fr.pure = isPure(f)
	fr.plan = newPlanner(f, rf, fr.src.Capabilities().ListIdentifier, fr.tgt.Capabilities().ListIdentifier)
	if o, ok := r.State.(state.Overlapping); ok {
		fr.overlap = o.Overlaps()
	}
	switch {
	case r.Opts.BatchSize > 0:
		fr.batchSize = r.Opts.BatchSize
	case fr.src.Capabilities().LargeBatches && fr.tgt.Capabilities().LargeBatches:
		fr.batchSize = largeBatch
	default:
		fr.batchSize = defaultBatch
	}
	if f.Delete == mapping.DeletePropagate {
		for _, side := range []Side{Target, Source} {
			conn, _ := fr.on(side)
			sys := f.Dataflow.Target
			if side == Source {
				sys = f.Dataflow.Source
			}
			if fr.writes(side) && !conn.Capabilities().Delete {
				return nil, fmt.Errorf("flow %s: delete: propagate, but %s cannot delete records; use delete: keep or unlink", f.ID(), sys.Name())
			}
		}
	}
	return fr, nil
}

func (fr *flowRun) run(ctx context.Context) error {
	fr.refs.ctx = connector.Finishing(ctx) // references resolve inside a batch, which is finished
	started := fr.r.Opts.Now()
	if err := fr.decideReconcile(ctx); err != nil {
		return err
	}
	dc, err := fr.beginDeleteCheck(ctx)
	if err != nil {
		return err
	}
	fr.check = dc
	if err := fr.beginResync(ctx); err != nil {
		return err
	}
	if !fr.r.Opts.DryRun {
		if err := fr.recoverIntents(ctx); err != nil {
			return err
		}
	}
	waiting, err := fr.r.State.Waiting(ctx, fr.f.ID())
	if err != nil {
		return err
	}
	for _, w := range waiting {
		fr.troubled[Key{Side(w.Side), w.RecordID}] = true
		if w.Reason == unlinkedReason {
			fr.detached[Key{Side(w.Side), w.RecordID}] = true
		}
	}
	dead, err := fr.r.State.DeadLetters(ctx, fr.f.ID())
	if err != nil {
		return err
	}
	for _, d := range dead {
		fr.troubled[Key{Side(d.Side), d.RecordID}] = true
	}
	// A side is read when its changes flow somewhere: the source for a flow that writes the
	// target, the target for one that writes the source.
	for _, side := range []Side{Source, Target} {
		if fr.writes(other(side)) {
			if err = fr.pass(ctx, side); err != nil {
				return err
			}
		}
	}
	if fr.resync {
		if err := fr.resyncPass(ctx, dc.hadLinks); err != nil {
			return err
		}
	}
	if !dc.hadLinks {
		dc.full = true // no link to check
	} else if fr.needed(dc) {
		dc.full = true
		if err := fr.deletePass(ctx, true); err != nil {
			return err
		}
	} else if len(fr.vanished) > 0 {
		if err := fr.deletePass(ctx, false); err != nil {
			return err
		}
	}
	if err := fr.dropApprovals(ctx); err != nil {
		return err
	}
	if err := fr.endDeleteCheck(ctx, dc); err != nil {
		return err
	}
	return fr.endReconcile(ctx, started)
}

// updatedOf returns the last-modified property of a side's entity, "" when it has none.
func (fr *flowRun) updatedOf(side Side) string {
	if side == Source {
		return fr.srcUpdated
	}
	return fr.tgtUpdated
}

// pass reads one side (what changed since its watermark, then the records that wait or
// failed before) and merges, links or creates each record.
func (fr *flowRun) pass(ctx context.Context, side Side) (err error) {
	// What the last batch staged is committed whatever happens, even after an interrupt.
	defer func() {
		if ferr := fr.flush(context.WithoutCancel(ctx)); err == nil {
			err = ferr
		}
	}()
	conn, entity := fr.on(side)
	updated := fr.updatedOf(side)
	wm, since, err := fr.passMarks(ctx, side)
	if err != nil {
		return err
	}
	if wm != nil {
		defer fr.reportWarnings(wm)
	}
	fr.readWhole[side] = since == ""
	// A scan that is not a snapshot may skip records that the run's own writes to the side
	// move (paging by updated): the watermark then counts only the batches the scan handed
	// over before the first such write.
	written, snapshot := fr.writtenTo(side), snapshots(conn)
	// Records that wait for a reference, or failed, are read again whatever the watermark,
	// unless the scan reads them: memory grows with those, not with the records scanned.
	retry, err := fr.retryIDs(ctx, side)
	if err != nil {
		return err
	}
	pending := make(map[string]bool, len(retry))
	for _, id := range retry {
		pending[id] = true
	}
	fr.scanning = side
	defer func() { fr.scanning = "" }()
	h := &held{}
	err = scan(ctx, conn, entity, since, fr.prepareCreates(side), func(recs []connector.Record, digests []string, built []*prebuilt) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if wm != nil && !snapshot && fr.writtenTo(side) != written {
			wm.frozen = true
		}
		for _, rec := range recs {
			delete(pending, rec.ID)
			if wm != nil {
				wm.see(rec)
			}
		}
		h.add(recs, digests, built)
		return fr.processHeld(ctx, side, h, false)
	})
	if err == nil {
		err = fr.processHeld(ctx, side, h, true)
	}
	h = nil // what the scan handed over is done with: the retries need none of it
	fr.scanning = ""
	if err != nil {
		return err
	}
	if err := fr.retryPending(ctx, side, retry, pending); err != nil {
		return err
	}
	if side == Source {
		fr.srcPass = &passInfo{whole: updated == "" || since == "", since: since}
	}
	// Only a scan that read every record it was asked for moves the watermark (an error or
	// an interrupt returned above), and only to a stamp of a record read and processed.
	if wm != nil {
		if high := wm.next(); high != "" && !fr.r.Opts.DryRun {
			return fr.setWatermark(ctx, side, high)
		}
	}
	return nil
}

// held holds the records a scan handed over until they make a batch: records are merged and
// written in batches of Opts.BatchSize, whatever the size of the connection's pages, since a
// transaction's cost is mostly its commit and the index pages it dirties, so larger batches
// cost less per record.
type held struct {
	recs     []connector.Record
	digests  []string    // aligned with recs; "" where the scan gave none
	prebuilt []*prebuilt // aligned with recs; nil where the scan built none
}

func (h *held) add(recs []connector.Record, digests []string, built []*prebuilt) {
	h.recs = append(h.recs, recs...)
	if digests == nil {
		digests = make([]string, len(recs))
	}
	h.digests = append(h.digests, digests...)
	if built == nil {
		built = make([]*prebuilt, len(recs))
	}
	h.prebuilt = append(h.prebuilt, built...)
}

// processHeld merges, links or creates the held records of side in full batches, and with all
// the last one too.
func (fr *flowRun) processHeld(ctx context.Context, side Side, h *held, all bool) error {
	for len(h.recs) >= fr.batchSize || (all && len(h.recs) > 0) {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(fr.batchSize, len(h.recs))
		fr.digests, fr.prebuilt = h.digests[:n], h.prebuilt[:n]
		err := fr.batch(ctx, side, h.recs[:n])
		fr.digests, fr.prebuilt = nil, nil
		if err != nil {
			return err
		}
		h.recs, h.digests, h.prebuilt = h.recs[n:], h.digests[n:], h.prebuilt[n:]
	}
	return nil
}

// passMarks returns the watermark a pass of side follows (nil for an entity without an
// updated property) and what it reads since ("" for every record: no watermark yet, or a
// reconcile). The read starts now: the next watermark stays before this (less the clock
// skew), so that what is written from now on, by the run or anyone, is read next time.
func (fr *flowRun) passMarks(ctx context.Context, side Side) (*marks, string, error) {
	if fr.updatedOf(side) == "" {
		return nil, "", nil
	}
	if fr.reconciling() {
		return fr.newMarks(side, "", fr.r.Opts.Now()), "", nil
	}
	stored, err := fr.r.State.Watermark(ctx, fr.f.ID(), string(side))
	if err != nil {
		return nil, "", err
	}
	lookback, err := fr.lookbackOf(side)
	if err != nil {
		return nil, "", err
	}
	wm := fr.newMarks(side, stored, fr.r.Opts.Now())
	return wm, wm.since(lookback), nil
}

// retryPending reads again, in batches, the records of side that waited or failed before
// (retry) and that the scan did not read (pending), and merges, links or creates them. A
// record that is gone is forgotten.
func (fr *flowRun) retryPending(ctx context.Context, side Side, retry []string, pending map[string]bool) error {
	conn, entity := fr.on(side)
	var todo []string
	for _, id := range retry {
		if pending[id] {
			todo = append(todo, id)
		}
	}
	retry = todo
	for start := 0; start < len(retry); start += fr.batchSize {
		ids := retry[start:min(start+fr.batchSize, len(retry))]
		got, refused, err := getSome(ctx, conn, entity, ids)
		if err != nil {
			return err
		}
		if len(refused) > 0 {
			out := &outcome{}
			for _, id := range ids {
				if why := refused[id]; why != nil {
					fr.fail(out, side, id, why)
				}
			}
			if err := fr.save(ctx, out); err != nil {
				return err
			}
		}
		recs := make([]connector.Record, 0, len(got))
		for _, id := range ids {
			if refused[id] != nil {
				continue
			}
			if rec, ok := got[id]; ok {
				recs = append(recs, rec)
			} else if err := fr.forget(ctx, side, id); err != nil {
				return err
			}
		}
		if err := fr.batch(ctx, side, recs); err != nil {
			return err
		}
	}
	return nil
}

// retryIDs lists the records of a side that wait or failed.
func (fr *flowRun) retryIDs(ctx context.Context, side Side) ([]string, error) {
	var ids []string
	seen := map[string]bool{}
	waiting, err := fr.r.State.Waiting(ctx, fr.f.ID())
	if err != nil {
		return nil, err
	}
	for _, w := range waiting {
		if w.Side == string(side) && !seen[w.RecordID] && w.Reason != unlinkedReason {
			seen[w.RecordID] = true
			ids = append(ids, w.RecordID)
		}
	}
	dead, err := fr.r.State.DeadLetters(ctx, fr.f.ID())
	if err != nil {
		return nil, err
	}
	for _, d := range dead {
		if d.Side == string(side) && !seen[d.RecordID] {
			seen[d.RecordID] = true
			ids = append(ids, d.RecordID)
		}
	}
	return ids, nil
}

// forget drops the waiting and dead-letter entries of a record that no longer exists.
func (fr *flowRun) forget(ctx context.Context, side Side, id string) error {
	if fr.r.Opts.DryRun {
		return nil
	}
	return fr.commit(ctx, func(tx state.Tx) error {
		if err := tx.ClearWaiting(fr.f.ID(), string(side), id); err != nil {
			return err
		}
		return tx.ClearDeadLetter(fr.f.ID(), string(side), id)
	})
}

// commit runs fn in a state transaction, after the links staged (stage.go).
func (fr *flowRun) commit(ctx context.Context, fn func(tx state.Tx) error) error {
	if err := fr.join(); err != nil {
		return err
	}
	if err := fr.transact(ctx, fr.staged.writes(), fn); err != nil {
		return err
	}
	fr.staged = nil
	return nil
}

// transact runs the writes, then fn (when not nil), in one state transaction.
func (fr *flowRun) transact(ctx context.Context, writes []func(tx state.Tx) error, fn func(tx state.Tx) error) error {
	tx, err := fr.r.State.Begin(context.WithoutCancel(ctx))
	if err != nil {
		return err
	}
	tracked := trackedTx{tx, fr}
	if fn != nil {
		writes = append(writes[:len(writes):len(writes)], fn)
	}
	for _, w := range writes {
		if err := w(tracked); err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

// trackedTx keeps the flow run's troubled set in step with the waiting and dead-letter
// entries it writes, and clears only the entries that may exist: a success would otherwise cost
// two deletes per record, nearly always of nothing.
type trackedTx struct {
	state.Tx
	fr *flowRun
}

func (t trackedTx) PutDeadLetter(flow, side, recordID, reason string) error {
	t.fr.troubled[Key{Side(side), recordID}] = true
	return t.Tx.PutDeadLetter(flow, side, recordID, reason)
}

func (t trackedTx) PutWaiting(flow, side, recordID, reason string) error {
	t.fr.troubled[Key{Side(side), recordID}] = true
	return t.Tx.PutWaiting(flow, side, recordID, reason)
}

func (t trackedTx) ClearDeadLetter(flow, side, recordID string) error {
	if flow == t.fr.f.ID() && !t.fr.troubled[Key{Side(side), recordID}] {
		return nil
	}
	return t.Tx.ClearDeadLetter(flow, side, recordID)
}

func (t trackedTx) ClearWaiting(flow, side, recordID string) error {
	if flow == t.fr.f.ID() && !t.fr.troubled[Key{Side(side), recordID}] {
		return nil
	}
	return t.Tx.ClearWaiting(flow, side, recordID)
}

// on returns the connection and entity of a side.
func (fr *flowRun) on(side Side) (connector.Conn, string) {
	if side == Source {
		return fr.src, fr.srcEntity
	}
	return fr.tgt, fr.tgtEntity
}

// linksOf returns the flow's links of the records of side with the given ids, by those ids.
// Links staged and not yet committed (stage.go) are among them.
func (fr *flowRun) linksOf(ctx context.Context, side Side, ids []string) (map[string]*state.Link, error) {
	var links map[string]*state.Link
	var err error
	if side == Source {
		links, err = fr.r.State.LinksBySource(ctx, fr.f.ID(), ids)
	} else {
		links, err = fr.r.State.LinksByTarget(ctx, fr.f.ID(), ids)
	}
	if err != nil {
		return nil, err
	}
	fr.linking.overlay(links, side, ids)
	fr.staged.overlay(links, side, ids)
	return links, nil
}

// writes reports whether the flow writes to side: a one-way flow never writes to the side it
// reads from (no creates, updates or deletes there).
func (fr *flowRun) writes(side Side) bool {
	if side == Source {
		return fr.f.Direction != config.SyncToTarget
	}
	return fr.f.Direction != config.SyncToSource
}

// digester computes digests of a record's content, to recognise a record unchanged since the
// link was last saved: the first 16 bytes of the SHA-256 of its canonical form, in hex. One
// digester serves the records of one entity, whose keys it sorts once (mapping.RecordCanon),
// with one buffer; it is used from the flow run's goroutine only.
type digester struct {
	canon mapping.RecordCanon
	buf   []byte
}

func (d *digester) digest(data map[string]any) string {
	d.buf = d.canon.Append(d.buf[:0], data)
	sum := sha256.Sum256(d.buf)
	return hex.EncodeToString(sum[:16])
}

// digesters digest the records of each side, for one goroutine.
type digesters struct{ src, tgt digester }

// digestOf returns the digest of the record of side in a pair: the one the scan computed when
// the pair's pass read that record, else computed now.
func (fr *flowRun) digestOf(p *pair, side Side) string {
	if side == p.side && p.read != "" {
		return p.read
	}
	if side == Source {
		return fr.srcHash(p.src.Data)
	}
	return fr.tgtHash(p.tgt.Data)
}

// srcHash and tgtHash are the digests of a source and a target record.
func (fr *flowRun) srcHash(data map[string]any) string { return fr.dig.src.digest(data) }
func (fr *flowRun) tgtHash(data map[string]any) string { return fr.dig.tgt.digest(data) }

// split calls work for the items [0, n) of a batch: for a pure flow with enough items, half
// of them on another goroutine, each half with digesters of its own; else all of them on this
// goroutine. Mapping and digesting are most of a first sync's own work (the rest waits for the
// databases), and a machine has more than one core. work must touch only its items.
func (fr *flowRun) split(n int, work func(lo, hi int, d *digesters)) {
	const enough = 256 // below, a goroutine costs more than it saves
	if !fr.pure || n < enough {
		work(0, n, &fr.dig)
		return
	}
	half := n / 2
	done := make(chan struct{})
	go func() {
		defer close(done)
		work(half, n, &fr.spare)
	}()
	work(0, half, &fr.dig)
	<-done
}

// isPure reports whether a flow's properties read only the record they map: no reference
// (translated through the link state) and no list (whose elements the run identifies through
// shared caches).
func isPure(f *mapping.Flow) bool {
	for _, p := range f.Properties {
		if p.Ref != nil || len(p.Elements) > 0 {
			return false
		}
	}
	return true
}
