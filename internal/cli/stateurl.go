package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/state"
	"github.com/dataflow-sync/dataflow/engine/state/pgstate"
)

// openStore opens the link state at location: a file (SQLite), or a postgres:// URL
// (PostgreSQL, which several `dataflow serve` processes share). Opened for writing, either
// keeps other runs out; messages never show the URL's password.
func openStore(ctx context.Context, location string, mode state.Mode) (state.Store, error) {
	if pgstate.IsURL(location) {
		return pgstate.Open(ctx, location, pgstate.Options{Mode: mode})
	}
	return state.Open(ctx, location, mode)
}

// missingState says, for a command that must not create the state, that there is none at
// location; "" when there is one, or when it is a database whose opening will tell.
func missingState(cmd, location string) string {
	if pgstate.IsURL(location) {
		return ""
	}
	if _, err := os.Stat(location); err != nil {
		return fmt.Sprintf("dataflow %s: no link state at %s; it is created by the first run (dataflow run)\n", cmd, diag.Escape(location))
	}
	return ""
}
