package sync

import (
	"context"
	"fmt"
	"time"

	"github.com/dataflow-sync/dataflow/engine/state"
)

// A reconcile is a flow run that reads both sides whole, whatever the watermarks, so that
// every linked pair is compared with its link: the records' digests against those the link
// saved. An edit that did not change a record's updated value (an application that does not
// stamp, a dropped trigger) is invisible to reads from a watermark and found here. It costs a
// whole read and two digests per link; merging is only for the pairs that differ.

// reconcileEvery returns the flow's dataflow's reconcile schedule, 0 when it has none.
func (fr *flowRun) reconcileEvery() (time.Duration, error) {
	v := fr.f.Dataflow.Config.Reconcile
	if v.Value == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v.Value)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("dataflow %s: reconcile %q is not a duration: write a number with a unit, such as 24h or 12h30m", fr.f.Dataflow.Config.ID.Value, v.Value)
	}
	return d, nil
}

// decideReconcile says whether this flow run is a reconcile: one was asked for, or the
// schedule's time has come since the flow's last one (a flow never reconciled has its first
// run, which reads everything anyway, or the next one).
func (fr *flowRun) decideReconcile(ctx context.Context) error {
	every, err := fr.reconcileEvery()
	if err != nil {
		return err
	}
	fr.reconcileSet = every > 0
	switch {
	case fr.r.Opts.Reconcile:
		fr.stats.Reconcile = true
	case every > 0:
		last, ok, err := fr.r.State.Reconciled(ctx, fr.f.ID())
		if err != nil {
			return err
		}
		fr.stats.Reconcile = !ok || !fr.r.Opts.Now().Before(last.Add(every))
	}
	return nil
}

// reconciling reports whether this flow run reads its sides whole, whatever the watermarks.
func (fr *flowRun) reconciling() bool { return fr.stats.Reconcile }

// countDiffered counts, in a reconcile, the linked pairs of a batch that differed from their
// links and were written.
func (fr *flowRun) countDiffered(pairs []*pair) {
	if !fr.reconciling() {
		return
	}
	for _, p := range pairs {
		if p.link != nil && !p.isNew && !p.unchanged && (len(p.srcPatch) > 0 || len(p.tgtPatch) > 0) {
			fr.stats.Reconciled++
		}
	}
}

// endReconcile records, after a flow run that read its sides whole without an error, when
// it did, for the schedule.
func (fr *flowRun) endReconcile(ctx context.Context, started time.Time) error {
	if fr.r.Opts.DryRun || !fr.reconcileSet && !fr.r.Opts.Reconcile {
		return nil
	}
	for _, side := range []Side{Source, Target} {
		if fr.writes(other(side)) && !fr.readWhole[side] {
			return nil // read from a watermark
		}
	}
	return fr.commit(ctx, func(tx state.Tx) error { return tx.SetReconciled(fr.f.ID(), started) })
}
