package serve

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/dataflow-sync/dataflow/engine"
	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	dsync "github.com/dataflow-sync/dataflow/engine/sync"
)

// minEvery is the shortest interval a flow may run at: a run reads both systems, and a
// schedule tighter than this is a typing mistake (every: 1ms) rather than a wish.
const minEvery = time.Second

// maxPriority is River's lowest priority (1 is its highest).
const maxPriority = 4

// plan is what the service runs, made from one valid set of mappings: each flow with its
// interval, in dependency order. A reload builds a new plan and swaps it in whole.
type plan struct {
	project *mapping.Project
	flows   []*flowPlan // referenced flows before the flows that refer to them
	byID    map[string]*flowPlan
	loaded  time.Time
}

// flowPlan is one flow's schedule and what its job runs.
type flowPlan struct {
	flow  *mapping.Flow
	every time.Duration
	// priority is River's: when several flows are due at once, the flows that others refer to
	// go first (a flow that refers to none gets 1, one that refers to those 2, …, capped at
	// 4), so that the references find their links.
	priority int
	// with is the flows one run of this flow runs, in order: the flow itself, preceded by the
	// flows it refers to that create records only when referenced (create: referenced), since
	// those creations happen inside the referring flow's run.
	with []string
}

// InvalidMappingsError is returned when the mappings do not validate: nothing is run with them.
type InvalidMappingsError struct {
	Diagnostics diag.Diagnostics
	Sources     diag.Sources
}

func (e *InvalidMappingsError) Error() string {
	n, _ := e.Diagnostics.Count()
	return fmt.Sprintf("the mappings are invalid (%s)", diag.Plural(n, "error"))
}

// Text renders the diagnostics as `dataflow validate` prints them.
func (e *InvalidMappingsError) Text() string {
	var b bytes.Buffer
	diag.WriteText(&b, e.Diagnostics, e.Sources)
	return b.String()
}

// loadPlan reads, validates and compiles the mappings under paths and schedules their flows.
func loadPlan(ctx context.Context, eng *engine.Engine, paths []string, every time.Duration, now time.Time) (*plan, error) {
	res, err := eng.Load(ctx, paths)
	if err != nil {
		return nil, err
	}
	ds := res.Diagnostics
	if !ds.HasErrors() {
		ds = append(ds, checkIntervals(res.Project)...)
	}
	if ds.HasErrors() {
		return nil, &InvalidMappingsError{Diagnostics: ds, Sources: res.Sources}
	}
	ordered, err := dsync.Order(res.Project, nil)
	if err != nil {
		return nil, err
	}
	if len(ordered) == 0 {
		return nil, fmt.Errorf("no flows in %v: a service needs at least one dataflow file", paths)
	}
	p := &plan{project: res.Project, byID: map[string]*flowPlan{}, loaded: now}
	for _, f := range ordered {
		fp := &flowPlan{flow: f, every: intervalOf(f, every), priority: min(height(f, map[*mapping.Flow]bool{})+1, maxPriority)}
		for _, dep := range referencedCreators(f) {
			fp.with = append(fp.with, dep.ID())
		}
		fp.with = append(fp.with, f.ID())
		p.flows = append(p.flows, fp)
		p.byID[f.ID()] = fp
	}
	return p, nil
}

// checkIntervals checks the every: keys, which the format schema checks for form only.
func checkIntervals(p *mapping.Project) diag.Diagnostics {
	var ds diag.Diagnostics
	check := func(s config.Str) {
		if !s.Set {
			return
		}
		d, err := time.ParseDuration(s.Value)
		switch {
		case err != nil:
			ds.Errorf(s.Range, "every %q is not a duration", s.Value).WithDetail("Write a number and a unit, e.g. 30s, 5m or 1h30m.")
		case d < minEvery:
			ds.Errorf(s.Range, "every %q is shorter than a second", s.Value).WithDetail("Run a flow at most once a second, e.g. every: 1s; a webhook (POST /hooks/{flow}) runs it as soon as something changes.")
		}
	}
	for _, d := range p.Dataflows {
		check(d.Config.Every)
		for _, f := range d.Flows {
			check(f.Config.Every)
		}
	}
	return ds
}

// intervalOf is the flow's every:, else its dataflow's, else the default.
func intervalOf(f *mapping.Flow, def time.Duration) time.Duration {
	for _, s := range []config.Str{f.Config.Every, f.Dataflow.Config.Every} {
		if s.Set {
			if d, err := time.ParseDuration(s.Value); err == nil {
				return d
			}
		}
	}
	return def
}

// height is the length of the longest chain of flows that f refers to (0 when it refers to
// none): a flow runs after the flows it refers to.
func height(f *mapping.Flow, seen map[*mapping.Flow]bool) int {
	if seen[f] {
		return 0 // a flow that refers to itself (or a cycle) adds nothing
	}
	seen[f] = true
	defer delete(seen, f)
	h := 0
	var walk func(props []*mapping.Property)
	walk = func(props []*mapping.Property) {
		for _, p := range props {
			if p.Ref != nil && p.Ref != f {
				h = max(h, height(p.Ref, seen)+1)
			}
			walk(p.Elements)
		}
	}
	walk(f.Properties)
	return h
}

// referencedCreators lists the flows that f's properties refer to, directly or through them,
// whose records are created only when referenced: they run with f, before it.
func referencedCreators(f *mapping.Flow) []*mapping.Flow {
	var out []*mapping.Flow
	seen := map[*mapping.Flow]bool{f: true}
	var walk func(props []*mapping.Property)
	walk = func(props []*mapping.Property) {
		for _, p := range props {
			if r := p.Ref; r != nil && !seen[r] {
				seen[r] = true
				walk(r.Properties)
				if r.CreateTarget == config.CreateReferenced || r.CreateSource == config.CreateReferenced {
					out = append(out, r)
				}
			}
			walk(p.Elements)
		}
	}
	walk(f.Properties)
	return out
}

// flowsToOpen is every flow whose systems a run of fp reads or writes.
func (p *plan) flowsToOpen(fp *flowPlan) []*mapping.Flow {
	out := make([]*mapping.Flow, 0, len(fp.with))
	for _, id := range fp.with {
		out = append(out, p.byID[id].flow)
	}
	return out
}
