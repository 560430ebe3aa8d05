package sync

import "github.com/dataflow-sync/dataflow/engine/state"

// Side is one end of a flow: its source or its target entity. The link state and the report
// name sides by the same words (state.Source, state.Target), as text.
type Side string

const (
	Source Side = state.Source
	Target Side = state.Target
)

// other returns the other side.
func other(side Side) Side {
	if side == Source {
		return Target
	}
	return Source
}

// Key is a record of a flow by side and id, for the sets of records a flow run keeps (those
// that failed, waited or were detached in this run).
type Key struct {
	Side Side
	ID   string
}
