package httpconn

// The connector.Conn of one system: Scan reads the list page by page (page.go), Get fetches by
// ids, and Create, Update and Delete (write.go) send one request (or, for update, a list of
// requests) per record, up to `concurrency` records at a time, keeping the order of the results.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

type conn struct {
	s        *settings
	cl       *client
	red      *redactor
	entities map[string]*entity
	checked  authCheck
}

var (
	_ connector.Conn         = (*conn)(nil)
	_ connector.KeyedCreator = (*conn)(nil)
)

// Capabilities implements connector.Conn: the connection deletes when an entity configures
// delete, and its writes return the records as stored (from the response, or read back). It
// finds records (find.go) and creates with idempotency keys where an entity names the header.
func (c *conn) Capabilities() connector.Capabilities {
	del := false
	for _, e := range c.entities {
		del = del || e.delete != nil
	}
	return connector.Capabilities{Delete: del, ReturnsStored: true, Finder: c, KeyedCreator: c, RequestCounter: c, OperationLister: c}
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

// checked returns the entity, once auth.check passed (check.go).
func (c *conn) checkedEntity(ctx context.Context, name string) (*entity, error) {
	e, err := c.entity(name)
	if err != nil {
		return nil, err
	}
	if err := c.checkAuth(ctx); err != nil {
		return nil, err
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
// when the entity has no get. A record is absent only when its absence is shown: a 404 (or
// null) for a request of its id alone, or a batch whose response holds only ids asked for and
// then no record for it when asked alone (see getChunk). Ids whose request the server refused
// for their values (a 400 for a malformed id) are a *connector.RecordError at their positions,
// with the records of the other ids.
func (c *conn) Get(ctx context.Context, name string, ids []string) (map[string]connector.Record, error) {
	e, err := c.checkedEntity(ctx, name)
	if err != nil {
		return nil, err
	}
	out, err := c.get(ctx, e, ids)
	return out, c.red.err(err)
}

// gotten gathers the records of a Get's requests and the ids whose requests were refused.
type gotten struct {
	mu      sync.Mutex
	recs    map[string]connector.Record
	refused map[string]error
}

func (c *conn) get(ctx context.Context, e *entity, ids []string) (map[string]connector.Record, error) {
	g := &gotten{recs: make(map[string]connector.Record, len(ids)), refused: map[string]error{}}
	if len(ids) == 0 {
		return g.recs, nil
	}
	if e.get == nil {
		return g.recs, c.getByList(ctx, e, ids, g.recs)
	}
	var chunks [][]string
	for start := 0; start < len(ids); start += e.get.batch {
		chunks = append(chunks, ids[start:min(start+e.get.batch, len(ids))])
	}
	if err := c.getChunks(ctx, e, chunks, g); err != nil {
		return nil, err
	}
	if len(g.refused) > 0 {
		return g.recs, refusedError(ids, g.refused)
	}
	return g.recs, nil
}

// refusedError is the RecordError of the ids refused, at their positions in ids.
func refusedError(ids []string, refused map[string]error) error {
	at := map[int]error{}
	for i, id := range ids {
		if err, ok := refused[id]; ok {
			at[i] = err
		}
	}
	return recordError(at)
}

// recordError is the RecordError of the records at the positions of refused, with their
// reasons: one when they share it, else each (a RecordError has one reason for all).
func recordError(refused map[int]error) *connector.RecordError {
	re := &connector.RecordError{Index: slices.Sorted(maps.Keys(refused))}
	var errs []error
	seen := map[string]bool{}
	for _, i := range re.Index {
		if msg := refused[i].Error(); !seen[msg] {
			seen[msg] = true
			errs = append(errs, refused[i])
		}
	}
	re.Err = errs[0]
	if len(errs) > 1 {
		re.Err = errors.Join(errs...)
	}
	return re
}

// getChunks fetches chunks of ids in parallel, a request each, into g. A chunk the server
// refused for its values is asked for again id by id (when it is small) to find the id it
// refuses; otherwise every id of the chunk is refused.
func (c *conn) getChunks(ctx context.Context, e *entity, chunks [][]string, g *gotten) error {
	return c.each(ctx, len(chunks), func(ctx context.Context, i int) error {
		chunk := chunks[i]
		err := c.getChunk(ctx, e, chunk, g)
		if !refusedValues(err) {
			return err
		}
		if len(chunk) > 1 && len(chunk) <= maxAlone {
			return c.getEach(ctx, e, chunk, g)
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, id := range chunk {
			g.refused[id] = err
		}
		return nil
	})
}

// getChunk fetches the records of up to get.batch ids with one request into g.
func (c *conn) getChunk(ctx context.Context, e *entity, ids []string, g *gotten) error {
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
		return err
	}
	resp, err := c.cl.do(ctx, cl)
	switch s := statusOf(err); {
	case (s == http.StatusNotFound || s == http.StatusGone) && len(ids) > 1:
		// An API may answer 404 for a batch when any one of its ids is missing: that says
		// nothing of the others, so each is asked for alone.
		return c.getEach(ctx, e, ids, g)
	case s == http.StatusNotFound || s == http.StatusGone:
		return nil
	case err != nil:
		return err
	}
	body, err := c.cl.decode(cl, resp)
	if err != nil {
		return err
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	out := map[string]connector.Record{}
	if !e.get.hasRecords {
		if body == nil {
			return nil // some APIs answer null for a missing record
		}
		m, ok := body.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: the response is %s, not a record (an object); set get.records if the record sits inside it", cl.op(), resultKind(body))
		}
		rec, err := e.record(m)
		if err != nil {
			return fmt.Errorf("%s: %w", cl.op(), err)
		}
		if !want[rec.ID] {
			return fmt.Errorf("%s: asked for id %s, the response is the record of id %s; check id and get.path", cl.op(), ids[0], rec.ID)
		}
		out[rec.ID] = rec
	} else {
		recs, err := records(body, e.get.records)
		if err != nil {
			return fmt.Errorf("%s: %w", cl.op(), err)
		}
		for _, m := range recs {
			rec, err := e.record(m)
			if err != nil {
				return fmt.Errorf("%s: %w", cl.op(), err)
			}
			if !want[rec.ID] {
				// A response with a record not asked for shows that the server did not filter
				// by the ids (a query parameter it ignores): the ids it lacks may exist, and
				// taking them for deleted would unlink or delete their partners.
				return fmt.Errorf("%s: asked for %d ids, the response holds the record of id %s, which was not asked for: the server does not seem to filter by the ids; check get.path and get.query", cl.op(), len(ids), rec.ID)
			}
			out[rec.ID] = rec
		}
	}
	g.mu.Lock()
	for id, r := range out {
		g.recs[id] = r
	}
	g.mu.Unlock()
	if len(out) < len(want) && len(ids) > 1 {
		// A batch that lacks some ids is not proof that they are gone (an API that caps or
		// pages a batch, or answers an empty list for a request it did not understand): each
		// is asked for alone.
		var missing []string
		for _, id := range ids {
			if _, ok := out[id]; !ok && !slices.Contains(missing, id) {
				missing = append(missing, id)
			}
		}
		return c.getEach(ctx, e, missing, g)
	}
	return nil
}

// getEach fetches records one id per request, in parallel: for a batch the server answered
// with 404 or without some of its ids, where the answer for one id alone says whether that
// record exists.
func (c *conn) getEach(ctx context.Context, e *entity, ids []string, g *gotten) error {
	chunks := make([][]string, len(ids))
	for i := range ids {
		chunks[i] = ids[i : i+1]
	}
	return c.getChunks(ctx, e, chunks, g)
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

// Requests implements connector.RequestCounter: the requests it sent to its system (each try of
// each request, logins included), for the per-system counts of the run's summary.
func (c *conn) Requests() int64 { return c.cl.sent.Load() }

// Operations implements connector.OperationLister: the requests each operation of the entity
// sends, as "create: POST
// /v2/products", with the paths as written in the system file ({id} and other expressions
// unexpanded), so that a dry run can show which requests a run would send. They hold no
// secret: secrets never reach paths, and credentials sent in the query are not shown.
func (c *conn) Operations(entity string) []string {
	e := c.entities[entity]
	if e == nil {
		return nil
	}
	var out []string
	add := func(op string, r *request) {
		if r != nil {
			out = append(out, op+": "+r.method+" "+r.pathSrc)
		}
	}
	if e.list != nil {
		add("list", e.list.req)
	}
	if e.get != nil {
		add("get", e.get.req)
	}
	if e.find != nil {
		add("find", e.find.list.req)
	}
	if e.count != nil {
		add("count", e.count.req)
	}
	add("create", e.create)
	for _, r := range e.update {
		add("update", r)
	}
	add("delete", e.delete)
	return out
}
