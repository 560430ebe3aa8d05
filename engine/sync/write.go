package sync

import (
	"context"
	"fmt"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// write applies the pairs' patches to both systems in batches, then computes each link's new
// base from what the systems hold after the writes (read back), so that nothing the engine
// wrote comes back as a change.
func (fr *flowRun) write(ctx context.Context, pairs []*pair, out *outcome) error {
	var tgtPairs, srcPairs []*pair
	for _, p := range pairs {
		if p.link == nil {
			continue
		}
		if len(p.tgtPatch) > 0 {
			tgtPairs = append(tgtPairs, p)
		}
		if len(p.srcPatch) > 0 {
			srcPairs = append(srcPairs, p)
		}
	}
	if fr.r.Opts.DryRun {
		fr.stats.UpdatedTarget += len(tgtPairs)
		fr.stats.UpdatedSource += len(srcPairs)
		return nil
	}
	failed := map[*pair]bool{}
	before := map[*pair]connector.Record{} // source records as they were before the write
	if err := fr.update(ctx, Target, tgtPairs, failed, before, out); err != nil {
		fr.stats.Undone += len(srcPairs) // never attempted
		return err
	}
	if err := fr.update(ctx, Source, srcPairs, failed, before, out); err != nil {
		return err
	}
	if err := fr.update(ctx, Target, fr.followUps(srcPairs, before, failed), failed, before, out); err != nil {
		return err
	}
	fr.relink(pairs, failed, out)
	return nil
}

// relink gives the links of the pairs written (or found in sync) their new bases, for the
// batch's transaction (out); a pair whose base cannot be computed is a dead letter.
func (fr *flowRun) relink(pairs []*pair, failed map[*pair]bool, out *outcome) {
	for _, p := range pairs {
		if p.link == nil || failed[p] {
			continue
		}
		if p.unchanged {
			// The link already says all this; only a record that waited is resolved.
			out.resolved = append(out.resolved, p.link)
			continue
		}
		if len(p.tgtPatch) == 0 && len(p.srcPatch) == 0 && p.seen != nil {
			// Nothing written: the values merge saw are what the systems hold.
			fr.plan.withElements(p.seen, p.src.Data, p.tgt.Data, p.hints, p.link.Base)
			p.link.Base = p.seen
			p.link.SourceHash, p.link.TargetHash = fr.digestOf(p, Source), fr.digestOf(p, Target)
			p.link.Updated = fr.r.Opts.Now().UTC()
		} else if err := fr.rebase(p.link, p.src, p.tgt, p.hints); err != nil {
			fr.fail(out, p.side, idOn(p, p.side), err)
			continue
		}
		out.links = append(out.links, p.link)
		out.resolved = append(out.resolved, p.link)
		fr.refs.remember(fr.f, p.link.SourceID, p.link.TargetID)
	}
}

// update writes the patches of the pairs ps to side, and takes the records as written into
// them; a record that failed is marked in failed and is a dead letter of out. before keeps the
// source records as they were before the write, for followUps.
func (fr *flowRun) update(ctx context.Context, side Side, ps []*pair, failed map[*pair]bool, before map[*pair]connector.Record, out *outcome) error {
	if len(ps) == 0 {
		return nil
	}
	conn, entity := fr.on(side)
	recs := make([]connector.Record, len(ps))
	for i, p := range ps {
		if side == Target {
			recs[i] = connector.Record{ID: p.tgt.ID, Data: p.tgtPatch}
		} else {
			recs[i] = connector.Record{ID: p.src.ID, Data: p.srcPatch}
		}
	}
	results, err := conn.Update(ctx, entity, recs)
	results, failedCall := partialResults(results, len(recs), err)
	if rerr := readBack(ctx, conn, entity, results); rerr != nil {
		if failedCall {
			return err
		}
		return rerr
	}
	made, undone := 0, 0
	for i, res := range results {
		p := ps[i]
		if res.Err == errUndone {
			undone++
			fr.stats.Undone++
			continue
		}
		if res.Err == nil {
			made++
		}
		if res.Err != nil {
			failed[p] = true
			fr.fail(out, p.side, idOn(p, p.side), fmt.Errorf("writing %s %s: %w", entity, recs[i].ID, res.Err))
			continue
		}
		if side == Target {
			p.tgt = res.Record
			fr.stats.UpdatedTarget++
		} else {
			before[p] = p.src
			p.src = res.Record
			fr.stats.UpdatedSource++
		}
	}
	if failedCall {
		return &undoneError{err: err, entity: entity, made: made, undone: undone}
	}
	return nil
}

// followUps returns the pairs whose target must be written again after the source writes:
// a value computed for the target from source properties the engine just wrote (a label
// derived from a stock the target edited) has changed with them, and the target does not hold
// it yet. Their tgtPatch is set to those values. Lists are left to the next merge.
func (fr *flowRun) followUps(written []*pair, before map[*pair]connector.Record, failed map[*pair]bool) []*pair {
	var out []*pair
	for _, p := range written {
		old, ok := before[p]
		if !ok || failed[p] {
			continue
		}
		var desired map[string]any
		for _, prop := range fr.f.Properties {
			if !prop.ToTargetSide() || len(prop.Elements) > 0 {
				continue
			}
			was, err1 := prop.TargetValue(old.Data, fr.refs)
			now, err2 := prop.TargetValue(p.src.Data, fr.refs)
			if err1 != nil || err2 != nil {
				continue // the next merge reports it
			}
			nowC := mapping.Canonical(now)
			if string(nowC) == string(mapping.Canonical(was)) || string(nowC) == string(mapping.Canonical(prop.View(p.tgt.Data))) {
				continue
			}
			if desired == nil {
				desired = mapping.Clone(p.tgt.Data).(map[string]any)
			}
			prop.ApplyTarget(desired, now)
			fr.change(Change{Action: "update", Side: string(Target), RecordID: p.tgt.ID, Property: prop.Target,
				Old: string(mapping.Canonical(prop.View(p.tgt.Data))), New: string(nowC)})
		}
		if desired != nil {
			if p.tgtPatch = patch(p.tgt.Data, desired); len(p.tgtPatch) > 0 {
				out = append(out, p)
			}
		}
	}
	return out
}

// readBack replaces the results of a write by the records as the system stores them, for a
// connection that does not return them itself: the bases must be what the system holds.
func readBack(ctx context.Context, conn connector.Conn, entity string, results []connector.Result) error {
	if conn.Capabilities().ReturnsStored {
		return nil
	}
	var ids []string
	for _, r := range results {
		if r.Err == nil {
			ids = append(ids, r.Record.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	stored, refused, err := getSome(ctx, conn, entity, ids)
	if err != nil {
		return err
	}
	for i, r := range results {
		if r.Err != nil {
			continue
		}
		if why := refused[r.Record.ID]; why != nil {
			results[i].Err = fmt.Errorf("record %s was written, and could not be read back: %w", r.Record.ID, why)
		} else if rec, ok := stored[r.Record.ID]; ok {
			results[i].Record = rec
		} else {
			results[i].Err = fmt.Errorf("record %s is not there after the write", r.Record.ID)
		}
	}
	return nil
}

// rebase sets a link's base to the values the two records hold now; hints are the pairs of
// list elements a merge made (nil after a create).
func (fr *flowRun) rebase(l *state.Link, src, tgt connector.Record, hints map[string][]elemHint) error {
	return fr.rebaseWith(l, src, tgt, hints, nil, [2]string{}, &fr.dig)
}

// rebaseWith is rebase with the canonical values in target form of src's properties, by
// property key, when they are known (sVals, from build; nil computes them), the digests of src
// and tgt when they are known (hashes; "" computes them), and the digesters of the goroutine
// it runs on.
func (fr *flowRun) rebaseWith(l *state.Link, src, tgt connector.Record, hints map[string][]elemHint, sVals propValues, hashes [2]string, d *digesters) error {
	base, err := fr.plan.baseOf(src, tgt, hints, sVals, l.Base)
	if err != nil {
		return err
	}
	l.Base = base
	l.SourceID, l.TargetID = src.ID, tgt.ID
	fr.stamp(l, src, tgt, hashes, d, fr.r.Opts.Now().UTC())
	return nil
}

// stamp sets a rebased link's digests (hashes where known, else computed with d) and its time.
func (fr *flowRun) stamp(l *state.Link, src, tgt connector.Record, hashes [2]string, d *digesters, at time.Time) {
	l.SourceHash, l.TargetHash = hashes[0], hashes[1]
	if l.SourceHash == "" {
		l.SourceHash = d.src.digest(src.Data)
	}
	if l.TargetHash == "" {
		l.TargetHash = d.tgt.digest(tgt.Data)
	}
	l.Updated = at
}

// save records a batch's links, failures and waits in one transaction.
func (fr *flowRun) save(ctx context.Context, out *outcome) error {
	if fr.r.Opts.DryRun {
		return nil
	}
	if len(out.links)+len(out.dead)+len(out.waiting)+len(out.resolved)+len(out.unlink) == 0 {
		return nil
	}
	flow := fr.f.ID()
	return fr.commit(ctx, func(tx state.Tx) error {
		for _, src := range out.unlink {
			if err := tx.DeleteLink(flow, src); err != nil {
				return err
			}
		}
		for _, l := range out.links {
			l.MergedIn = fr.runID
		}
		if err := tx.PutLinks(out.links); err != nil {
			return err
		}
		for _, l := range out.resolved {
			for _, rec := range [][2]string{{state.Source, l.SourceID}, {state.Target, l.TargetID}} {
				if err := tx.ClearDeadLetter(flow, rec[0], rec[1]); err != nil {
					return err
				}
				if err := tx.ClearWaiting(flow, rec[0], rec[1]); err != nil {
					return err
				}
			}
		}
		for _, f := range out.dead {
			if err := tx.PutDeadLetter(flow, string(f.side), f.id, f.reason); err != nil {
				return err
			}
		}
		for _, f := range out.waiting {
			if err := tx.PutWaiting(flow, string(f.side), f.id, f.reason); err != nil {
				return err
			}
		}
		return nil
	})
}
