package connector

import (
	"errors"
	"fmt"
)

// RecordError is the error of a call that failed because of the values of some of the records
// it was given, not because the system is unreachable: a find whose filter the server refused
// (400) for one email with a quote in it, a page of ids of which one is malformed. The engine
// puts those records in the dead letters with Err as the reason and goes on with the others;
// any other error of a call fails the whole batch.
//
// Index holds the positions, in the call's arguments (Find's keys, Get's ids), of the records
// the error is about; nil means every record of the call (the call was made for one batch and
// the system does not say which record it refused).
type RecordError struct {
	Index []int
	Err   error
}

func (e *RecordError) Error() string {
	if e.Index == nil {
		return e.Err.Error()
	}
	return fmt.Sprintf("records %v: %v", e.Index, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// AsRecordError returns the RecordError in err's chain, if any.
func AsRecordError(err error) (*RecordError, bool) {
	var re *RecordError
	if errors.As(err, &re) {
		return re, true
	}
	return nil, false
}
