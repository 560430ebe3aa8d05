package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dataflow-sync/dataflow/engine"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/schema"
	"github.com/dataflow-sync/dataflow/engine/state"
	"github.com/dataflow-sync/dataflow/engine/state/pgstate"
	dsync "github.com/dataflow-sync/dataflow/engine/sync"
	"github.com/riverqueue/river"
)

// Results of a run, as in the link state's run log and the runs_total metric.
const (
	ResultOK      = "ok"      // every record synced
	ResultFailed  = "failed"  // some records failed: they are dead letters
	ResultError   = "error"   // the run stopped: a system unreachable, the state unwritable
	ResultStopped = "stopped" // interrupted (SIGINT/SIGTERM) after a batch
)

// RunInfo is one run of a flow, as the status page and `dataflow status --json` show it.
type RunInfo struct {
	ID       string     `json:"id"`
	Worker   string     `json:"worker,omitempty"`
	Trigger  string     `json:"trigger,omitempty"`
	Started  time.Time  `json:"started"`
	Finished *time.Time `json:"finished,omitempty"`
	// Seconds is the run's duration, so far for a run in progress.
	Seconds float64          `json:"seconds"`
	Result  string           `json:"result,omitempty"` // "" while running
	Error   string           `json:"error,omitempty"`
	Counts  *dsync.FlowStats `json:"counts,omitempty"`
}

// runFlow is the job: one run of a flow (with the referenced flows it creates through),
// through the engine's runner, recorded in the metrics, the log and the run history.
func (s *Service) runFlow(ctx context.Context, args FlowArgs, jobID int64) error {
	p := s.plan.Load()
	fp := p.byID[args.Flow]
	s.mu.Lock()
	delete(s.queued, args.Flow)
	s.mu.Unlock()
	if fp == nil {
		s.log.Warn("a queued flow is no longer in the mappings; not run", "flow", args.Flow, "job", jobID)
		return river.JobCancel(&UnknownFlowError{Flow: args.Flow})
	}
	store, ctx, alive, release, err := s.runStore(ctx, fp)
	if errors.Is(err, pgstate.ErrLeaseHeld) {
		// A run of the flow (or of one it runs with) is in progress on a worker: this job
		// would be a second one. The next job of the flow runs when that one is done.
		s.log.Info("not run: the flow is running elsewhere", "flow", args.Flow, "job", jobID, "detail", err.Error())
		s.mu.Lock()
		s.finishing[args.Flow] = true
		s.mu.Unlock()
		return nil
	}
	if err != nil {
		s.log.Error("not run: its flows cannot be leased", "flow", args.Flow, "job", jobID, "error", err)
		return nil
	}
	defer release()
	info := &RunInfo{ID: newRunID(), Worker: s.cfg.Worker, Trigger: args.Trigger, Started: s.cfg.Now(), Counts: &dsync.FlowStats{Flow: args.Flow}}
	log := s.log.With("run", info.ID, "flow", args.Flow)
	s.mu.Lock()
	s.inflight[args.Flow] = info
	s.mu.Unlock()
	log.Info("run started", "trigger", args.Trigger, "job", jobID, "flows", fp.with)

	rep, err := s.runOnce(ctx, p, fp, log, info, store, alive)
	if cause, fenced := fenceOf(context.Cause(ctx), err); fenced {
		// Stalled past its lease, or taken over: what it did not commit or write before is
		// left to the worker that runs the flow next.
		log.Warn("run fenced: its lease was lost; it stopped writing", "cause", cause.Error())
		if err != nil && !errors.Is(err, pgstate.ErrLeaseLost) {
			err = fmt.Errorf("%w (%v)", err, cause)
		}
	}

	finished := s.cfg.Now()
	result := resultOf(rep, err)
	s.mu.Lock()
	info.Finished = &finished
	info.Seconds = finished.Sub(info.Started).Seconds()
	info.Result = result
	if err != nil {
		info.Error = err.Error()
	}
	if rep != nil {
		for _, fs := range rep.Flows {
			if fs.Flow == args.Flow {
				c := *fs
				info.Counts = &c
			}
		}
	}
	delete(s.inflight, args.Flow)
	s.runs[args.Flow] = append([]*RunInfo{info}, s.runs[args.Flow]...)
	if len(s.runs[args.Flow]) > history {
		s.runs[args.Flow] = s.runs[args.Flow][:history]
	}
	if result == ResultStopped {
		delete(s.again, args.Flow) // the service is stopping
	}
	s.finishing[args.Flow] = true
	s.mu.Unlock()
	s.reg.recordRun(p, args.Flow, rep, result, info)

	attrs := []any{"result", result, "seconds", info.Seconds}
	if rep != nil {
		for _, fs := range rep.Flows {
			attrs = append(attrs, slog.Group(fs.Flow, "read", fs.ReadSource+fs.ReadTarget, "writes", fs.Writes(),
				"waiting", fs.Waiting, "failed", fs.Failed))
		}
	}
	if err != nil {
		log.Error("run finished", append(attrs, "error", err)...)
	} else {
		log.Info("run finished", attrs...)
	}
	return nil // the run's failures are recorded; River does not retry (see FlowArgs.InsertOpts)
}

