package sync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	gosync "sync"

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
	// basing counts the goroutines computing staged links' bases (createdBatch.startBases).
	basing gosync.WaitGroup
	// linkedNow filters the ids this run linked, for a flow that had no link when the run
	// began (nil otherwise): the only ones the link state can hold (linkfilter.go).
	linkedNow *linkFilters
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
	// heldMarks holds, per side, the watermark a pass would store while vanished links wait
	// for the delete pass: the records whose partner was missing were read but not merged,
	// and if the breaker holds the change, the next run must read them again.
	heldMarks map[Side]string
	// resync says that every linked pair is merged in this run, the digests of unchanged
	// records notwithstanding (resync.go); print is the fingerprint of the property table.
	resync bool
	print  string
}

// The default batch sizes (Options.BatchSize). A batch costs its commits and the index pages
// it dirties in the link state and in the systems, whatever its size: in a first sync of
// 50,000 records between SQLite files, 2,000 per batch took 0.7 times the time of 500; 5,000
// saved no more and took half as much memory again. Since the link rows are compact and the
// sqlite connector's ids append to their indexes, 1,000 is as fast as 2,000 (bench a and i at
// 1M: 18.4 and 17.1 s against 18.8 and 18.1 s, the same run) and a run's peak RSS is 139 MiB
// instead of 177: up to three batches are in hand at once (read ahead, merged, linked).
const (
	defaultBatch = 500
	largeBatch   = 1000
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
	if !dc.hadLinks {
		// Before the run writes any link of the flow; a side's ids are linked to the records
		// it holds or those created there from the other's.
		fr.linkedNow = newLinkFilters(dc.now[Source] + dc.now[Target])
	}
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
	for _, side := range []Side{Source, Target} {
		if high, ok := fr.heldMarks[side]; ok {
			if err := fr.setWatermark(ctx, side, high); err != nil {
				return err
			}
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
	return fr.transactWith(ctx, fr.r.State.Begin, writes, fn)
}

// transactWith is transact in a Tx that begin opens.
func (fr *flowRun) transactWith(ctx context.Context, begin func(context.Context) (state.Tx, error), writes []func(tx state.Tx) error, fn func(tx state.Tx) error) error {
	tx, err := begin(context.WithoutCancel(ctx))
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

// PutLink and PutLinks note the links' ids in the filter of a fresh flow's links (linkfilter.go)
// before they are written: a write that fails leaves a false positive, never a link unnoted.
func (t trackedTx) PutLink(l *state.Link) error {
	t.noteLinked([]*state.Link{l})
	return t.Tx.PutLink(l)
}

func (t trackedTx) PutLinks(links []*state.Link) error {
	t.noteLinked(links)
	return t.Tx.PutLinks(links)
}

func (t trackedTx) noteLinked(links []*state.Link) {
	if t.fr.linkedNow == nil {
		return
	}
	for _, l := range links {
		if l.Flow == t.fr.f.ID() {
			t.fr.linkedNow.source.add(l.SourceID)
			t.fr.linkedNow.target.add(l.TargetID)
		}
	}
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
	// The links being committed on another goroutine may still be getting their bases
	// (deferredBase): a batch that needs one waits for that commit, and reads it from the store.
	if fr.linking.holds(side, ids) {
		if err := fr.join(); err != nil {
			return nil, err
		}
	}
	query := ids
	if fr.linkedNow != nil {
		query = fr.linkedNow.maybeLinked(side, ids)
	}
	links := map[string]*state.Link{}
	var err error
	switch {
	case len(query) == 0:
	case side == Source:
		links, err = fr.r.State.LinksBySource(ctx, fr.f.ID(), query)
	default:
		links, err = fr.r.State.LinksByTarget(ctx, fr.f.ID(), query)
	}
	if err != nil {
		return nil, err
	}
	if err := fr.staged.overlay(links, side, ids); err != nil {
		return nil, err
	}
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
	var h [32]byte // the string is the only allocation
	hex.Encode(h[:], sum[:16])
	return string(h[:])
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
