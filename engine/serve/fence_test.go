package serve

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/state/pgstate"
)

// TestFenceOf: a run is fenced when its lease's watchdog cancelled it, and also when the
// database refused its commit first, which only the run's error shows.
func TestFenceOf(t *testing.T) {
	lost := fmt.Errorf("renew the lease of f: %w", pgstate.ErrLeaseLost)
	refused := fmt.Errorf("commit the link state of f: nothing was committed: %w", pgstate.ErrLeaseLost)
	other := errors.New("the target answered 500")
	for _, tc := range []struct {
		name          string
		cause, err    error
		fenced        bool
		reportedCause error
	}{
		{"watchdog", lost, other, true, lost},
		{"watchdog, the run's error says so too", lost, refused, true, lost},
		{"database fence before the watchdog", context.Canceled, refused, true, refused},
		{"database fence, no cancel", nil, refused, true, refused},
		{"another failure", nil, other, false, nil},
		{"stopped by a signal", context.Canceled, context.Canceled, false, nil},
		{"ok", nil, nil, false, nil},
	} {
		cause, fenced := fenceOf(tc.cause, tc.err)
		if fenced != tc.fenced || cause != tc.reportedCause {
			t.Errorf("%s: fenceOf = %v, %v; want %v, %v", tc.name, cause, fenced, tc.reportedCause, tc.fenced)
		}
	}
}