// fenceOf says whether a run was fenced, and why: the lease's watchdog cancelled its context
// (cause), or the database's fence refused a commit before the watchdog noticed the loss (a
// worker woken from a stall commits at once), which only the run's error tells.
func fenceOf(cause, runErr error) (error, bool) {
	switch {
	case errors.Is(cause, pgstate.ErrLeaseLost):
		return cause, true
	case errors.Is(runErr, pgstate.ErrLeaseLost):
		return runErr, true
	}
	return nil, false
}

func (s *Service) runOnce(ctx context.Context, p *plan, fp *flowPlan, log *slog.Logger, info *RunInfo, store state.Store, ok alive) (*dsync.Report, error) {
	conns, err := openConnections(ctx, p.project, p.flowsToOpen(fp))
	if err != nil {
		return nil, err
	}
	if ok != nil {
		conns = fenceConns(conns, ok)
	}
	defer func() {
		for id, c := range conns {
			if err := c.Close(); err != nil {
				log.Warn("closing a connection", "system", id, "error", err)
			}
		}
	}()
	runner := &dsync.Runner{Project: p.project, Conns: conns, State: store, Opts: dsync.Options{
		Flows: fp.with,
		Now:   s.cfg.Now,
		Progress: func(flow string, st *dsync.FlowStats) {
			if flow != fp.flow.ID() {
				return
			}
			c := *st
			s.mu.Lock()
			info.Counts = &c
			s.mu.Unlock()
		},
	}}
	return runner.Run(ctx)
}

func resultOf(rep *dsync.Report, err error) string {
	switch {
	case rep != nil && rep.Stopped && (err == nil || errors.Is(err, context.Canceled)):
		return ResultStopped
	case err != nil:
		return ResultError
	case rep.Failed() > 0:
		return ResultFailed
	}
	return ResultOK
}

// openConnections opens a connection to every system the flows use, as `dataflow run` does.
func openConnections(ctx context.Context, p *mapping.Project, flows []*mapping.Flow) (map[string]connector.Conn, error) {
	registry := engine.Connectors()
	conns := map[string]connector.Conn{}
	for _, f := range flows {
		for _, sys := range []*mapping.System{f.Dataflow.Source, f.Dataflow.Target} {
			id := sys.Config.ID.Value
			if conns[id] != nil {
				continue
			}
			driver, _ := registry.Driver(sys.Config.Connector.Value)
			opener, ok := driver.(connector.Opener)
			if !ok {
				closeAll(conns)
				return nil, fmt.Errorf("the %s connector of %s cannot run", sys.Config.Connector.Value, sys.Name())
			}
			entities := map[string]*schema.Entity{}
			for name, ent := range sys.Entities {
				entities[name] = ent.Schema
			}
			c, err := opener.Open(ctx, sys.Config, entities, connector.OpenOptions{})
			if err != nil {
				closeAll(conns)
				return nil, fmt.Errorf("%s: %w", sys.Name(), err)
			}
			conns[id] = c
		}
	}
	return conns, nil
}

func closeAll(conns map[string]connector.Conn) {
	for _, c := range conns {
		c.Close()
	}
}
