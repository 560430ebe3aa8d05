package httpconn

// The connector.Conn of one system: Scan reads the list page by page (page.go), Get fetches by
// ids, and Create, Update and Delete (write.go) send one request (or, for update, a list of
// requests) per record, up to `concurrency` records at a time, keeping the order of the results.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

type conn struct {
	s        *settings
	cl       *client
	red      *redactor
	entities map[string]*entity
}

var (
	_ connector.Conn         = (*conn)(nil)
	_ connector.Capable      = (*conn)(nil)
	_ connector.KeyedCreator = (*conn)(nil)
)

// Capabilities implements connector.Capable: the connection deletes when an entity configures
// delete, and its writes return the records as stored (from the response, or read back).
func (c *conn) Capabilities() connector.Capabilities {
	del := false
	for _, e := range c.entities {
		del = del || e.delete != nil
	}
	return connector.Capabilities{Delete: del, ReturnsStored: true}
}

// Idempotent implements connector.KeyedCreator: creates honour keys when the entity names the
// header that carries them.
func (c *conn) Idempotent(entity string) bool {
	e := c.entities[entity]
	return e != nil && e.create != nil && e.create.idemHeader != ""
}

// Close implements connector.Conn.
func (c *conn) Close() error {
	c.cl.close()
	return nil
}

func (c *conn) entity(name string) (*entity, error) {
	e := c.entities[name]
	if e == nil || e.list == nil {
		return nil, fmt.Errorf("%s has no entity %s", c.s.system, name)
	}
	return e, nil
}

func (c *conn) what(e *entity) string { return c.s.system + " " + e.name }

// vars are the values of an expression's names: now and the system's vars, and what the
// operation adds.
func (c *conn) vars() map[string]any {
	return map[string]any{nameNow: c.cl.now().UTC().Format(time.RFC3339), nameVars: c.s.vars}
}

// build builds the call of request r with the given names' values.
func (c *conn) build(e *entity, r *request, vars map[string]any) (*call, error) {
	p, err := r.path.expand(vars)
	if err != nil {
		return nil, fmt.Errorf("%s: %s.path: %w", c.what(e), r.key, err)
	}
	u, err := url.Parse(c.s.base.String() + p)
	if err != nil {
		return nil, fmt.Errorf("%s: %s.path gives %q, which is not a URL path: %w", c.what(e), r.key, p, err)
	}
	if len(r.query) > 0 {
		q := u.Query()
		for _, qp := range r.query {
			v, err := qp.prog.run(vars)
			if err != nil {
				return nil, fmt.Errorf("%s: %s.query.%s: %w", c.what(e), r.key, qp.name, err)
			}
			if err := addParam(q, qp.name, v); err != nil {
				return nil, fmt.Errorf("%s: %s.query.%s: %w", c.what(e), r.key, qp.name, err)
			}
		}
		u.RawQuery = q.Encode()
	}
	cl := &call{what: c.what(e), method: r.method, url: u, repeatable: true}
	if r.body != nil {
		v, err := r.body.run(vars)
		if err != nil {
			return nil, fmt.Errorf("%s: %s.body: %w", c.what(e), r.key, err)
		}
		if v != nil {
			if v, err = jsonValue(v, 0); err == nil {
				cl.body, err = json.Marshal(v)
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %s.body: %w", c.what(e), r.key, err)
			}
		}
	}
	return cl, nil
}

// addParam adds a query parameter: null and "" leave it out, a list repeats it.
func addParam(q url.Values, name string, v any) error {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		if x != "" {
			q.Add(name, x)
		}
		return nil
	case []any:
		for _, e := range x {
			s, err := scalarText(e)
			if err != nil {
				return err
			}
			q.Add(name, s)
		}
		return nil
	}
	s, err := scalarText(v)
	if err != nil {
		return err
	}
	q.Add(name, s)
	return nil
}

// record turns a record of a response into a connector.Record.
func (e *entity) record(m map[string]any) (connector.Record, error) {
	v, _ := at(m, e.id)
	id := idText(v)
	if id == "" {
		return connector.Record{}, fmt.Errorf("a record has no id at %q (its keys: %s)", e.id, keyList(m))
	}
	return connector.Record{ID: id, Data: m}, nil
}

