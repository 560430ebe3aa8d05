package sync

import (
	"context"
	"fmt"
	"math"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// gone is a link one of whose records is missing.
type gone struct {
	link     *state.Link
	survivor Side // the side whose record still exists, "" when both are gone
}

// vanish notes a link whose record on the other side of side a pass did not find.
func (fr *flowRun) vanish(l *state.Link, survivorSide Side) {
	if fr.vanishedSeen == nil {
		fr.vanishedSeen = map[string]bool{}
	}
	if fr.vanishedSeen[l.SourceID] {
		return
	}
	fr.vanishedSeen[l.SourceID] = true
	fr.vanished = append(fr.vanished, gone{l, survivorSide})
}

// deletePass deals with the linked records that are missing: those the passes did not find
// (vanish) and, when scan is set, those found by reading every link's two records. Per the
// flow's delete policy it deletes the survivor (propagate) or forgets the link (keep, unlink).
//
// Whatever the policy, the circuit breaker refuses to act when more than a share of the
// flow's linked records of one side are missing in one run: a mass disappearance is far more
// often an outage, an expired token (a list that comes back empty) or a wrong filter than an
// intention, and under keep each missing record would be unlinked and created again. Nothing
// is then unlinked, deleted or created; the change is recorded as pending (state.Pending) and
// the flow stops with an error wrapping ErrBreaker. Once a person approves it, the next run
// makes the changes of the links it names, whatever their number.
//
// Reading every link's two records costs what the links number: the delete check
// (deletecheck.go) scans only when a run cannot tell that no linked record was deleted.
func (fr *flowRun) deletePass(ctx context.Context, scan bool) error {
	plan := fr.vanished
	inPlan := fr.vanishedSeen
	if inPlan == nil {
		inPlan = map[string]bool{}
	}
	plan, total, err := fr.findGone(ctx, scan, plan, inPlan)
	if err != nil {
		return err
	}
	fr.vanished, fr.vanishedSeen = nil, nil
	if len(plan) == 0 {
		return nil
	}
	if err := fr.breaker(ctx, plan, total); err != nil {
		return err
	}
	out := &outcome{}
	survivors := map[Side][]string{}
	doomed := map[Side][]*state.Link{} // side → the links whose record there is deleted
	for _, g := range plan {
		// A delete propagates only in a direction the flow syncs: a to-target flow never
		// deletes in its source.
		if fr.f.Delete == mapping.DeletePropagate && g.survivor != "" && fr.writes(g.survivor) {
			doomed[g.survivor] = append(doomed[g.survivor], g.link)
			continue
		}
		survivorID := ""
		switch g.survivor {
		case Source:
			survivorID = g.link.SourceID
		case Target:
			survivorID = g.link.TargetID
		}
		if err := fr.dropLink(ctx, g.link, g.survivor, survivorID); err != nil {
			return err
		}
		if g.survivor != "" {
			survivors[g.survivor] = append(survivors[g.survivor], survivorID)
		}
	}
	for _, side := range []Side{Source, Target} {
		fr.deleteLinked(ctx, side, doomed[side], out)
	}
	if err := fr.save(ctx, out); err != nil {
		return err
	}
	// Survivors of delete: keep are synced again now, not on the next run: a run after which
	// something is left to do would look settled to --until-stable.
	if fr.f.Delete != mapping.DeleteKeep || fr.r.Opts.DryRun {
		return nil
	}
	return fr.syncSurvivors(ctx, survivors)
}

// findGone returns plan (the links whose record the passes did not find) with, when scan is
// set, every other link of the flow whose record is missing on a side (inPlan: the source ids
// of the links already in plan), and the number of the flow's links.
func (fr *flowRun) findGone(ctx context.Context, scan bool, plan []gone, inPlan map[string]bool) ([]gone, int, error) {
	total := 0
	if scan {
		err := fr.r.State.ScanLinks(ctx, fr.f.ID(), func(links []*state.Link) error {
			total += len(links)
			srcIDs := make([]string, len(links))
			tgtIDs := make([]string, len(links))
			for i, l := range links {
				srcIDs[i], tgtIDs[i] = l.SourceID, l.TargetID
			}
			// A record a system refuses to read (connector.RecordError) is not missing.
			srcs, srcRefused, err := getSome(ctx, fr.src, fr.srcEntity, srcIDs)
			if err != nil {
				return err
			}
			tgts, tgtRefused, err := getSome(ctx, fr.tgt, fr.tgtEntity, tgtIDs)
			if err != nil {
				return err
			}
			for _, l := range links {
				if inPlan[l.SourceID] {
					continue
				}
				_, hasSrc := srcs[l.SourceID]
				_, hasTgt := tgts[l.TargetID]
				hasSrc = hasSrc || srcRefused[l.SourceID] != nil
				hasTgt = hasTgt || tgtRefused[l.TargetID] != nil
				switch {
				case hasSrc && hasTgt:
				case hasSrc:
					plan = append(plan, gone{l, Source})
				case hasTgt:
					plan = append(plan, gone{l, Target})
				default:
					plan = append(plan, gone{l, ""})
				}
			}
			return nil
		})
		return plan, total, err
	}
	total, err := fr.r.State.CountLinks(ctx, fr.f.ID())
	return plan, total, err
}

// syncSurvivors merges, links or creates again the records of each side whose partner was
// deleted under delete: keep (survivors, by side).
func (fr *flowRun) syncSurvivors(ctx context.Context, survivors map[Side][]string) error {
	for _, side := range []Side{Source, Target} {
		ids := survivors[side]
		if len(ids) == 0 {
			continue
		}
		conn, entity := fr.on(side)
		got, _, err := getSome(ctx, conn, entity, ids)
		if err != nil {
			return err
		}
		recs := make([]connector.Record, 0, len(got))
		for _, id := range ids {
			if rec, ok := got[id]; ok {
				recs = append(recs, rec)
			}
		}
		if err := fr.batch(ctx, side, recs); err != nil {
			return err
		}
	}
	return nil
}

// deleteHold is the circuit breaker's decision on the links whose record went missing: held
// says that on side, the side with more missing, missing records (leaving out the links of
// approved changes) are more than limit, the share of the flow's links a run may change.
type deleteHold struct {
	side           Side
	missing, limit int
	held           bool
}

// holdDeletes decides the breaker from the vanished links (plan), the flow's number of links
// (total), Options.MaxDeleteShare (share) and the source ids of the links of approved changes.
// At least one record may go, whatever the share.
func holdDeletes(plan []gone, total int, share float64, approved map[string]bool) deleteHold {
	missing := map[Side]int{}
	for _, g := range plan {
		if approved[g.link.SourceID] {
			continue
		}
		for _, side := range []Side{Source, Target} {
			if g.survivor != side {
				missing[side]++
			}
		}
	}
	h := deleteHold{side: Source, limit: max(1, int(math.Floor(share*float64(total))))}
	if missing[Target] > missing[Source] {
		h.side = Target
	}
	h.missing = missing[h.side]
	h.held = h.missing > h.limit
	return h
}

// breaker refuses a plan in which more than Options.MaxDeleteShare of the flow's total links
// have their record on one side missing, leaving out the links of an approved pending change:
// it records the plan as pending and returns an error wrapping ErrBreaker.
func (fr *flowRun) breaker(ctx context.Context, plan []gone, total int) error {
	approved := map[string]bool{}
	pending, err := fr.r.State.Pending(ctx, fr.f.ID())
	if err != nil {
		return err
	}
	for _, p := range pending {
		if p.Status != state.PendingApproved {
			continue
		}
		for _, l := range p.Links {
			approved[l.SourceID] = true
		}
	}
	hold := holdDeletes(plan, total, fr.r.Opts.MaxDeleteShare, approved)
	if !hold.held {
		return nil
	}
	sys, entity := fr.f.Dataflow.Source, fr.srcEntity
	if hold.side == Target {
		sys, entity = fr.f.Dataflow.Target, fr.tgtEntity
	}
	what := fmt.Sprintf("%d of %d linked records of %s (%s) are missing, more than the limit of %d (%.0f%%)",
		hold.missing, total, sys.Name(), entity, hold.limit, fr.r.Opts.MaxDeleteShare*100)
	if fr.r.Opts.DryRun {
		return fmt.Errorf("%w: %s; a run would unlink, delete or create nothing, and ask for approval", ErrBreaker, what)
	}
	p := &state.Pending{Flow: fr.f.ID(), Created: fr.r.Opts.Now().UTC(), Summary: fmt.Sprintf("%s; delete: %s", what, fr.f.Delete)}
	for _, g := range plan {
		missingSide := Side("")
		switch g.survivor {
		case Source:
			missingSide = Target
		case Target:
			missingSide = Source
		}
		p.Links = append(p.Links, state.PendingLink{SourceID: g.link.SourceID, TargetID: g.link.TargetID, Missing: string(missingSide)})
	}
	var id int64
	if err := fr.commit(ctx, func(tx state.Tx) (err error) {
		id, err = tx.PutPending(p)
		return err
	}); err != nil {
		return err
	}
	if fr.check != nil {
		fr.check.left = true // the links stay; the next run checks them again
	}
	return fmt.Errorf("%w: %s; nothing was unlinked, deleted or created. If they were removed on purpose, approve the change (dataflow approve %d) and run again; if not (an expired token, a wrong filter, an outage), fix the system and run again, or drop the change (dataflow reject %d)",
		ErrBreaker, what, id, id)
}

// dropApprovals forgets the flow's approved pending changes once a flow run has made them (or
// found their records back): an approval is for the next run.
func (fr *flowRun) dropApprovals(ctx context.Context) error {
	if fr.r.Opts.DryRun {
		return nil
	}
	pending, err := fr.r.State.Pending(ctx, fr.f.ID())
	if err != nil {
		return err
	}
	for _, p := range pending {
		if p.Status != state.PendingApproved {
			continue
		}
		if err := fr.commit(ctx, func(tx state.Tx) error { return tx.DeletePending(p.ID) }); err != nil {
			return err
		}
	}
	return nil
}

// deleteLinked deletes the records of side that links point at, in batches, and unlinks
// those deleted. A record the system does not delete keeps its link: the next run checks it
// again.
func (fr *flowRun) deleteLinked(ctx context.Context, side Side, links []*state.Link, out *outcome) {
	conn, entity := fr.on(side)
	for start := 0; start < len(links); start += fr.batchSize {
		chunk := links[start:min(start+fr.batchSize, len(links))]
		ids := make([]string, len(chunk))
		for i, l := range chunk {
			ids[i] = l.TargetID
			if side == Source {
				ids[i] = l.SourceID
			}
			fr.change(Change{Action: "delete", Side: string(side), RecordID: ids[i]})
		}
		errs := make([]error, len(ids))
		if !fr.r.Opts.DryRun {
			var err error
			if errs, err = conn.Delete(ctx, entity, ids); err != nil {
				errs = make([]error, len(ids))
				for i := range errs {
					errs[i] = err
				}
			}
		}
		for i, l := range chunk {
			if errs[i] != nil {
				fr.stats.Failed++
				if fr.check != nil {
					fr.check.left = true // the link stays; the next run checks it again
				}
				continue
			}
			fr.stats.Deleted++
			out.unlink = append(out.unlink, l.SourceID)
		}
	}
}

// deleteOne deletes one record (an orphan copy found by recovery).
func deleteOne(ctx context.Context, conn connector.Conn, entity, id string) error {
	errs, err := conn.Delete(ctx, entity, []string{id})
	if err != nil {
		return err
	}
	return errs[0]
}
