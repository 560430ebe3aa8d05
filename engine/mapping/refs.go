package mapping

import (
	"slices"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/diag"
)

// resolveRefs resolves each property's `ref` to a flow of the same dataflow and records, on the
// referenced flow, that this flow refers to it.
func resolveRefs(fl *Flow, props []*Property, byID map[string]*Flow, ds *diag.Diagnostics) {
	for _, p := range props {
		resolveRefs(fl, p.Elements, byID, ds)
		ref := p.Config.Ref
		if !ref.Set || ref.Value == "" {
			continue
		}
		target, ok := byID[ref.Value]
		if !ok {
			ids := make([]string, 0, len(byID))
			for id := range byID {
				ids = append(ids, id)
			}
			ds.Errorf(ref.Range, "unknown flow %q%s", ref.Value, diag.DidYouMean(ref.Value, ids)).
				WithDetail("ref names a flow of this dataflow: %s.", strings.Join(slices.Sorted(slices.Values(ids)), ", "))
			continue
		}
		p.Ref = target
		if !containsFlow(target.RefBy, fl) {
			target.RefBy = append(target.RefBy, fl)
		}
	}
}

func containsFlow(list []*Flow, f *Flow) bool {
	for _, x := range list {
		if x == f {
			return true
		}
	}
	return false
}

// checkCycles reports flows that refer to each other in a cycle: no order runs them so that
// every reference is linked first. A flow referring to itself (a parent category) is allowed:
// its records wait for their parent within the flow.
func checkCycles(df *Dataflow, ds *diag.Diagnostics) {
	const (
		unvisited = iota
		active
		done
	)
	state := map[*Flow]int{}
	var stack []*Flow
	var visit func(f *Flow)
	visit = func(f *Flow) {
		state[f] = active
		stack = append(stack, f)
		for _, p := range refProps(f.Properties) {
			next := p.Ref
			if next == f {
				continue
			}
			switch state[next] {
			case unvisited:
				visit(next)
			case active:
				var names []string
				start := 0
				for i, s := range stack {
					if s == next {
						start = i
					}
				}
				for _, s := range stack[start:] {
					names = append(names, s.ID())
				}
				names = append(names, next.ID())
				ds.Errorf(p.Config.Ref.Range, "reference cycle: %s", strings.Join(names, " → ")).
					WithDetail("Flows run in the order of their references; break the cycle by removing one ref.")
			}
		}
		stack = stack[:len(stack)-1]
		state[f] = done
	}
	for _, f := range df.Flows {
		if state[f] == unvisited {
			visit(f)
		}
	}
}

// refProps lists the properties with a resolved ref, list elements included.
func refProps(props []*Property) []*Property {
	var out []*Property
	for _, p := range props {
		if p.Ref != nil {
			out = append(out, p)
		}
		out = append(out, refProps(p.Elements)...)
	}
	return out
}
