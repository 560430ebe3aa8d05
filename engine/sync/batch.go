package sync

import (
	"context"
	"errors"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// pair is a linked source and target record being merged.
type pair struct {
	link     *state.Link
	src, tgt connector.Record
	side     Side   // the side whose pass read it, for dead letters
	read     string // the digest of that side's record as read, when the scan computed it
	// The merge's outcome: patches to write, and the records as they will be.
	srcPatch, tgtPatch map[string]any
	conflicts          int
	isNew              bool // linked in this run by merge criteria
	unchanged          bool // neither record changed since the link was saved
	// seen holds the values merge computed from the records as read: the new base when
	// nothing is written, so that it is not computed again.
	seen map[string]state.Base
	// hints say, per list property merged element by element, which elements the merge
	// paired, for the new base (lists.go).
	hints map[string][]elemHint
}

// outcome collects a batch's work for one transaction.
type outcome struct {
	links    []*state.Link
	dead     []failure
	waiting  []failure
	resolved []*state.Link // pairs that succeeded: their records no longer wait or fail
	unlink   []string      // source ids of dangling links
}

type failure struct {
	side       Side
	id, reason string
}

// batch merges, links or creates the records of one side read together: it reads what the
// batch needs (readBatch), sorts its records into pairs to merge and records to create
// (sortBatch), plans each pair's merge (merge, plan.go), and writes.
func (fr *flowRun) batch(ctx context.Context, side Side, recs []connector.Record) error {
	if len(recs) == 0 {
		return nil
	}
	// A batch that has started is finished: an interrupt (SIGINT, SIGTERM) stops the run
	// between batches, after the batch's writes are committed to the link state. Only the
	// connections' waits (a back-off, a Retry-After, a slow answer) end at the interrupt
	// (connector.Finishing): what they had not done is left to the next run.
	ctx = connector.Finishing(ctx)
	if side == Source {
		fr.stats.ReadSource += len(recs)
	} else {
		fr.stats.ReadTarget += len(recs)
	}
	defer func() { fr.batchIdx = nil }()
	rd, err := fr.readBatch(ctx, side, recs)
	if err != nil {
		return err
	}
	out := &outcome{}
	pairs, creates, err := fr.sortBatch(ctx, side, recs, rd, out)
	if err != nil {
		return err
	}
	for _, p := range pairs {
		if fr.r.Opts.DryRun {
			fr.dryProcessed[p.link.SourceID] = true
		}
		if err := fr.merge(p); err != nil {
			fr.fail(out, p.side, idOn(p, p.side), err)
			p.srcPatch, p.tgtPatch = nil, nil
			p.link = nil
		}
	}
	if err := fr.write(ctx, pairs, out); err != nil {
		return err
	}
	fr.countDiffered(pairs)
	if len(creates.recs) > 0 {
		if err := fr.create(ctx, side, creates, out); err != nil {
			return err
		}
	}
	if fr.r.Opts.Progress != nil {
		fr.r.Opts.Progress(fr.f.ID(), fr.stats)
	}
	return fr.save(ctx, out)
}

// batchRead is what a batch's records need read before they are merged: their links (by
// their ids), their partners (by id), and the records a connection refused to read or search
// for (connector.RecordError), with why: dead letters of the batch; the others go on.
type batchRead struct {
	links    map[string]*state.Link
	partners map[string]connector.Record
	refused  map[string]error
}

// readBatch reads the links and partners of a batch of side's records, and readies the
// search for the partners of those without a link (prepareMatch).
func (fr *flowRun) readBatch(ctx context.Context, side Side, recs []connector.Record) (*batchRead, error) {
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	links, err := fr.linksOf(ctx, side, ids)
	if err != nil {
		return nil, err
	}
	fr.tally(side, recs, links)
	// The partners of the linked records, read in one call.
	var partnerIDs []string
	for _, r := range recs {
		if l := links[r.ID]; l != nil {
			partnerIDs = append(partnerIDs, partnerOf(l, side))
		}
	}
	partners := map[string]connector.Record{}
	// Records that a connection refused to read or search for (connector.RecordError) are
	// dead letters of this batch, with the reason; the others go on.
	var refused map[string]error
	if len(partnerIDs) > 0 {
		conn, entity := fr.on(other(side))
		var bad map[string]error
		if partners, bad, err = getSome(ctx, conn, entity, partnerIDs); err != nil {
			return nil, err
		}
		for _, r := range recs {
			if l := links[r.ID]; l != nil {
				if why := bad[partnerOf(l, side)]; why != nil {
					if refused == nil {
						refused = map[string]error{}
					}
					refused[r.ID] = why
				}
			}
		}
	}
	// The records that may be linked by merge criteria: those without a link. (A record whose
	// partner is gone is the delete pass's, which may link it again under delete: keep.)
	var loose []connector.Record
	for _, r := range recs {
		if refused[r.ID] != nil {
			continue
		}
		if l := links[r.ID]; l == nil {
			loose = append(loose, r)
		}
	}
	unsearched, err := fr.prepareMatch(ctx, side, loose)
	if err != nil {
		return nil, err
	}
	for id, why := range unsearched {
		if refused == nil {
			refused = map[string]error{}
		}
		refused[id] = why
	}
	return &batchRead{links: links, partners: partners, refused: refused}, nil
}

// sortBatch sorts a batch's records: the linked ones whose partner was read pair with it; the
// unlinked ones are linked by merge criteria (a pair), or are to be created on the other side
// (creates, with what the scan built and digested for them), or wait; the refused are dead letters
// (in out), and a linked record whose partner is missing is left to the delete pass.
func (fr *flowRun) sortBatch(ctx context.Context, side Side, recs []connector.Record, rd *batchRead, out *outcome) (pairs []*pair, creates *creations, err error) {
	n := len(recs)
	creates = &creations{recs: make([]connector.Record, 0, n), built: make([]*prebuilt, 0, n), digests: make([]string, 0, n)}
	prebuiltAt := func(i int) *prebuilt {
		if i < len(fr.prebuilt) {
			return fr.prebuilt[i]
		}
		return nil
	}
	for i, rec := range recs {
		read := ""
		if i < len(fr.digests) {
			read = fr.digests[i]
		}
		if why := rd.refused[rec.ID]; why != nil {
			fr.fail(out, side, rec.ID, why)
			continue
		}
		l := rd.links[rec.ID]
		if l == nil {
			p, create, err := fr.unlinked(ctx, side, rec, out)
			if err != nil {
				return nil, nil, err
			}
			if p != nil {
				p.read = read
				pairs = append(pairs, p)
			}
			if create {
				creates.add(rec, prebuiltAt(i), read)
			}
			continue
		}
		if fr.done(l) {
			continue
		}
		partner, ok := rd.partners[partnerOf(l, side)]
		if !ok {
			// The partner is gone, or the system did not return it. Whatever the delete
			// policy, the delete pass decides at the end of the flow run, once it knows how
			// many went missing: a mass disappearance is a fault (deletes.go).
			fr.vanish(l, side)
			continue
		}
		p := &pair{link: l, side: side, read: read}
		if side == Source {
			p.src, p.tgt = rec, partner
		} else {
			p.src, p.tgt = partner, rec
		}
		pairs = append(pairs, p)
	}
	return pairs, creates, nil
}

// done reports whether this run has merged the pair of link l already: the link was saved by
// this run, or one of its records failed or waited in this run (or, in a dry run, the pair was
// planned). A pair that an earlier pass found unchanged is merged again, at the cost of
// comparing two digests (see readBefore).
func (fr *flowRun) done(l *state.Link) bool {
	if fr.r.Opts.DryRun {
		return fr.dryProcessed[l.SourceID]
	}
	return l.MergedIn == fr.runID || fr.failedNow[Key{Source, l.SourceID}] || fr.failedNow[Key{Target, l.TargetID}]
}

// readBefore reports whether the source pass of this run has probably read the source record
// of a pair the target pass merges, so that an unchanged pair is counted once. It errs towards
// counting: it decides only a statistic, never what is merged.
func (fr *flowRun) readBefore(p *pair) bool {
	if p.side != Target || fr.srcPass == nil {
		return false
	}
	if fr.srcPass.whole {
		return true
	}
	stamp := mapping.IDString(mapping.Get(p.src.Data, fr.srcUpdated))
	later, ok := laterOrSame(stamp, fr.srcPass.since)
	return ok && later
}

func partnerOf(l *state.Link, side Side) string {
	if side == Source {
		return l.TargetID
	}
	return l.SourceID
}

func idOn(p *pair, side Side) string {
	if side == Source {
		return p.src.ID
	}
	return p.tgt.ID
}

// fail records a record's failure: a dead letter, or a wait for a reference.
func (fr *flowRun) fail(out *outcome, side Side, id string, err error) {
	fr.failedNow[Key{side, id}] = true
	if mapping.IsWaiting(err) {
		fr.stats.Waiting++
		out.waiting = append(out.waiting, failure{side, id, err.Error()})
		fr.change(Change{Action: "wait", Side: string(side), RecordID: id, Reason: err.Error()})
		return
	}
	fr.stats.Failed++
	out.dead = append(out.dead, failure{side, id, err.Error()})
	fr.change(Change{Action: "fail", Side: string(side), RecordID: id, Reason: err.Error()})
}

func (fr *flowRun) change(c Change) {
	if fr.r.Opts.DryRun {
		c.Flow = fr.f.ID()
		fr.rep.Changes = append(fr.rep.Changes, c)
	}
}

// unlinked handles a record without a link: it links it with a record of the other side that
// matches a merge criterion (returning the pair to merge), or asks for its creation on the
// other side, or leaves it waiting.
func (fr *flowRun) unlinked(ctx context.Context, side Side, rec connector.Record, out *outcome) (*pair, bool, error) {
	if side == Source {
		ok, err := fr.f.Filter(rec.Data)
		if err != nil {
			fr.fail(out, side, rec.ID, err)
			return nil, false, nil
		}
		if !ok {
			return nil, false, nil
		}
	}
	if fr.dryLinked[Key{side, rec.ID}] || fr.detached[Key{side, rec.ID}] {
		return nil, false, nil
	}
	if len(fr.f.Merge) > 0 {
		match, err := fr.match(side, rec)
		if err != nil {
			var amb *ambiguousError
			if !errors.As(err, &amb) {
				return nil, false, err
			}
			if amb.shared != "" {
				// The record that this one matches also matches others: that record is the
				// dead letter, retried every run; this one is linked when it is resolved.
				fr.change(Change{Action: "wait", Side: string(side), RecordID: rec.ID, Reason: err.Error()})
				return nil, false, nil
			}
			fr.fail(out, side, rec.ID, err)
			return nil, false, nil
		}
		if match != nil {
			l := &state.Link{Flow: fr.f.ID(), Base: map[string]state.Base{}, LinkedIn: fr.runID}
			p := &pair{link: l, side: side, isNew: true}
			if side == Source {
				p.src, p.tgt = rec, *match
			} else {
				p.src, p.tgt = *match, rec
			}
			l.SourceID, l.TargetID = p.src.ID, p.tgt.ID
			fr.stats.Merged++
			if fr.r.Opts.DryRun {
				fr.dryLinked[Key{Source, l.SourceID}] = true
				fr.dryLinked[Key{Target, l.TargetID}] = true
			}
			fr.change(Change{Action: "link", Side: string(side), RecordID: rec.ID, FromID: partnerOf(l, side), Reason: "merge criteria match"})
			return p, false, nil
		}
	}
	create, wait := fr.plan.unmatched(side)
	if wait != "" {
		fr.stats.Waiting++
		out.waiting = append(out.waiting, failure{side, rec.ID, wait})
	}
	return nil, create, nil
}

// unlinkedReason marks, among the waiting records, a record whose partner was deleted under
// delete: unlink: it stays unlinked, and is not created again on the other side.
const unlinkedReason = "unlinked: its partner was deleted (delete: unlink)"

// dropLink forgets the link of a record whose partner was deleted. Under delete: keep the
// survivor is looked at again next run and linked or created anew per the flow's policies;
// under delete: unlink it stays unlinked.
//
// The link is removed at once (not with the batch), so that the survivor can be linked or
// created again in the same batch without the removal undoing the new link.
func (fr *flowRun) dropLink(ctx context.Context, l *state.Link, survivorSide Side, survivorID string) error {
	fr.stats.Unlinked++
	fr.change(Change{Action: "unlink", Side: string(survivorSide), RecordID: survivorID, Reason: "its partner was deleted"})
	if fr.r.Opts.DryRun {
		return nil
	}
	reason := "its partner was deleted; it is synced again per the flow's create policy (delete: keep)"
	if fr.f.Delete == mapping.DeleteUnlink {
		reason = unlinkedReason
		fr.detached[Key{survivorSide, survivorID}] = true
	}
	return fr.commit(ctx, func(tx state.Tx) error {
		if err := tx.DeleteLink(fr.f.ID(), l.SourceID); err != nil {
			return err
		}
		if survivorSide == "" {
			return nil
		}
		// Kept as waiting until it is linked again, even if the run stops before that.
		return tx.PutWaiting(fr.f.ID(), string(survivorSide), survivorID, reason)
	})
}

// merge plans the writes of a pair (planner.merge, plan.go) and counts what it decided. A
// pair neither of whose records changed since its link was saved is not planned at all.
func (fr *flowRun) merge(p *pair) error {
	l := p.link
	if !p.isNew && !fr.resync && l.SourceHash == fr.digestOf(p, Source) && l.TargetHash == fr.digestOf(p, Target) {
		if !fr.readBefore(p) {
			fr.stats.Unchanged++
		}
		p.unchanged = true
		return nil
	}
	bases, err := l.Bases()
	if err != nil {
		return err
	}
	// A pair that refers to records their flows create on reference is planned again once
	// apply has created them (refs.withReferences), in the context of the flow's batches.
	var m *merged
	err = fr.refs.withReferences(fr.refs.ctx, func() (err error) {
		m, err = fr.plan.merge(p.src, p.tgt, bases)
		return err
	})
	for _, c := range m.changes {
		fr.change(c)
	}
	if err != nil {
		return err
	}
	p.srcPatch, p.tgtPatch, p.seen, p.hints, p.conflicts = m.srcPatch, m.tgtPatch, m.seen, m.hints, m.conflicts
	fr.stats.Conflicts += m.conflicts
	if len(p.tgtPatch) == 0 && len(p.srcPatch) == 0 && !p.isNew && !fr.readBefore(p) {
		fr.stats.Unchanged++
	}
	return nil
}
