package httpconn

// The connector.Conn of one system: Scan reads the list page by page (page.go), Get fetches by
// ids, and Create, Update and Delete send one request (or, for update, a list of requests) per
// record, up to `concurrency` records at a time, keeping the order of the results.
//
// A write's outcome is per record when the server refused that record (a 4xx): the record goes
// to the dead letters and the batch goes on. Anything else that fails after the server may have
// acted (retries exhausted, a lost response, a response that cannot be read) fails the batch, so
// that the engine keeps its create intents and recovers what was created on the next run.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
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

// vars are the values of an expression's names.
func (c *conn) vars() map[string]any {
	return map[string]any{nameNow: c.cl.now().UTC().Format(time.RFC3339)}
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
			if cl.body, err = json.Marshal(v); err != nil {
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

// Create implements connector.Conn.
func (c *conn) Create(ctx context.Context, name string, data []map[string]any) ([]connector.Result, error) {
	return c.create(ctx, name, data, nil)
}

// CreateKeyed implements connector.KeyedCreator: each record's key goes in the entity's
// idempotency header, and a create whose response is lost is sent again with the same key.
func (c *conn) CreateKeyed(ctx context.Context, name string, data []map[string]any, keys []string) ([]connector.Result, error) {
	if len(keys) != len(data) {
		return nil, fmt.Errorf("%s: %d keys for %d records", c.s.system, len(keys), len(data))
	}
	return c.create(ctx, name, data, keys)
}

func (c *conn) create(ctx context.Context, name string, data []map[string]any, keys []string) ([]connector.Result, error) {
	e, err := c.entity(name)
	if err != nil {
		return nil, err
	}
	if e.create == nil {
		return nil, fmt.Errorf("%s: the entity has no create in the system file", c.what(e))
	}
	results := make([]connector.Result, len(data))
	pending := make([]string, len(data)) // ids of created records to read back
	err = c.each(ctx, len(data), func(ctx context.Context, i int) error {
		vars := c.vars()
		vars[nameRecord] = data[i]
		cl, err := c.build(e, e.create, vars)
		if err != nil {
			results[i].Err = c.red.err(err) // nothing was sent
			return nil
		}
		cl.repeatable = false
		if keys != nil && e.create.idemHeader != "" {
			cl.header = http.Header{http.CanonicalHeaderKey(e.create.idemHeader): {keys[i]}}
			cl.repeatable = true
		}
		resp, err := c.cl.do(ctx, cl)
		if err != nil {
			if perRecord(err) {
				results[i].Err = c.red.err(err)
				return nil
			}
			return err
		}
		// The record exists from here on: a failure fails the batch, so that the engine's
		// intent finds it on the next run instead of creating it again.
		rec, id, err := c.stored(e, e.create, resp)
		if err != nil {
			return fmt.Errorf("%s: %w", cl.op(), err)
		}
		if rec != nil {
			results[i].Record = *rec
		} else {
			pending[i] = id
		}
		return nil
	})
	if err != nil {
		return nil, c.red.err(err)
	}
	var ids []string
	for _, id := range pending {
		if id != "" {
			ids = append(ids, id)
		}
	}
	got, err := c.get(ctx, e, ids)
	if err != nil {
		return nil, c.red.err(fmt.Errorf("%s: reading back created records: %w", c.what(e), err))
	}
	for i, id := range pending {
		if id == "" {
			continue
		}
		if rec, ok := got[id]; ok {
			results[i].Record = rec
			continue
		}
		// Created but not readable yet (an eventually consistent API): what was sent, with the
		// new id. A later run reads the record as stored.
		d := make(map[string]any, len(data[i])+1)
		for k, v := range data[i] {
			d[k] = v
		}
		d[e.id] = id
		results[i].Record = connector.Record{ID: id, Data: d}
	}
	return results, nil
}

// stored returns the record a write's response gives (with r.result), or else the id of the
// record to read back: at r.idResult in the body, or the last segment of the Location header.
func (c *conn) stored(e *entity, r *request, resp *response) (*connector.Record, string, error) {
	var body any
	if len(resp.body) > 0 {
		var err error
		if body, err = decodeJSON(resp.body); err != nil {
			return nil, "", fmt.Errorf("%w (%s)", err, excerpt(resp.body, c.red))
		}
	}
	if r.hasResult && body != nil {
		v, ok := at(body, r.result)
		m, isMap := v.(map[string]any)
		if !ok || !isMap {
			where := "the response"
			if r.result != "" {
				where = fmt.Sprintf("%q in the response", r.result)
			}
			return nil, "", fmt.Errorf("%s.result: %s is %s, not the stored record", r.key, where, resultKind(v))
		}
		rec, err := e.record(m)
		if err != nil {
			return nil, "", fmt.Errorf("%s.result: %w", r.key, err)
		}
		return &rec, "", nil
	}
	if r.idResult != "" && body != nil {
		if v, ok := at(body, r.idResult); ok {
			if id := idText(v); id != "" {
				return nil, id, nil
			}
		}
	}
	if loc := resp.header.Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil {
			if id := path.Base(u.Path); id != "" && id != "/" && id != "." {
				if unescaped, err := url.PathUnescape(id); err == nil {
					return nil, unescaped, nil
				}
			}
		}
	}
	return nil, "", fmt.Errorf("the response gives no id at %q and no Location header; set %s.result or %s.id_result", r.idResult, r.key, r.key)
}

// Update implements connector.Conn: the update requests run in order for each record (those
// whose `when` holds); the record as stored is the last response's result, else read back.
func (c *conn) Update(ctx context.Context, name string, recs []connector.Record) ([]connector.Result, error) {
	e, err := c.entity(name)
	if err != nil {
		return nil, err
	}
	if len(e.update) == 0 {
		return nil, fmt.Errorf("%s: the entity has no update in the system file", c.what(e))
	}
	var current map[string]connector.Record
	if e.needsCurrent {
		ids := make([]string, len(recs))
		for i, r := range recs {
			ids[i] = r.ID
		}
		if current, err = c.get(ctx, e, ids); err != nil {
			return nil, c.red.err(fmt.Errorf("%s: reading the stored records for update: %w", c.what(e), err))
		}
	}
	results := make([]connector.Result, len(recs))
	pending := make([]bool, len(recs))
	err = c.each(ctx, len(recs), func(ctx context.Context, i int) error {
		rec := recs[i]
		vars := c.vars()
		vars[nameID], vars[nameRecord], vars[nameCurrent] = rec.ID, rec.Data, nil
		cur, found := current[rec.ID]
		if e.needsCurrent {
			if !found {
				results[i].Err = fmt.Errorf("%s: record %s no longer exists", c.what(e), rec.ID)
				return nil
			}
			vars[nameCurrent] = cur.Data
		}
		var last *request
		var lastResp *response
		for _, r := range e.update {
			if r.when != nil {
				ok, err := r.when.run(vars)
				if err != nil {
					results[i].Err = c.red.err(fmt.Errorf("%s: %s.when: %w", c.what(e), r.key, err))
					return nil
				}
				if ok != true {
					continue
				}
			}
			cl, err := c.build(e, r, vars)
			if err != nil {
				results[i].Err = c.red.err(err)
				return nil
			}
			resp, err := c.cl.do(ctx, cl)
			if err != nil {
				if perRecord(err) {
					results[i].Err = c.red.err(err)
					return nil
				}
				return err
			}
			last, lastResp = r, resp
		}
		switch {
		case last == nil && found:
			results[i].Record = cur // nothing to send: the record is as stored
		case last != nil && last.hasResult && len(lastResp.body) > 0:
			stored, _, err := c.stored(e, last, lastResp)
			if err != nil {
				return fmt.Errorf("%s %s: %w", c.what(e), rec.ID, err)
			}
			stored.ID = rec.ID
			results[i].Record = *stored
		default:
			pending[i] = true
		}
		return nil
	})
	if err != nil {
		return nil, c.red.err(err)
	}
	var ids []string
	for i, p := range pending {
		if p {
			ids = append(ids, recs[i].ID)
		}
	}
	got, err := c.get(ctx, e, ids)
	if err != nil {
		return nil, c.red.err(fmt.Errorf("%s: reading back updated records: %w", c.what(e), err))
	}
	for i, p := range pending {
		if !p {
			continue
		}
		if rec, ok := got[recs[i].ID]; ok {
			results[i].Record = rec
		} else {
			results[i].Err = fmt.Errorf("%s: record %s was not found after the update", c.what(e), recs[i].ID)
		}
	}
	return results, nil
}

// Delete implements connector.Conn. A record that is already gone (404, 410) counts as deleted.
func (c *conn) Delete(ctx context.Context, name string, ids []string) ([]error, error) {
	e, err := c.entity(name)
	if err != nil {
		return nil, err
	}
	if e.delete == nil {
		return nil, fmt.Errorf("%s: the entity has no delete in the system file; delete: propagate needs one", c.what(e))
	}
	errs := make([]error, len(ids))
	err = c.each(ctx, len(ids), func(ctx context.Context, i int) error {
		vars := c.vars()
		vars[nameID] = ids[i]
		cl, err := c.build(e, e.delete, vars)
		if err != nil {
			errs[i] = c.red.err(err)
			return nil
		}
		_, err = c.cl.do(ctx, cl)
		switch s := statusOf(err); {
		case err == nil || s == http.StatusNotFound || s == http.StatusGone:
		case perRecord(err):
			errs[i] = c.red.err(err)
		default:
			return err
		}
		return nil
	})
	if err != nil {
		return nil, c.red.err(err)
	}
	return errs, nil
}
