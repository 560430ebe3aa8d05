// Package sync executes dataflows: for each flow, in the order of their references, it reads
// both systems (everything, or what changed since the last watermark), links records by merge
// criteria or by creating them, merges every linked pair property by property against the
// last synced values, writes what changed to the other side, and records links, intents,
// watermarks, waiting records and dead letters in the link state. It is the generic runner:
// nothing in it knows a particular system.
//
// A flow run (flow.go) reads each side in a pass of batches (pass.go, scan.go, watermark.go). For
// each batch, batch.go reads the links and partners of its records and links the unlinked ones by
// merge criteria (match.go); the planner (plan.go, lists.go) decides without I/O each linked
// pair's merge and what becomes of a record nothing matches; write.go writes the patches and
// saves the new bases, create.go creates the records that have no partner (stage.go commits their
// links beside the next batch), and recover.go finishes the creates a killed run left. deletes.go
// and deletecheck.go find the links whose record is gone, behind the circuit breaker. A
// connection's abilities come from its Capabilities, never from type assertions, so a wrapped
// connection keeps them.
package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// Options tune a run.
type Options struct {
	// DryRun computes the same plan and writes nothing: not to the systems, not to the state.
	DryRun bool
	// Flows limits the run to these flow ids (and runs them in dependency order); empty runs all.
	Flows []string
	// BatchSize is the number of records read, merged and written together. The default is
	// 1,000 for a flow between systems that take large batches well (local databases,
	// connector.Capabilities.LargeBatches) and 500 otherwise, so that a run over a slow API
	// still finishes its batch soon after an interrupt.
	BatchSize int
	// MaxDeleteShare is the circuit breaker of delete: propagate: a run never deletes more than
	// this share of a flow's linked records (default 0.1; at least one record may go).
	MaxDeleteShare float64
	// DeleteCheckEvery: a run looks for deleted linked records by reading every link's records
	// only when the record counts do not show that none was deleted, and at least every this
	// many runs of a flow (default 20; 1 reads them on every run). See deletecheck.go.
	DeleteCheckEvery int
	// Reconcile makes every flow a reconcile: both sides read whole, whatever the watermarks,
	// and each linked pair compared with its link (digests), so that edits that did not
	// change a record's updated value are synced. A dataflow's `reconcile` schedules them.
	Reconcile bool
	// ClockSkew is how far a system's clock may run ahead of this machine's: a watermark never
	// moves past the time its read started less this (default DefaultClockSkew).
	ClockSkew time.Duration
	// Resync merges every linked pair of the selected flows again, whether or not their
	// records changed, without linking anew (as a run does by itself after the property
	// table of a flow changed; resync.go).
	Resync bool
	// AllowNewSystems lets a run go on against a system in another place than the one its
	// links were made with, although it holds records with linked ids (a copy of the
	// database): checkSystems.
	AllowNewSystems bool
	// AllowNewState lets a run start on a link state that has never run although both
	// systems of a flow that creates records without merge criteria hold records
	// (checkNewState): the records were never synced, and the state is not lost.
	AllowNewState bool
	// Now gives the time, for tests.
	Now func() time.Time
	// Progress, when set, is called after each batch.
	Progress func(flow string, stats *FlowStats)
}

// Runner runs the flows of a compiled project over open connections and a link state.
type Runner struct {
	Project *mapping.Project
	Conns   map[string]connector.Conn // by system id
	State   state.Store
	Opts    Options
}

// FlowStats counts what a run did in one flow.
type FlowStats struct {
	Flow          string `json:"flow"`
	ReadSource    int    `json:"read_source"`
	ReadTarget    int    `json:"read_target"`
	CreatedTarget int    `json:"created_target"`
	CreatedSource int    `json:"created_source"`
	Merged        int    `json:"merged"` // linked by merge criteria
	UpdatedTarget int    `json:"updated_target"`
	UpdatedSource int    `json:"updated_source"`
	Conflicts     int    `json:"conflicts"`
	Unchanged     int    `json:"unchanged"`
	Waiting       int    `json:"waiting"`
	Failed        int    `json:"failed"`
	Deleted       int    `json:"deleted"`
	Unlinked      int    `json:"unlinked"`
	Recovered     int    `json:"recovered"` // created records adopted after a crash
	// Reconcile says that this flow's run was a reconcile (Options.Reconcile, or its
	// dataflow's schedule), and Reconciled how many linked pairs it found differing from
	// their links, and synced: edits that a run from the watermarks would not have read.
	Reconcile  bool `json:"reconcile,omitempty"`
	Reconciled int  `json:"reconciled,omitempty"`
	// Undone counts the writes a batch planned and did not make because a call to a system
	// failed as a whole (the run then stops): the next run makes them. The writes the system
	// accepted before it failed are counted with the others.
	Undone int `json:"undone,omitempty"`
}

