// Package storetest is the contract of state.Store as a test suite, run against every
// implementation (the SQLite file and PostgreSQL), so that the engine cannot tell them apart:
// the same answers, orders, errors and messages.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/state"
)

// Opener opens the store under test. Open gives a fresh, empty state opened for writing;
// Reopen opens that same state again with mode (a second writer must be refused).
type Opener interface {
	Open(t *testing.T) (st state.Store, reopen func(mode state.Mode) (state.Store, error))
}

// OpenerFunc adapts a function to Opener.
type OpenerFunc func(t *testing.T) (state.Store, func(mode state.Mode) (state.Store, error))

// Open implements Opener.
func (f OpenerFunc) Open(t *testing.T) (state.Store, func(mode state.Mode) (state.Store, error)) {
	return f(t)
}

// clocked is a store whose clock a test sets (both stores have it).
type clocked interface{ SetClock(func() time.Time) }

// worked is a store that records its worker in the runs.
type worked interface{ SetWorker(string) }

// T0 is the suite's clock: whole microseconds, which every store keeps exactly.
var T0 = time.Date(2024, 3, 1, 12, 30, 45, 123456000, time.UTC)

// Run runs the suite.
func Run(t *testing.T, o Opener) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"Links", testLinks},
		{"ScanLinks", testScanLinks},
		{"TargetLinked", testTargetLinked},
		{"Rollback", testRollback},
		{"PutLinks", testPutLinks},
		{"PutLinksRefused", testPutLinksRefused},
		{"PutLinksMany", testPutLinksMany},
		{"PutLinksManyRefused", testPutLinksManyRefused},
		{"AddIntents", testAddIntents},
		{"IntentBatches", testIntentBatches},
		{"Intents", testIntents},
		{"Marks", testMarks},
		{"DeadLettersAndWaiting", testDeadLettersAndWaiting},
		{"Pending", testPending},
		{"Runs", testRuns},
		{"Flows", testFlows},
		{"Lock", testLock},
		{"Errors", testErrors},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, o) })
	}
}

func open(t *testing.T, o Opener) (state.Store, *time.Time, func(state.Mode) (state.Store, error)) {
	t.Helper()
	st, reopen := o.Open(t)
	now := T0
	c, ok := st.(clocked)
	if !ok {
		t.Fatalf("%T has no SetClock", st)
	}
	c.SetClock(func() time.Time { return now })
	return st, &now, reopen
}

var ctx = context.Background()

// Write runs fn in a Tx of st and commits it, failing the test on any error.
func Write(t *testing.T, st state.Store, fn func(tx state.Tx) error) {
	t.Helper()
	tx, err := st.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}
