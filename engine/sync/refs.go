package sync

import (
	"context"
	"errors"
	"fmt"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// refs translates ids through the links of referenced flows, which ran earlier in the run. It
// reads links and nothing else: a reference to a record that a "create: referenced" flow has
// not created yet is answered with a *referenceToCreate, for apply to create (withReferences).
type refs struct {
	r    *Runner
	ctx  context.Context
	runs map[*mapping.Flow]*flowRun
	// toTarget and toSource cache translations made in this run, for the flows that a
	// property refers to (referenced).
	toTarget   map[*mapping.Flow]map[string]string
	toSource   map[*mapping.Flow]map[string]string
	referenced map[*mapping.Flow]bool
}

func newRefs(r *Runner) *refs {
	rf := &refs{
		r: r, ctx: context.Background(), runs: map[*mapping.Flow]*flowRun{},
		toTarget: map[*mapping.Flow]map[string]string{}, toSource: map[*mapping.Flow]map[string]string{},
		referenced: map[*mapping.Flow]bool{},
	}
	var walk func(props []*mapping.Property)
	walk = func(props []*mapping.Property) {
		for _, p := range props {
			if p.Ref != nil {
				rf.referenced[p.Ref] = true
			}
			walk(p.Elements)
		}
	}
	if r.Project != nil {
		for _, df := range r.Project.Dataflows {
			for _, f := range df.Flows {
				walk(f.Properties)
			}
		}
	}
	return rf
}

// maxRefCache bounds the translations cached per flow: past it the cache starts again, so that
// a run's memory does not grow with the number of records it links (a miss costs one lookup
// in the link state).
const maxRefCache = 20000

func (rf *refs) remember(f *mapping.Flow, sourceID, targetID string) {
	if !rf.referenced[f] {
		return // nothing translates through this flow's links
	}
	if rf.toTarget[f] == nil || len(rf.toTarget[f]) >= maxRefCache {
		rf.toTarget[f], rf.toSource[f] = map[string]string{}, map[string]string{}
	}
	rf.toTarget[f][sourceID] = targetID
	rf.toSource[f][targetID] = sourceID
}

// linksOf looks a record's link up, through the flow's run when it has one (which knows the
// links it has staged), else in the link state.
func (rf *refs) linksOf(f *mapping.Flow, side Side, id string) (map[string]*state.Link, error) {
	if fr := rf.runs[f]; fr != nil {
		return fr.linksOf(rf.ctx, side, []string{id})
	}
	if side == Source {
		return rf.r.State.LinksBySource(rf.ctx, f.ID(), []string{id})
	}
	return rf.r.State.LinksByTarget(rf.ctx, f.ID(), []string{id})
}

// TargetID implements mapping.Refs.
func (rf *refs) TargetID(f *mapping.Flow, sourceID string) (string, bool, error) {
	if id, ok := rf.toTarget[f][sourceID]; ok {
		return id, true, nil
	}
	links, err := rf.linksOf(f, Source, sourceID)
	if err != nil {
		return "", false, err
	}
	if l, ok := links[sourceID]; ok {
		rf.remember(f, l.SourceID, l.TargetID)
		return l.TargetID, true, nil
	}
	if f.CreateTarget == config.CreateReferenced && f.Direction != config.SyncToSource && rf.runs[f] != nil {
		return "", false, &referenceToCreate{flow: f, id: sourceID, side: Source}
	}
	return "", false, nil
}

// SourceID implements mapping.Refs.
func (rf *refs) SourceID(f *mapping.Flow, targetID string) (string, bool, error) {
	if id, ok := rf.toSource[f][targetID]; ok {
		return id, true, nil
	}
	links, err := rf.linksOf(f, Target, targetID)
	if err != nil {
		return "", false, err
	}
	if l, ok := links[targetID]; ok {
		rf.remember(f, l.SourceID, l.TargetID)
		return l.SourceID, true, nil
	}
	if f.CreateSource == config.CreateReferenced && f.Direction != config.SyncToTarget && rf.runs[f] != nil {
		return "", false, &referenceToCreate{flow: f, id: targetID, side: Target}
	}
	return "", false, nil
}

// referenceToCreate is the answer of a lookup for a record that its flow creates on reference
// (create: referenced) and has not created yet: record id of side, whose partner the flow is
// to create. What refers to it cannot be planned until apply has created and linked it
// (withReferences); the planner reports it as it reports a reference not linked yet, and
// decides nothing else for that record.
type referenceToCreate struct {
	flow *mapping.Flow
	id   string
	side Side
	// failed is why the create that apply tried failed: the error of the record that refers to
	// it, in the words of the property that refers (the error chain the planner wrapped).
	failed error
}

func (e *referenceToCreate) Error() string {
	if e.failed != nil {
		return e.failed.Error()
	}
	return fmt.Sprintf("refers to %s, which flow %s creates on reference", e.id, e.flow.ID())
}

func (e *referenceToCreate) Unwrap() error { return e.failed }

// withReferences runs plan, the planning of one record, and while it answers that the record
// refers to records their flows create on reference (*referenceToCreate), creates them, one at
// a time and before the record's own write, and plans the record again. A referenced record
// that is not created (it is gone, or its flow's when does not take it) leaves the record
// waiting, as a reference not linked yet does; a create that fails fails the record with the
// create's error.
func (rf *refs) withReferences(ctx context.Context, plan func() error) error {
	var tried map[referenceKey]bool
	for {
		err := plan()
		var ref *referenceToCreate
		if !errors.As(err, &ref) || ref.failed != nil {
			return err
		}
		key := referenceKey{ref.flow, Key{ref.side, ref.id}}
		if tried[key] {
			// Created, yet not found again (a dry run's placeholder the cache let go):
			// the record waits for the next run rather than loop.
			return &mapping.WaitingError{Flow: ref.flow.ID(), ID: ref.id}
		}
		if tried == nil {
			tried = map[referenceKey]bool{}
		}
		tried[key] = true
		_, ok, cerr := rf.runs[ref.flow].createReferenced(ctx, ref.id, ref.side == Source)
		if mapping.IsWaiting(cerr) {
			return cerr // the new record refers to one not linked yet: both wait for it
		}
		if cerr != nil {
			ref.failed = cerr
			return err
		}
		if !ok {
			return &mapping.WaitingError{Flow: ref.flow.ID(), ID: ref.id}
		}
	}
}

type referenceKey struct {
	flow *mapping.Flow
	rec  Key
}
