package httpconn

// Counting: an entity with a count request (PocketBase: perPage=1 and totalItems) is counted
// with one request, so that the delete check of a quiet run compares the count with its links
// instead of reading every linked record again.

import (
	"context"
	"fmt"
	"math"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

// countingConn is a connection with an entity that has count: its Capabilities have a
// Counter. Entities without count are counted by reading their list.
type countingConn struct {
	*conn
}

var _ connector.Counter = countingConn{}

// Capabilities are the connection's, with its counts.
func (c countingConn) Capabilities() connector.Capabilities {
	caps := c.conn.Capabilities()
	caps.Counter = c
	return caps
}

// Count implements connector.Counter.
func (c countingConn) Count(ctx context.Context, name string) (int, error) {
	e, err := c.checkedEntity(ctx, name)
	if err != nil {
		return 0, err
	}
	n, err := c.count(ctx, e)
	return n, c.red.err(err)
}

func (c *conn) count(ctx context.Context, e *entity) (int, error) {
	if e.count == nil {
		n := 0
		err := c.scan(ctx, e, "", func(recs []connector.Record) error { n += len(recs); return nil })
		return n, err
	}
	cl, err := c.build(e, e.count.req, c.vars())
	if err != nil {
		return 0, err
	}
	resp, err := c.cl.do(ctx, cl)
	if err != nil {
		return 0, err
	}
	body, err := c.cl.decode(cl, resp)
	if err != nil {
		return 0, err
	}
	v, found := at(body, e.count.total)
	f, ok := numberOf(v, found)
	if !ok || f < 0 || f != math.Trunc(f) || f > math.MaxInt32*1024.0 {
		return 0, fmt.Errorf("%s: count.total: %q in the response is %s, not a number of records", cl.op(), e.count.total, resultKind(v))
	}
	return int(f), nil
}
