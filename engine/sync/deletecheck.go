package sync

import (
	"context"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// The delete check decides whether a flow run must look for links whose records were deleted
// (deletePass reads the partners of every link: its cost grows with the links), or whether it
// can tell from what the run read anyway that no linked record can be gone. A run where nothing
// changed then costs what changed.
//
// For each side it needs one of three proofs:
//
//   - The pass read the whole side (no watermark): every record that exists was read. When the
//     records read with a link from before the run number the links the flow had when the run
//     began, every one of those links still has its record on this side.
//   - Counts. The flow's last run that left no link to a deleted record behind stored the
//     number of records of the side, E. Since then users created a records and deleted d, so
//     the side now holds c = E + a - d records (counted when the flow run begins, before it
//     writes). Every created record is newer than the watermark, so the pass reads it, and has
//     no link when the run begins: a ≤ u, u being the records the pass read that had no link
//     when the run began (leaving out those the run itself created). Then d = a - (c - E) ≤
//     u - (c - E): when c - E = u, nothing was deleted (d = 0). A record deleted together with
//     an edit of an old unlinked record makes c - E < u: the full check runs. For a side the
//     flow does not read, u = 0 and the check needs c = E.
//   - Deletions. A system that counts the deletions of the side's records as they happen
//     (connector.DeleteCounter) gives a number when the flow run begins; equal to the number
//     the last such run stored, no record of the side was deleted since, and the side is not
//     counted (a count reads the whole table: a run where nothing changed would grow with it).
//
// The count proof assumes that every record created on a side is read by the next incremental
// read, as the engine already assumes to sync it; a record that appears unread (created with an
// old or no last-modified stamp, or on a side the flow does not read) together with a deletion
// in the same interval can hide the deletion. So the full check also runs every
// Options.DeleteCheckEvery runs, and whenever a proof is missing: no counts stored (the first
// run, a run killed or failed since, a system that cannot count), a pass that did not read
// what it had to. A deletion is thus noticed on the first run whose counts show it, and at the
// latest DeleteCheckEvery runs later. The counts are cleared when the flow run begins and
// stored again only at its end, after a check that left nothing to do, so a run killed
// half-way never leaves counts that a later run would trust.
type deleteCheck struct {
	stored   state.Counts
	ok       bool          // counts were stored
	now      map[Side]int  // records per side when the flow run began; absent: not counted
	links    int           // the flow's links when the run began (for whole reads)
	hadLinks bool          // the flow had a link when the run began: else nothing to check
	whole    map[Side]bool // the sides the pass reads whole
	linked   map[Side]int  // per side: records read with a link from before the run
	unlinked map[Side]int  // per side: records read without one (u)
	full     bool          // the check read every link
	left     bool          // the check left work undone (a failed delete)
	// deletions holds, per side whose system counts deletions, its number when the run
	// began; proven the sides where it equals the stored one (no record deleted since).
	deletions map[Side]int64
	proven    map[Side]bool
}

// counter returns the connection of side when it counts records, else nil.
func (fr *flowRun) counter(side Side) connector.Counter {
	conn, _ := fr.on(side)
	return conn.Capabilities().Counter
}

// beginDeleteCheck takes what the delete check compares, before the flow run writes anything,
// and clears the stored counts.
func (fr *flowRun) beginDeleteCheck(ctx context.Context) (*deleteCheck, error) {
	dc := &deleteCheck{now: map[Side]int{}, whole: map[Side]bool{}, linked: map[Side]int{}, unlinked: map[Side]int{},
		deletions: map[Side]int64{}, proven: map[Side]bool{}}
	var err error
	if dc.stored, dc.ok, err = fr.r.State.Counts(ctx, fr.f.ID()); err != nil {
		return nil, err
	}
	if dc.hadLinks, err = fr.r.State.HasLinks(ctx, fr.f.ID()); err != nil {
		return nil, err
	}
	anyWhole := false
	for _, side := range []Side{Source, Target} {
		if !fr.writes(other(side)) {
			continue // not read
		}
		wm := ""
		if fr.updatedOf(side) != "" {
			if wm, err = fr.r.State.Watermark(ctx, fr.f.ID(), string(side)); err != nil {
				return nil, err
			}
		}
		dc.whole[side] = wm == ""
		anyWhole = anyWhole || wm == ""
	}
	if anyWhole && dc.hadLinks {
		if dc.links, err = fr.r.State.CountLinks(ctx, fr.f.ID()); err != nil {
			return nil, err
		}
	}
	for _, side := range []Side{Source, Target} {
		conn, entity := fr.on(side)
		if dcs := conn.Capabilities().DeleteCounter; dcs != nil {
			n, counting, err := dcs.Deletions(ctx, entity)
			if err != nil {
				return nil, err
			}
			if counting {
				dc.deletions[side] = n
				_, stored := dc.stored.Side(string(side))
				dc.proven[side] = dc.ok && stored >= 0 && stored == n
			}
		}
		if dc.proven[side] {
			continue
		}
		if c := fr.counter(side); c != nil {
			n, err := c.Count(ctx, entity)
			if err != nil {
				return nil, err
			}
			dc.now[side] = n
		}
	}
	if dc.ok && !fr.r.Opts.DryRun {
		if err := fr.commit(ctx, func(tx state.Tx) error { return tx.ClearCounts(fr.f.ID()) }); err != nil {
			return nil, err
		}
	}
	return dc, nil
}

// emptyAtStart reports whether side held no records when the flow run began. Then no record
// there can match by merge criteria but those this run created, which are linked, and the side
// is not searched. (A record someone else creates there while the run goes on is not seen
// before the next run; with a search, the window is a batch instead of the run.)
func (fr *flowRun) emptyAtStart(side Side) bool {
	if fr.check == nil {
		return false
	}
	n, counted := fr.check.now[side]
	return counted && n == 0
}

// tally counts the records a pass read (links: their links as the batch found them).
func (fr *flowRun) tally(side Side, recs []connector.Record, links map[string]*state.Link) {
	dc := fr.check
	if dc == nil || fr.scanning != side {
		return
	}
	for _, r := range recs {
		l := links[r.ID]
		switch {
		case l == nil:
			dc.unlinked[side]++
		case fr.runID == 0 || l.LinkedIn != fr.runID:
			dc.linked[side]++
		case l.Made == string(side):
			// created by this run, after the counts were taken
		default:
			dc.unlinked[side]++ // linked by this run: it had no link when the run began
		}
	}
}

// needed reports whether the delete check must read every link.
func (fr *flowRun) needed(dc *deleteCheck) bool {
	if !dc.ok || dc.stored.Skipped+1 >= fr.r.Opts.DeleteCheckEvery {
		return true
	}
	for _, side := range []Side{Source, Target} {
		if dc.whole[side] {
			if dc.linked[side] != dc.links {
				return true
			}
			continue
		}
		if dc.proven[side] {
			continue
		}
		n, counted := dc.now[side]
		before, _ := dc.stored.Side(string(side))
		if !counted || before < 0 || int64(n)-before != int64(dc.unlinked[side]) {
			return true
		}
	}
	return false
}

// endDeleteCheck stores the counts for the next run, after a check that left nothing to do.
func (fr *flowRun) endDeleteCheck(ctx context.Context, dc *deleteCheck) error {
	if fr.r.Opts.DryRun || dc.left {
		return nil
	}
	var c state.Counts
	if !dc.full {
		c.Skipped = dc.stored.Skipped + 1
	}
	created := map[Side]int{Source: fr.stats.CreatedSource, Target: fr.stats.CreatedTarget}
	for _, side := range []Side{Source, Target} {
		deletions, ok := dc.deletions[side]
		if !ok {
			deletions = -1
		}
		c.SetSide(string(side), -1, deletions)
		counter := fr.counter(side)
		if counter == nil || dc.proven[side] {
			continue // a proven side is not counted: its number of deletions is the proof
		}
		// A count reads the whole table (SELECT COUNT(*)); when the run deleted nothing and
		// adopted nothing, the count is the one taken at the start plus the run's creates.
		// Records others created meanwhile are then left out; the next run reads them as new
		// (its proof holds) or, if this run read them already, runs the full check: an error
		// only ever towards checking.
		n, counted := dc.now[side]
		if counted && fr.stats.Deleted == 0 && fr.stats.Recovered == 0 {
			n += created[side]
		} else {
			_, entity := fr.on(side)
			var err error
			if n, err = counter.Count(ctx, entity); err != nil {
				return err
			}
		}
		c.SetSide(string(side), int64(n), deletions)
	}
	return fr.commit(ctx, func(tx state.Tx) error { return tx.SetCounts(fr.f.ID(), c) })
}
