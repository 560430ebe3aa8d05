package httpconn

// Find: records looked up by the values of some of their properties (connector.Finder), with
// the entity's find request, so that linking by merge criteria asks the API for a batch's keys
// instead of reading every record. An entity without find, or asked for paths it does not
// search by, answers connector.ErrCannotFind and the engine indexes the records itself.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

var _ connector.Finder = (*conn)(nil)

// Find implements connector.Finder. find.by must be among paths: the records are searched by
// the values of those paths only (the engine compares the others), find.batch keys a request,
// and the requests' records are returned once each, in the order of the keys' requests.
func (c *conn) Find(ctx context.Context, name string, paths []string, keys [][]string) ([]connector.Record, error) {
	e, err := c.checkedEntity(ctx, name)
	if err != nil {
		return nil, err
	}
	if e.find == nil {
		return nil, fmt.Errorf("%s: the entity has no find in the system file: %w", c.what(e), connector.ErrCannotFind)
	}
	f := e.find
	pos := make([]int, len(f.by))
	for i, b := range f.by {
		pos[i] = slices.Index(paths, b)
		if pos[i] < 0 {
			return nil, fmt.Errorf("%s: find searches by %s, not by %s: %w", c.what(e), strings.Join(f.by, ", "), strings.Join(paths, ", "), connector.ErrCannotFind)
		}
	}
	tuples, keysOf, err := c.keyTuples(e, keys, len(paths), pos)
	if err != nil {
		return nil, err
	}
	found, refused, err := c.searchBatches(ctx, e, tuples, batchesOf(len(tuples), f.batch))
	if err != nil {
		return nil, c.red.err(err)
	}
	out := uniqueRecords(found)
	if len(refused) > 0 {
		// The records of the keys the server refused go to the dead letters; the others are
		// found.
		at := map[int]error{}
		for ti, err := range refused {
			for _, ki := range keysOf[ti] {
				at[ki] = err
			}
		}
		return out, c.red.err(recordError(at))
	}
	return out, nil
}

// keyTuples is the keys' values at the positions pos (those of find.by), each combination
// once, with the indexes of the keys that have it.
func (c *conn) keyTuples(e *entity, keys [][]string, paths int, pos []int) ([][]any, [][]int, error) {
	var tuples [][]any
	var keysOf [][]int
	seen := map[string]int{}
	for ki, k := range keys {
		if len(k) != paths {
			return nil, nil, fmt.Errorf("%s: a key of %d values for %d paths", c.what(e), len(k), paths)
		}
		t := make([]any, len(pos))
		parts := make([]string, len(pos))
		for i, j := range pos {
			t[i], parts[i] = k[j], k[j]
		}
		id := strings.Join(parts, "\x00")
		if ti, ok := seen[id]; ok {
			keysOf[ti] = append(keysOf[ti], ki)
			continue
		}
		seen[id] = len(tuples)
		tuples = append(tuples, t)
		keysOf = append(keysOf, []int{ki})
	}
	return tuples, keysOf, nil
}

// batchesOf is the indexes of n tuples in requests of size each (the last one shorter).
func batchesOf(n, size int) [][]int {
	var chunks [][]int // the tuples of each request, by index
	for start := 0; start < n; start += size {
		var chunk []int
		for ti := start; ti < min(start+size, n); ti++ {
			chunk = append(chunk, ti)
		}
		chunks = append(chunks, chunk)
	}
	return chunks
}

// searchBatches runs the requests of chunks at once: the records each found, and the tuples
// whose request the server refused with why (tuple → error).
func (c *conn) searchBatches(ctx context.Context, e *entity, tuples [][]any, chunks [][]int) ([][]connector.Record, map[int]error, error) {
	found := make([][]connector.Record, len(chunks))
	refused := map[int]error{} // tuple → why the server refused the request that searched for it
	var mu sync.Mutex
	err := c.each(ctx, len(chunks), func(ctx context.Context, i int) error {
		recs, err := c.findTuples(ctx, e, tuples, chunks[i])
		if refusedValues(err) && len(chunks[i]) > 1 && len(chunks[i]) <= maxAlone {
			recs, err = c.findAlone(ctx, e, tuples, chunks[i], func(ti int, err error) {
				mu.Lock()
				refused[ti] = err
				mu.Unlock()
			})
			if err != nil {
				return err
			}
		} else if refusedValues(err) {
			mu.Lock()
			for _, ti := range chunks[i] {
				refused[ti] = err
			}
			mu.Unlock()
			recs, err = nil, nil
		}
		mu.Lock()
		found[i] = recs
		mu.Unlock()
		return err
	})
	return found, refused, err
}

// findAlone searches for each of the chunk's tuples alone, to find the ones the server
// refuses (each given to refuse) among those it answers.
func (c *conn) findAlone(ctx context.Context, e *entity, tuples [][]any, chunk []int, refuse func(ti int, err error)) ([]connector.Record, error) {
	var recs []connector.Record
	for _, ti := range chunk {
		r, err := c.findTuples(ctx, e, tuples, []int{ti})
		switch {
		case refusedValues(err):
			refuse(ti, err)
		case err != nil:
			return nil, err
		}
		recs = append(recs, r...)
	}
	return recs, nil
}

// uniqueRecords is the records found, in order, each id once.
func uniqueRecords(found [][]connector.Record) []connector.Record {
	var out []connector.Record
	ids := map[string]bool{}
	for _, recs := range found {
		for _, r := range recs {
			if !ids[r.ID] {
				ids[r.ID] = true
				out = append(out, r)
			}
		}
	}
	return out
}

// findTuples reads the records of the tuples at the given indexes with one find request.
func (c *conn) findTuples(ctx context.Context, e *entity, tuples [][]any, idx []int) ([]connector.Record, error) {
	f := e.find
	vars := c.vars()
	list := make([]any, len(idx))
	values := make([]any, len(idx))
	for j, ti := range idx {
		list[j], values[j] = tuples[ti], tuples[ti][0]
	}
	vars[nameTuples] = list
	if len(f.by) == 1 {
		vars[nameTerms] = values
		if f.batch == 1 {
			vars[nameTerm] = values[0]
		}
	}
	var recs []connector.Record
	err := c.pages(ctx, e, f.list, vars, "", func(page []connector.Record) error {
		recs = append(recs, page...)
		return nil
	})
	return recs, err
}
