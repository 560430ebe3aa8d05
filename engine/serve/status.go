package serve

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
	dsync "github.com/dataflow-sync/dataflow/engine/sync"
)

// Status is what the status page shows, and `dataflow status --json` prints: every flow with
// its recent runs, what waits and what failed. Times are RFC 3339.
type Status struct {
	Generated time.Time `json:"generated"`
	// Worker is the service that made it; "" when made from the link state alone.
	Worker string `json:"worker,omitempty"`
	// Refused is the error of the last reload that was refused ("" when none was): the service
	// keeps running the mappings it had.
	Refused string       `json:"refused,omitempty"`
	Flows   []FlowStatus `json:"flows"`
}

// FlowStatus is one flow's part of Status.
type FlowStatus struct {
	Flow     string `json:"flow"`
	Dataflow string `json:"dataflow"`
	Every    string `json:"every,omitempty"`
	Links    int    `json:"links"`
	// NextRun is when the schedule runs the flow next (while a service runs it).
	NextRun *time.Time `json:"next_run,omitempty"`
	Queued  bool       `json:"queued,omitempty"`
	// Running is the run in progress, with its counts so far.
	Running     *RunInfo      `json:"running,omitempty"`
	Runs        []*RunInfo    `json:"runs"` // newest first
	Waiting     []WaitingInfo `json:"waiting"`
	DeadLetters []DeadInfo    `json:"dead_letters"`
}

// WaitingInfo is a record that waits, with the reason.
type WaitingInfo struct {
	Side     string    `json:"side"`
	RecordID string    `json:"record_id"`
	Reason   string    `json:"reason"`
	Since    time.Time `json:"since"`
}

// DeadInfo is a record that failed, with the reason.
type DeadInfo struct {
	Side     string    `json:"side"`
	RecordID string    `json:"record_id"`
	Reason   string    `json:"reason"`
	Attempts int       `json:"attempts"`
	First    time.Time `json:"first"`
	Last     time.Time `json:"last"`
}

// ReadStatus makes the Status of p's flows from the link state alone: the runs of its run log
// (up to runs of them, newest first, each listed under the flows it ran), links, waiting
// records and dead letters. A running service adds what only it knows (Service.Status).
// `dataflow status --json` prints this.
func ReadStatus(ctx context.Context, p *mapping.Project, st state.Store, now time.Time, runs int) (*Status, error) {
	out := &Status{Generated: now}
	waiting, err := st.Waiting(ctx, "")
	if err != nil {
		return nil, err
	}
	dead, err := st.DeadLetters(ctx, "")
	if err != nil {
		return nil, err
	}
	log, err := st.Runs(ctx, runs)
	if err != nil {
		return nil, err
	}
	index := map[string]int{}
	for _, d := range p.Dataflows {
		for _, f := range d.Flows {
			n, err := st.CountLinks(ctx, f.ID())
			if err != nil {
				return nil, err
			}
			index[f.ID()] = len(out.Flows)
			out.Flows = append(out.Flows, FlowStatus{Flow: f.ID(), Dataflow: d.ID(), Links: n,
				Runs: []*RunInfo{}, Waiting: []WaitingInfo{}, DeadLetters: []DeadInfo{}})
		}
	}
	for _, w := range waiting {
		if i, ok := index[w.Flow]; ok {
			out.Flows[i].Waiting = append(out.Flows[i].Waiting, WaitingInfo{Side: w.Side, RecordID: w.RecordID, Reason: w.Reason, Since: w.Since})
		}
	}
	for _, d := range dead {
		if i, ok := index[d.Flow]; ok {
			out.Flows[i].DeadLetters = append(out.Flows[i].DeadLetters, DeadInfo{Side: d.Side, RecordID: d.RecordID,
				Reason: d.Reason, Attempts: d.Attempts, First: d.First, Last: d.Last})
		}
	}
	for _, r := range log {
		var flows []*dsync.FlowStats
		json.Unmarshal(r.Summary, &flows) // a run killed before it finished has no summary
		for _, fs := range flows {
			i, ok := index[fs.Flow]
			if !ok {
				continue
			}
			info := &RunInfo{ID: "#" + strconv.FormatInt(r.ID, 10), Worker: r.Worker, Started: r.Started, Result: r.Status, Counts: fs}
			if !r.Finished.IsZero() {
				finished := r.Finished
				info.Finished = &finished
				info.Seconds = finished.Sub(r.Started).Seconds()
			}
			out.Flows[i].Runs = append(out.Flows[i].Runs, info)
		}
	}
	return out, nil
}

// Status is ReadStatus with what the service knows besides: the worker and trigger of the
// runs it made, the run in progress, the next scheduled run, a queued run and a refused
// reload.
func (s *Service) Status(ctx context.Context) (*Status, error) {
	p := s.plan.Load()
	st, err := ReadStatus(ctx, p.project, s.store, s.cfg.Now(), 50)
	if err != nil {
		return nil, err
	}
	st.Worker = s.cfg.Worker
	queued, err := s.queuedFlows(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Refused = s.refused
	now := s.cfg.Now()
	for i := range st.Flows {
		f := &st.Flows[i]
		if fp := p.byID[f.Flow]; fp != nil {
			f.Every = fp.every.String()
		}
		if next, ok := s.next[f.Flow]; ok {
			next := next
			f.NextRun = &next
		}
		f.Queued = queued[f.Flow] || s.again[f.Flow] // again: queued as soon as the run ends
		if r := s.inflight[f.Flow]; r != nil {
			c := *r
			c.Seconds = now.Sub(r.Started).Seconds()
			f.Running = &c
		}
		if s.shared != nil {
			// Workers share the run log, which names each run's worker: it is the history.
			continue
		}
		// This service's own runs carry their worker and trigger; the run log's older runs
		// (before this service started) follow them.
		mine := s.runs[f.Flow]
		runs := append([]*RunInfo{}, mine...)
		for _, r := range f.Runs {
			if r.Started.Before(s.start) {
				runs = append(runs, r)
			}
		}
		if len(runs) > history {
			runs = runs[:history]
		}
		f.Runs = runs
	}
	return st, nil
}
