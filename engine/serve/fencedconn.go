package serve

import (
	"context"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

// The fence of a run's writes to the systems. The lease's fence keeps a stalled worker's
// commits out of the state; but a batch the engine has started is finished whatever the
// run's context says (it writes, then commits its links), so a worker stopped in the middle
// of a batch would, when it wakes, write to the systems what it planned from records it read
// before it stopped: values the worker that took the flow over may have changed since. Each
// write call of a leased run therefore asks the lease first (alive() is a look at the local
// monotonic clock, which runs on while the process is stopped) and is refused once the lease
// may have expired. What is left is the instant between that look and the call reaching the
// system.

// alive reports whether the run's lease still holds; its error says why not.
type alive func() error

// fenceConns wraps each connection of a leased run.
func fenceConns(conns map[string]connector.Conn, ok alive) map[string]connector.Conn {
	out := make(map[string]connector.Conn, len(conns))
	for id, c := range conns {
		out[id] = fenceConn(c, ok)
	}
	return out
}

// fenceConn wraps c. The optional abilities whose absence changes what the engine does
// (Finder, Counter) are kept exactly; the others have a neutral answer when c lacks them (no
// capabilities, no list ids, no deletion count, no idempotent creates), which is what the
// engine assumes without them.
func fenceConn(c connector.Conn, ok alive) connector.Conn {
	base := &fencedConn{Conn: c, ok: ok}
	f, isFinder := c.(connector.Finder)
	n, isCounter := c.(connector.Counter)
	switch {
	case isFinder && isCounter:
		return &struct {
			*fencedConn
			connector.Finder
			connector.Counter
		}{base, f, n}
	case isFinder:
		return &struct {
			*fencedConn
			connector.Finder
		}{base, f}
	case isCounter:
		return &struct {
			*fencedConn
			connector.Counter
		}{base, n}
	}
	return base
}

type fencedConn struct {
	connector.Conn
	ok alive
}

func (c *fencedConn) Create(ctx context.Context, entity string, data []map[string]any) ([]connector.Result, error) {
	if err := c.ok(); err != nil {
		return make([]connector.Result, len(data)), err
	}
	return c.Conn.Create(ctx, entity, data)
}

func (c *fencedConn) Update(ctx context.Context, entity string, recs []connector.Record) ([]connector.Result, error) {
	if err := c.ok(); err != nil {
		return make([]connector.Result, len(recs)), err
	}
	return c.Conn.Update(ctx, entity, recs)
}

func (c *fencedConn) Delete(ctx context.Context, entity string, ids []string) ([]error, error) {
	if err := c.ok(); err != nil {
		return make([]error, len(ids)), err
	}
	return c.Conn.Delete(ctx, entity, ids)
}

// Capabilities implements connector.Capable.
func (c *fencedConn) Capabilities() connector.Capabilities {
	return connector.CapabilitiesOf(c.Conn)
}

// Idempotent and CreateKeyed implement connector.KeyedCreator.
func (c *fencedConn) Idempotent(entity string) bool {
	kc, ok := c.Conn.(connector.KeyedCreator)
	return ok && kc.Idempotent(entity)
}

func (c *fencedConn) CreateKeyed(ctx context.Context, entity string, data []map[string]any, keys []string) ([]connector.Result, error) {
	if err := c.ok(); err != nil {
		return make([]connector.Result, len(data)), err
	}
	if kc, ok := c.Conn.(connector.KeyedCreator); ok {
		return kc.CreateKeyed(ctx, entity, data, keys)
	}
	return c.Conn.Create(ctx, entity, data)
}

// Deletions implements connector.DeleteCounter.
func (c *fencedConn) Deletions(ctx context.Context, entity string) (int64, bool, error) {
	if dc, ok := c.Conn.(connector.DeleteCounter); ok {
		return dc.Deletions(ctx, entity)
	}
	return 0, false, nil
}

// ListID implements connector.ListIdentifier.
func (c *fencedConn) ListID(entity, path string) string {
	if li, ok := c.Conn.(connector.ListIdentifier); ok {
		return li.ListID(entity, path)
	}
	return ""
}
