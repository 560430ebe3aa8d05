package state_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/state"
	"github.com/dataflow-sync/dataflow/engine/state/storetest"
)

// TestStoreContract runs the Store contract, which the PostgreSQL store passes too.
func TestStoreContract(t *testing.T) {
	storetest.Run(t, storetest.OpenerFunc(func(t *testing.T) (state.Store, func(state.Mode) (state.Store, error)) {
		path := filepath.Join(t.TempDir(), "state.db")
		st, err := state.Open(context.Background(), path, state.ReadWrite)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st, func(mode state.Mode) (state.Store, error) {
			return state.Open(context.Background(), path, mode)
		}
	}))
}