// each runs fn for 0..n-1, up to concurrency at a time. The first error stops the others and is
// returned.
func (c *conn) each(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		next  = make(chan int)
	)
	for range min(c.s.concurrency, n) {
		wg.Go(func() {
			for i := range next {
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// Get implements connector.Conn: by get, in batches of get.batch ids, or by reading the list
// when the entity has no get. Records that do not exist (404) are absent.
func (c *conn) Get(ctx context.Context, name string, ids []string) (map[string]connector.Record, error) {
	e, err := c.entity(name)
	if err != nil {
		return nil, err
	}
	out, err := c.get(ctx, e, ids)
	return out, c.red.err(err)
}

func (c *conn) get(ctx context.Context, e *entity, ids []string) (map[string]connector.Record, error) {
	out := make(map[string]connector.Record, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	if e.get == nil {
		return out, c.getByList(ctx, e, ids, out)
	}
	var chunks [][]string
	for start := 0; start < len(ids); start += e.get.batch {
		chunks = append(chunks, ids[start:min(start+e.get.batch, len(ids))])
	}
	return c.getChunks(ctx, e, chunks)
}

// getChunks fetches chunks of ids in parallel, a request each, and gathers the records.
func (c *conn) getChunks(ctx context.Context, e *entity, chunks [][]string) (map[string]connector.Record, error) {
	out := make(map[string]connector.Record)
	var mu sync.Mutex
	err := c.each(ctx, len(chunks), func(ctx context.Context, i int) error {
		recs, err := c.getChunk(ctx, e, chunks[i])
		mu.Lock()
		defer mu.Unlock()
		for id, r := range recs {
			out[id] = r
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// getChunk fetches the records of up to get.batch ids with one request.
func (c *conn) getChunk(ctx context.Context, e *entity, ids []string) (map[string]connector.Record, error) {
	vars := c.vars()
	list := make([]any, len(ids))
	for i, id := range ids {
		list[i] = id
	}
	vars[nameIDs] = list
	if e.get.batch == 1 {
		vars[nameID] = ids[0]
	}
	cl, err := c.build(e, e.get.req, vars)
	if err != nil {
		return nil, err
	}
	resp, err := c.cl.do(ctx, cl)
	switch s := statusOf(err); {
	case (s == http.StatusNotFound || s == http.StatusGone) && len(ids) > 1:
		// An API may answer 404 for a batch when any one of its ids is missing: that says
		// nothing of the others, so each is asked for alone.
		return c.getEach(ctx, e, ids)
	case s == http.StatusNotFound || s == http.StatusGone:
		return nil, nil
	case err != nil:
		return nil, err
	}
	body, err := c.cl.decode(cl, resp)
	if err != nil {
		return nil, err
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	out := map[string]connector.Record{}
	if !e.get.hasRecords {
		if body == nil {
			return out, nil // some APIs answer null for a missing record
		}
		m, ok := body.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: the response is %s, not a record (an object); set get.records if the record sits inside it", cl.op(), resultKind(body))
		}
		rec, err := e.record(m)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cl.op(), err)
		}
		if !want[rec.ID] {
			return nil, fmt.Errorf("%s: asked for id %s, the response is the record of id %s; check id and get.path", cl.op(), ids[0], rec.ID)
		}
		out[rec.ID] = rec
		return out, nil
	}
	recs, err := records(body, e.get.records)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cl.op(), err)
	}
	for _, m := range recs {
		rec, err := e.record(m)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cl.op(), err)
		}
		if want[rec.ID] {
			out[rec.ID] = rec
		}
	}
	return out, nil
}

// getEach fetches records one id per request, in parallel: for a batch the server answered
// with 404, where a 404 for one id says that that record is missing.
func (c *conn) getEach(ctx context.Context, e *entity, ids []string) (map[string]connector.Record, error) {
	chunks := make([][]string, len(ids))
	for i := range ids {
		chunks[i] = ids[i : i+1]
	}
	return c.getChunks(ctx, e, chunks)
}

// errFound stops a list read once every wanted record was seen.
var errFound = errors.New("found")

// getByList finds records by reading the whole list: for entities without get.
func (c *conn) getByList(ctx context.Context, e *entity, ids []string, out map[string]connector.Record) error {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	err := c.scan(ctx, e, "", func(recs []connector.Record) error {
		for _, r := range recs {
			if want[r.ID] {
				out[r.ID] = r
				delete(want, r.ID)
			}
		}
		if len(want) == 0 {
			return errFound
		}
		return nil
	})
	if errors.Is(err, errFound) {
		return nil
	}
	return err
}
