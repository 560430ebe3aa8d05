package sync

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
)

// ErrNewState is returned (wrapped) when a run refuses a link state that knows nothing while
// the systems already hold the records of a flow that would create copies of them.
var ErrNewState = errors.New("new link state")

// errHasRecord stops a scan at its first record.
var errHasRecord = errors.New("has a record")

// checkNewState refuses to start a run on a link state that has never run and has no link of
// a flow that creates records without merge criteria, while both of the flow's systems hold
// records: the state was most likely lost (deleted, a wrong --state), and the run would
// create a copy of every record on the other side (5,000 silent duplicates). With merge
// criteria the first run links the records both sides hold instead.
func (r *Runner) checkNewState(ctx context.Context, flows []*mapping.Flow) error {
	if r.Opts.AllowNewState || r.Opts.DryRun {
		return nil
	}
	runs, err := r.State.Runs(ctx, 1)
	if err != nil || len(runs) > 0 {
		return err
	}
	var refused []string
	for _, f := range flows {
		creates := f.CreateTarget == config.CreateAlways || f.CreateSource == config.CreateAlways
		if !creates || len(f.Merge) > 0 {
			continue
		}
		if linked, err := r.State.HasLinks(ctx, f.ID()); err != nil || linked {
			if err != nil {
				return err
			}
			continue
		}
		src, tgt := r.Conns[f.Dataflow.Source.Config.ID.Value], r.Conns[f.Dataflow.Target.Config.ID.Value]
		if src == nil || tgt == nil {
			continue // newFlowRun reports it
		}
		srcHas, err := holdsRecords(ctx, src, f.Source.Name())
		if err != nil || !srcHas {
			if err != nil {
				return fmt.Errorf("flow %s: %w", f.ID(), err)
			}
			continue
		}
		tgtHas, err := holdsRecords(ctx, tgt, f.Target.Name())
		if err != nil {
			return fmt.Errorf("flow %s: %w", f.ID(), err)
		}
		if tgtHas {
			refused = append(refused, fmt.Sprintf("%s (%s %s and %s %s)", f.ID(),
				f.Dataflow.Source.Name(), f.Source.Name(), f.Dataflow.Target.Name(), f.Target.Name()))
		}
	}
	if len(refused) == 0 {
		return nil
	}
	return fmt.Errorf("%w: the link state has no links and no runs, but both systems of flow %s already hold records, "+
		"and the flow creates records without merge criteria: this run would create a copy of every record on the other side. "+
		"If the link state was lost, restore it from a backup (or point --state at it); if the records were never synced, "+
		"run with --allow-new-state, or give the flow merge criteria that link the records both sides hold",
		ErrNewState, strings.Join(refused, ", flow "))
}

// holdsRecords reports whether an entity has a record: by its count where the connection
// counts, else by reading its first page.
func holdsRecords(ctx context.Context, conn connector.Conn, entity string) (bool, error) {
	if c := conn.Capabilities().Counter; c != nil {
		n, err := c.Count(ctx, entity)
		return n > 0, err
	}
	err := conn.Scan(ctx, entity, "", func(recs []connector.Record) error {
		if len(recs) > 0 {
			return errHasRecord
		}
		return nil
	})
	if errors.Is(err, errHasRecord) {
		return true, nil
	}
	return false, err
}
