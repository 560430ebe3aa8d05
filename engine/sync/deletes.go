package sync

import (
	"context"
	"fmt"
	"math"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// deletePass finds linked records whose partner was deleted and, per the flow's delete
// policy, deletes the survivor (propagate) or forgets the link (keep, unlink). The circuit
// breaker refuses to delete more than a share of the flow's linked records in one run: a mass
// delete is far more often an outage or a wrong filter than an intention. It reads every link's
// two records, so its cost grows with the number of links: the delete check (deletecheck.go)
// runs it only when a run cannot tell that no linked record was deleted.
func (fr *flowRun) deletePass(ctx context.Context) error {
	type gone struct {
		link     *state.Link
		survivor string // the side whose record still exists, "" when both are gone
	}
	var plan []gone
	total := 0
	err := fr.r.State.ScanLinks(ctx, fr.f.ID(), func(links []*state.Link) error {
		total += len(links)
		srcIDs := make([]string, len(links))
		tgtIDs := make([]string, len(links))
		for i, l := range links {
			srcIDs[i], tgtIDs[i] = l.SourceID, l.TargetID
		}
		srcs, err := fr.src.Get(ctx, fr.srcEntity, srcIDs)
		if err != nil {
			return err
		}
		tgts, err := fr.tgt.Get(ctx, fr.tgtEntity, tgtIDs)
		if err != nil {
			return err
		}
		for _, l := range links {
			_, hasSrc := srcs[l.SourceID]
			_, hasTgt := tgts[l.TargetID]
			switch {
			case hasSrc && hasTgt:
			case hasSrc:
				plan = append(plan, gone{l, state.Source})
			case hasTgt:
				plan = append(plan, gone{l, state.Target})
			default:
				plan = append(plan, gone{l, ""})
			}
		}
		return nil
	})
	if err != nil || len(plan) == 0 {
		return err
	}
	deletes := 0
	for _, g := range plan {
		if g.survivor != "" && fr.writes(g.survivor) {
			deletes++
		}
	}
	if fr.f.Delete == "propagate" {
		limit := max(1, int(math.Floor(fr.r.Opts.MaxDeleteShare*float64(total))))
		if deletes > limit {
			return fmt.Errorf("%w: %d of %d linked records would be deleted, more than the limit of %d (%.0f%%); nothing was deleted. Check the systems; if the deletes are intended, delete in smaller steps", ErrBreaker, deletes, total, limit, fr.r.Opts.MaxDeleteShare*100)
		}
	}
	out := &outcome{}
	survivors := map[string][]string{}
	doomed := map[string][]*state.Link{} // side → the links whose record there is deleted
	for _, g := range plan {
		// A delete propagates only in a direction the flow syncs: a to-target flow never
		// deletes in its source.
		if fr.f.Delete == "propagate" && g.survivor != "" && fr.writes(g.survivor) {
			doomed[g.survivor] = append(doomed[g.survivor], g.link)
			continue
		}
		survivorID := ""
		switch g.survivor {
		case state.Source:
			survivorID = g.link.SourceID
		case state.Target:
			survivorID = g.link.TargetID
		}
		if err := fr.dropLink(ctx, g.link, g.survivor, survivorID); err != nil {
			return err
		}
		if g.survivor != "" {
			survivors[g.survivor] = append(survivors[g.survivor], survivorID)
		}
	}
	for _, side := range []string{state.Source, state.Target} {
		fr.deleteLinked(ctx, side, doomed[side], out)
	}
	if err := fr.save(ctx, out); err != nil {
		return err
	}
	// Survivors of delete: keep are synced again now, not on the next run: a run after which
	// something is left to do would look settled to --until-stable.
	if fr.f.Delete != "keep" || fr.r.Opts.DryRun {
		return nil
	}
	for _, side := range []string{state.Source, state.Target} {
		ids := survivors[side]
		if len(ids) == 0 {
			continue
		}
		conn, entity := fr.on(side)
		got, err := conn.Get(ctx, entity, ids)
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

// deleteLinked deletes the records of side that links point at, in batches, and unlinks
// those deleted. A record the system does not delete keeps its link: the next run checks it
// again.
func (fr *flowRun) deleteLinked(ctx context.Context, side string, links []*state.Link, out *outcome) {
	conn, entity := fr.on(side)
	for start := 0; start < len(links); start += fr.batchSize {
		chunk := links[start:min(start+fr.batchSize, len(links))]
		ids := make([]string, len(chunk))
		for i, l := range chunk {
			ids[i] = l.TargetID
			if side == state.Source {
				ids[i] = l.SourceID
			}
			fr.change(Change{Action: "delete", Side: side, RecordID: ids[i]})
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
