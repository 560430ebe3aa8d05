package sync

import (
	"errors"
	"fmt"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

// A write call (Create, Update) that fails as a whole, a 429 after 140 of 500 PATCHes, may
// still have written records. A connection says which by returning, with the error, one
// result per record: those without an error and with a record id were accepted; the others
// were left undone. The engine counts the accepted writes in the run's report, which must
// tell what was written even when the run ends in an error, and the undone ones apart.

// errUndone marks, in the results of a call that failed as a whole, a record it did not write.
var errUndone = errors.New("left undone")

// partialResults returns the results of a write call of n records that returned err: the
// results it gave when they are one per record (the records it did not write marked with
// errUndone), else n results all marked. ok is false when err is nil.
func partialResults(results []connector.Result, n int, err error) ([]connector.Result, bool) {
	if err == nil {
		return results, false
	}
	if len(results) != n {
		results = make([]connector.Result, n)
	}
	for i := range results {
		if results[i].Err == nil && results[i].Record.ID == "" {
			results[i].Err = errUndone
		}
	}
	return results, true
}

// undoneError is the error of a write call that failed as a whole, with what it did.
type undoneError struct {
	err          error
	entity       string
	made, undone int
}

func (e *undoneError) Error() string {
	return fmt.Sprintf("%v (%s: %d of %d writes of the call were made; %d left undone, for the next run)",
		e.err, e.entity, e.made, e.made+e.undone, e.undone)
}

func (e *undoneError) Unwrap() error { return e.err }
