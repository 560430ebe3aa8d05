package postgres

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// Which failures run a transaction again, and which fail a record or the batch.
func TestErrorClasses(t *testing.T) {
	d := &dialect{}
	pg := func(code string) error { return fmt.Errorf("batch: %w", &pgconn.PgError{Code: code}) }
	for _, c := range []struct {
		err           error
		retry, record bool
	}{
		{pg("40001"), true, false},  // serialization failure
		{pg("40P01"), true, false},  // deadlock
		{pg("57P01"), true, false},  // the server is shutting down
		{pg("08006"), true, false},  // connection failure
		{pg("22001"), false, true},  // value too long
		{pg("23505"), false, true},  // unique violation
		{pg("P0001"), false, true},  // raised by a trigger
		{pg("42501"), false, false}, // permission denied: the batch fails
		{pg("42P01"), false, false}, // no such table
		{errors.New("unexpected EOF"), false, false},
	} {
		if got := d.Retry(c.err); got != c.retry {
			t.Errorf("%v: retry %v, want %v", c.err, got, c.retry)
		}
		if got := d.RecordError(c.err); got != c.record {
			t.Errorf("%v: record error %v, want %v", c.err, got, c.record)
		}
	}
}
