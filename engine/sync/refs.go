package sync

import (
	"context"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// refs translates ids through the links of referenced flows, which ran earlier in the run.
// A reference to a record that a "create: referenced" flow has not created yet creates it.
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
	if f.CreateTarget == config.CreateReferenced && f.Direction != config.SyncToSource {
		if fr := rf.runs[f]; fr != nil {
			return fr.createReferenced(rf.ctx, sourceID, true)
		}
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
	if f.CreateSource == config.CreateReferenced && f.Direction != config.SyncToTarget {
		if fr := rf.runs[f]; fr != nil {
			return fr.createReferenced(rf.ctx, targetID, false)
		}
	}
	return "", false, nil
}
