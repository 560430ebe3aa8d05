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
// may have expired, and the call carries the same look (connector.WithFence) for the
// connection to make again just before it commits its write, so that a worker stopped inside
// the call rolls its write back when it wakes. What is left is the instant between the last
// look and the commit.

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

// fenceConn wraps c. Its capabilities are c's (connector.Capabilities, forwarded as a value),
// with keyed creates fenced like the other writes; the abilities that only read (Find, Count,
// Deletions, ListID) go to c as they are.
func fenceConn(c connector.Conn, ok alive) connector.Conn {
	return &fencedConn{Conn: c, ok: ok}
}

type fencedConn struct {
	connector.Conn
	ok alive
}

func (c *fencedConn) Create(ctx context.Context, entity string, data []map[string]any) ([]connector.Result, error) {
	if err := c.ok(); err != nil {
		return make([]connector.Result, len(data)), err
	}
	return c.Conn.Create(connector.WithFence(ctx, c.ok), entity, data)
}

func (c *fencedConn) Update(ctx context.Context, entity string, recs []connector.Record) ([]connector.Result, error) {
	if err := c.ok(); err != nil {
		return make([]connector.Result, len(recs)), err
	}
	return c.Conn.Update(connector.WithFence(ctx, c.ok), entity, recs)
}

func (c *fencedConn) Delete(ctx context.Context, entity string, ids []string) ([]error, error) {
	if err := c.ok(); err != nil {
		return make([]error, len(ids)), err
	}
	return c.Conn.Delete(connector.WithFence(ctx, c.ok), entity, ids)
}

// Capabilities implements connector.Conn: c's, with its keyed creates fenced.
func (c *fencedConn) Capabilities() connector.Capabilities {
	caps := c.Conn.Capabilities()
	if caps.KeyedCreator != nil {
		caps.KeyedCreator = fencedKeyed{caps.KeyedCreator, c.ok}
	}
	return caps
}

// fencedKeyed is a connection's keyed creates under the fence.
type fencedKeyed struct {
	connector.KeyedCreator
	ok alive
}

func (k fencedKeyed) CreateKeyed(ctx context.Context, entity string, data []map[string]any, keys []string) ([]connector.Result, error) {
	if err := k.ok(); err != nil {
		return make([]connector.Result, len(data)), err
	}
	return k.KeyedCreator.CreateKeyed(connector.WithFence(ctx, k.ok), entity, data, keys)
}
