package sqlite

import "context"

// Count implements connector.Counter.
func (c *conn) Count(ctx context.Context, name string) (int, error) {
	e, err := c.entity(ctx, name)
	if err != nil {
		return 0, err
	}
	var n int
	err = c.r.QueryRowContext(ctx, "SELECT count(*) FROM "+Quote(e.table.name)).Scan(&n)
	return n, err
}
