package httpconn

// Writes: Create (and CreateKeyed), Update and Delete. A write's outcome is per record when the server refused that record (a 4xx): the record goes
// to the dead letters and the batch goes on. Anything else that fails after the server may have
// acted (retries exhausted, a lost response, a response that cannot be read) fails the batch, so
// that the engine keeps its create intents and recovers what was created on the next run.

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"path"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

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
	e, err := c.checkedEntity(ctx, name)
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
		return accepted(results, pending, data, e), c.red.err(err)
	}
	got, err := c.readBack(ctx, e, pending, "created")
	if err != nil {
		return accepted(results, pending, data, e), err
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
	e, err := c.checkedEntity(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(e.update) == 0 {
		return nil, fmt.Errorf("%s: the entity has no update in the system file", c.what(e))
	}
	results := make([]connector.Result, len(recs))
	current, refused, err := c.currentForUpdate(ctx, e, recs, results)
	if err != nil {
		return nil, err
	}
	pending := make([]string, len(recs)) // ids of updated records to read back
	err = c.each(ctx, len(recs), func(ctx context.Context, i int) error {
		if refused[i] {
			return nil
		}
		var err error
		pending[i], err = c.updateRecord(ctx, e, recs[i], current, &results[i])
		return err
	})
	if err != nil {
		return accepted(results, pending, recordData(recs), e), c.red.err(err)
	}
	got, err := c.readBack(ctx, e, pending, "updated")
	if err != nil {
		return accepted(results, pending, recordData(recs), e), err
	}
	for i, id := range pending {
		if id == "" {
			continue
		}
		if rec, ok := got[id]; ok {
			results[i].Record = rec
		} else {
			results[i].Err = fmt.Errorf("%s: record %s was not found after the update", c.what(e), id)
		}
	}
	return results, nil
}

// currentForUpdate reads the stored records when the entity's update needs them (current).
// A record the server refused to read is refused, its result failed; the others go on.
func (c *conn) currentForUpdate(ctx context.Context, e *entity, recs []connector.Record, results []connector.Result) (map[string]connector.Record, map[int]bool, error) {
	refused := map[int]bool{}
	if !e.needsCurrent {
		return nil, refused, nil
	}
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	current, err := c.get(ctx, e, ids)
	if re, ok := err.(*connector.RecordError); ok {
		// The server refused to read some of the records: those fail, the others go on.
		for _, i := range re.Index {
			refused[i] = true
			results[i].Err = c.red.err(fmt.Errorf("%s: reading the stored record %s for update: %w", c.what(e), recs[i].ID, re.Err))
		}
	} else if err != nil {
		return nil, nil, c.red.err(fmt.Errorf("%s: reading the stored records for update: %w", c.what(e), err))
	}
	return current, refused, nil
}

// updateRecord sends rec's update requests and sets res to the record as stored, or gives
// rec's id when the record is to be read back. A failure of rec alone is res.Err; an error
// stops the whole update.
func (c *conn) updateRecord(ctx context.Context, e *entity, rec connector.Record, current map[string]connector.Record, res *connector.Result) (string, error) {
	vars := c.vars()
	vars[nameID], vars[nameRecord], vars[nameCurrent] = rec.ID, rec.Data, nil
	cur, found := current[rec.ID]
	if e.needsCurrent {
		if !found {
			res.Err = fmt.Errorf("%s: record %s no longer exists", c.what(e), rec.ID)
			return "", nil
		}
		vars[nameCurrent] = cur.Data
	}
	last, lastResp, recErr, err := c.sendUpdates(ctx, e, vars)
	if err != nil {
		return "", err
	}
	if recErr != nil {
		res.Err = recErr
		return "", nil
	}
	switch {
	case last == nil && found:
		res.Record = cur // nothing to send: the record is as stored
	case last != nil && last.hasResult && len(lastResp.body) > 0:
		stored, _, err := c.stored(e, last, lastResp)
		if err != nil {
			return "", fmt.Errorf("%s %s: %w", c.what(e), rec.ID, err)
		}
		stored.ID = rec.ID
		res.Record = *stored
	default:
		return rec.ID, nil
	}
	return "", nil
}

// sendUpdates sends, in order, the entity's update requests whose when holds, and gives the
// last one sent and its response (nil when none was). A failure of this record alone is
// recErr; err stops the whole update.
func (c *conn) sendUpdates(ctx context.Context, e *entity, vars map[string]any) (last *request, lastResp *response, recErr, err error) {
	for _, r := range e.update {
		if r.when != nil {
			ok, err := r.when.run(vars)
			if err != nil {
				return nil, nil, c.red.err(fmt.Errorf("%s: %s.when: %w", c.what(e), r.key, err)), nil
			}
			if ok != true {
				continue
			}
		}
		cl, err := c.build(e, r, vars)
		if err != nil {
			return nil, nil, c.red.err(err), nil
		}
		if err := keyed(cl, r); err != nil {
			return nil, nil, nil, err
		}
		resp, err := c.cl.do(ctx, cl)
		if err != nil {
			if perRecord(err) {
				return nil, nil, c.red.err(err), nil
			}
			return nil, nil, nil, err
		}
		last, lastResp = r, resp
	}
	return last, lastResp, nil, nil
}

// accepted returns the results of a write call that failed as a whole, one per record: the
// records the server accepted before the failure have their Record (with its id: as stored,
// or what was sent with the id when the record was still to be read back), the others are
// zero (left undone) or their own refusal, so that the engine counts and links the writes
// that were made.
func accepted(results []connector.Result, pending []string, data []map[string]any, e *entity) []connector.Result {
	for i, id := range pending {
		if id == "" || results[i].Record.ID != "" || results[i].Err != nil {
			continue
		}
		d := make(map[string]any, len(data[i])+1)
		for k, v := range data[i] {
			d[k] = v
		}
		d[e.id] = id
		results[i].Record = connector.Record{ID: id, Data: d}
	}
	return results
}

func recordData(recs []connector.Record) []map[string]any {
	out := make([]map[string]any, len(recs))
	for i, r := range recs {
		out[i] = r.Data
	}
	return out
}

// readBack reads, in one Get, the records of a write whose responses did not hold them: the
// ids in pending that are not "" (what names the write, for the error).
func (c *conn) readBack(ctx context.Context, e *entity, pending []string, what string) (map[string]connector.Record, error) {
	var ids []string
	for _, id := range pending {
		if id != "" {
			ids = append(ids, id)
		}
	}
	got, err := c.get(ctx, e, ids)
	if err != nil {
		return nil, c.red.err(fmt.Errorf("%s: reading back %s records: %w", c.what(e), what, err))
	}
	return got, nil
}

// keyed gives an update or delete request of a request with idempotency_header a key of its
// own: made once, here, and sent again with each retry of the call, so that a server that
// honours keys applies the request once however often a lost response or a 5xx makes the
// connector send it. The next update of the record is another call with another key.
func keyed(cl *call, r *request) error {
	if r.idemHeader == "" {
		return nil
	}
	key, err := newKey()
	if err != nil {
		return fmt.Errorf("%s: making an idempotency key: %w", cl.op(), err)
	}
	cl.header = http.Header{http.CanonicalHeaderKey(r.idemHeader): {key}}
	return nil
}

// newKey returns a random version 4 UUID from crypto/rand: 122 random bits, in the form APIs
// that take idempotency keys accept.
func newKey() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// Delete implements connector.Conn. A record that is already gone (404, 410) counts as deleted.
func (c *conn) Delete(ctx context.Context, name string, ids []string) ([]error, error) {
	e, err := c.checkedEntity(ctx, name)
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
		if err := keyed(cl, e.delete); err != nil {
			return err
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