// Writes counts the writes to systems.
func (s *FlowStats) Writes() int {
	return s.CreatedTarget + s.CreatedSource + s.UpdatedTarget + s.UpdatedSource + s.Deleted
}

// Change is one planned or made change, for the dry run's report and for logs.
type Change struct {
	Flow     string `json:"flow"`
	Action   string `json:"action"` // create, update, delete, link, unlink, wait, fail
	Side     string `json:"side"`   // the side written to (or read from, for wait and fail)
	RecordID string `json:"record_id,omitempty"`
	FromID   string `json:"from_id,omitempty"`
	Property string `json:"property,omitempty"`
	Old      string `json:"old,omitempty"`
	New      string `json:"new,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// Report is the outcome of a run.
type Report struct {
	Flows   []*FlowStats `json:"flows"`
	Changes []Change     `json:"changes,omitempty"` // property by property, in a dry run
	Stopped bool         `json:"stopped,omitempty"` // interrupted (SIGINT/SIGTERM) after a batch
	// Warnings are about records the run synced but could not fully trust (an updated value
	// that is not a stamp, or in the future), each naming the flow and the record.
	Warnings []string `json:"warnings,omitempty"`
}

// Writes counts the writes of all flows.
func (r *Report) Writes() int {
	n := 0
	for _, f := range r.Flows {
		n += f.Writes()
	}
	return n
}

// Undone counts the writes of all flows left undone by a call that failed as a whole.
func (r *Report) Undone() int {
	n := 0
	for _, f := range r.Flows {
		n += f.Undone
	}
	return n
}

// Failed counts the records that failed.
func (r *Report) Failed() int {
	n := 0
	for _, f := range r.Flows {
		n += f.Failed
	}
	return n
}

// ErrBreaker is returned (wrapped) when deletes were refused by the circuit breaker.
var ErrBreaker = errors.New("circuit breaker")

// Run runs the selected flows once. Records that fail are counted and kept as dead letters;
// the error is for what stops the run (a system unreachable, the state unwritable).
func (r *Runner) Run(ctx context.Context) (*Report, error) {

	if r.Opts.MaxDeleteShare <= 0 {
		r.Opts.MaxDeleteShare = 0.1
	}
	if r.Opts.Now == nil {
		r.Opts.Now = time.Now
	}
	if r.Opts.DeleteCheckEvery <= 0 {
		r.Opts.DeleteCheckEvery = 20
	}
	flows, err := Order(r.Project, r.Opts.Flows)
	if err != nil {
		return nil, err
	}
	if err := r.checkNewState(ctx, flows); err != nil {
		return nil, err
	}
	if err := r.checkSystems(ctx, flows); err != nil {
		return nil, err
	}
	rep := &Report{}
	var runID int64
	if !r.Opts.DryRun {
		if runID, err = r.startRun(ctx); err != nil {
			return nil, err
		}
	}
	refs := newRefs(r)
	var runErr error
	for _, f := range flows {
		if ctx.Err() != nil {
			rep.Stopped = true
			break
		}
		fr, err := newFlowRun(r, f, refs, rep, runID)
		if err != nil {
			runErr = err
			break
		}
		refs.runs[f] = fr
		rep.Flows = append(rep.Flows, fr.stats)
		if err := fr.run(ctx); err != nil {
			if errors.Is(err, context.Canceled) {
				rep.Stopped = true
				break
			}
			// Every flow the breaker stopped is reported, one line each.
			runErr = errors.Join(runErr, fmt.Errorf("flow %s: %w", f.ID(), err))
			if !errors.Is(err, ErrBreaker) {
				break
			}
		}
	}
	if !r.Opts.DryRun {
		status := "ok"
		switch {
		case runErr != nil:
			status = "error"
		case rep.Failed() > 0:
			status = "failed"
		case rep.Stopped:
			status = "stopped"
		}
		if err := r.finishRun(context.WithoutCancel(ctx), runID, status, rep); err != nil && runErr == nil {
			runErr = err
		}
	}
	return rep, runErr
}

func (r *Runner) startRun(ctx context.Context) (int64, error) {
	tx, err := r.State.Begin(ctx)
	if err != nil {
		return 0, err
	}
	id, err := tx.StartRun()
	if err != nil {
		tx.Rollback()
		return 0, err
	}
	return id, tx.Commit()
}

func (r *Runner) finishRun(ctx context.Context, id int64, status string, rep *Report) error {
	summary, _ := json.Marshal(rep.Flows)
	tx, err := r.State.Begin(ctx)
	if err != nil {
		return err
	}
	if err := tx.FinishRun(id, status, summary); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
