package sync

import (
	"context"
	"fmt"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

// A connection's call may fail for the values of some of the records it was given
// (connector.RecordError): a find whose filter the server refuses for one email with a quote in
// it. Those records go to the dead letters with the error as the reason, and the call is made
// again without them, so that the run goes on with the others. Any other error stops the
// batch, as before.

// refusedError is why a record was left out of a call the connection refused for it.
type refusedError struct {
	call string // "reading" or "finding"
	what string // the entity, and the record or key
	err  error
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.call, e.what, e.err)
}

func (e *refusedError) Unwrap() error { return e.err }

// refusedIndexes returns the positions a RecordError names among n arguments (all of them for
// a nil Index), without those out of range or repeated.
func refusedIndexes(re *connector.RecordError, n int) []int {
	if re.Index == nil {
		all := make([]int, n)
		for i := range all {
			all[i] = i
		}
		return all
	}
	seen := make(map[int]bool, len(re.Index))
	var out []int
	for _, i := range re.Index {
		if i >= 0 && i < n && !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	return out
}

// getSome reads records by id like Conn.Get, leaving out the ids whose records the connection
// refused (returned in refused, by id, with the reason). An error that is not a RecordError,
// or one that names no id the call was given, is returned.
func getSome(ctx context.Context, conn connector.Conn, entity string, ids []string) (map[string]connector.Record, map[string]error, error) {
	var refused map[string]error
	for len(ids) > 0 {
		got, err := conn.Get(ctx, entity, ids)
		if err == nil {
			return got, refused, nil
		}
		re, ok := connector.AsRecordError(err)
		if !ok {
			return nil, nil, err
		}
		bad := refusedIndexes(re, len(ids))
		if len(bad) == 0 {
			return nil, nil, err
		}
		if refused == nil {
			refused = map[string]error{}
		}
		drop := make(map[int]bool, len(bad))
		for _, i := range bad {
			drop[i] = true
			refused[ids[i]] = &refusedError{"reading", entity + " " + ids[i], re.Err}
		}
		rest := make([]string, 0, len(ids)-len(bad))
		for i, id := range ids {
			if !drop[i] {
				rest = append(rest, id)
			}
		}
		ids = rest
	}
	return map[string]connector.Record{}, refused, nil
}

// findSome finds records like Finder.Find, leaving out the keys the connection refused
// (returned in refused, by their position in keys, with the reason).
func findSome(ctx context.Context, finder connector.Finder, entity string, paths []string, keys [][]string) ([]connector.Record, map[int]error, error) {
	var refused map[int]error
	pos := make([]int, len(keys)) // the positions in keys of the keys asked for
	for i := range pos {
		pos[i] = i
	}
	ask := keys
	for len(ask) > 0 {
		recs, err := finder.Find(ctx, entity, paths, ask)
		if err == nil {
			return recs, refused, nil
		}
		re, ok := connector.AsRecordError(err)
		if !ok {
			return nil, nil, err
		}
		bad := refusedIndexes(re, len(ask))
		if len(bad) == 0 {
			return nil, nil, err
		}
		if refused == nil {
			refused = map[int]error{}
		}
		drop := make(map[int]bool, len(bad))
		for _, i := range bad {
			drop[i] = true
			refused[pos[i]] = &refusedError{"finding", fmt.Sprintf("%s by %v = %q", entity, paths, ask[i]), re.Err}
		}
		var restKeys [][]string
		var restPos []int
		for i := range ask {
			if !drop[i] {
				restKeys, restPos = append(restKeys, ask[i]), append(restPos, pos[i])
			}
		}
		ask, pos = restKeys, restPos
	}
	return nil, refused, nil
}
