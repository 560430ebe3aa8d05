package sync

import (
	"fmt"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/mapping"
)

// Order returns the flows to run, referenced flows before the flows that refer to them, file
// order otherwise. only restricts the run to those flow ids (an unknown id is an error).
func Order(p *mapping.Project, only []string) ([]*mapping.Flow, error) {
	var all []*mapping.Flow
	byID := map[string]*mapping.Flow{}
	for _, d := range p.Dataflows {
		for _, f := range d.Flows {
			all = append(all, f)
			byID[f.ID()] = f
		}
	}
	selected := map[*mapping.Flow]bool{}
	for _, id := range only {
		f, ok := byID[id]
		if !ok {
			ids := make([]string, 0, len(byID))
			for k := range byID {
				ids = append(ids, k)
			}
			return nil, fmt.Errorf("unknown flow %q; the flows are %s", id, strings.Join(ids, ", "))
		}
		selected[f] = true
	}
	var out []*mapping.Flow
	done := map[*mapping.Flow]bool{}
	var visit func(f *mapping.Flow)
	visit = func(f *mapping.Flow) {
		if done[f] {
			return
		}
		done[f] = true
		for _, dep := range refsOf(f.Properties) {
			if dep != f {
				visit(dep)
			}
		}
		if len(only) == 0 || selected[f] {
			out = append(out, f)
		}
	}
	for _, f := range all {
		visit(f)
	}
	return out, nil
}

func refsOf(props []*mapping.Property) []*mapping.Flow {
	var out []*mapping.Flow
	for _, p := range props {
		if p.Ref != nil {
			out = append(out, p.Ref)
		}
		out = append(out, refsOf(p.Elements)...)
	}
	return out
}
