package serve

import (
	"context"
	"errors"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

// fakeConn records the writes that reach it; its capabilities are caps.
type fakeConn struct {
	connector.Conn // nil: only the methods below are called
	writes         int
	caps           connector.Capabilities
}

func (c *fakeConn) Capabilities() connector.Capabilities { return c.caps }

func (c *fakeConn) Idempotent(string) bool { return true }

func (c *fakeConn) CreateKeyed(context.Context, string, []map[string]any, []string) ([]connector.Result, error) {
	c.writes++
	return []connector.Result{{}}, nil
}

func (c *fakeConn) Create(context.Context, string, []map[string]any) ([]connector.Result, error) {
	c.writes++
	return []connector.Result{{}}, nil
}

func (c *fakeConn) Update(context.Context, string, []connector.Record) ([]connector.Result, error) {
	c.writes++
	return []connector.Result{{}}, nil
}

func (c *fakeConn) Delete(context.Context, string, []string) ([]error, error) {
	c.writes++
	return []error{nil}, nil
}

type fakeFinder struct{}

func (fakeFinder) Find(context.Context, string, []string, [][]string) ([]connector.Record, error) {
	return nil, nil
}

// A leased run's writes reach the system while its lease holds and not after: the worker
// woken after another took its flows over writes nothing from what it read before.
func TestFencedConnRefusesWritesOfALostLease(t *testing.T) {
	lost := errors.New("lease lost")
	var leaseErr error
	inner := &fakeConn{}
	inner.caps = connector.Capabilities{Delete: true, KeyedCreator: inner}
	c := fenceConn(inner, func() error { return leaseErr })
	ctx := context.Background()
	c.Create(ctx, "E", []map[string]any{{}})
	c.Update(ctx, "E", []connector.Record{{}})
	c.Delete(ctx, "E", []string{"1"})
	if inner.writes != 3 {
		t.Fatalf("%d writes reached the system under a live lease, want 3", inner.writes)
	}
	leaseErr = lost
	if res, err := c.Create(ctx, "E", []map[string]any{{}, {}}); !errors.Is(err, lost) || len(res) != 2 {
		t.Errorf("Create after the lease was lost: %v, %d results", err, len(res))
	}
	if _, err := c.Update(ctx, "E", []connector.Record{{}}); !errors.Is(err, lost) {
		t.Errorf("Update after the lease was lost: %v", err)
	}
	if _, err := c.Delete(ctx, "E", []string{"1"}); !errors.Is(err, lost) {
		t.Errorf("Delete after the lease was lost: %v", err)
	}
	if _, err := c.Capabilities().KeyedCreator.CreateKeyed(ctx, "E", []map[string]any{{}}, []string{"k"}); !errors.Is(err, lost) {
		t.Errorf("CreateKeyed after the lease was lost: %v", err)
	}
	if inner.writes != 3 {
		t.Errorf("%d writes reached the system, want 3", inner.writes)
	}
	// The abilities the engine changes its ways for are kept as they are.
	if c.Capabilities().Finder != nil {
		t.Error("a connection without Find gained it")
	}
	finding := &fakeConn{caps: connector.Capabilities{Finder: fakeFinder{}}}
	if fenceConn(finding, func() error { return nil }).Capabilities().Finder == nil {
		t.Error("a connection with Find lost it")
	}
	if c.Capabilities().Counter != nil {
		t.Error("a connection without Count gained it")
	}
}

// stallingConn is a system whose write lasts past the lease: the lease is lost inside the
// call, and the write asks the fence the call carries just before its commit.
type stallingConn struct {
	connector.Conn
	stall     func() // loses the lease
	committed int
}

func (c *stallingConn) Capabilities() connector.Capabilities {
	return connector.Capabilities{Delete: true}
}

func (c *stallingConn) write(ctx context.Context) error {
	c.stall()
	if err := connector.Fence(ctx); err != nil {
		return err
	}
	c.committed++
	return nil
}

func (c *stallingConn) Create(ctx context.Context, _ string, data []map[string]any) ([]connector.Result, error) {
	return make([]connector.Result, len(data)), c.write(ctx)
}

func (c *stallingConn) Update(ctx context.Context, _ string, recs []connector.Record) ([]connector.Result, error) {
	return make([]connector.Result, len(recs)), c.write(ctx)
}

func (c *stallingConn) Delete(ctx context.Context, _ string, ids []string) ([]error, error) {
	return make([]error, len(ids)), c.write(ctx)
}

// A leased run's write that the lease outlives only at its start is refused at its commit: the
// call carries the fence to the connection (connector.Fence), which the sqlite and SQL
// connectors ask just before they commit.
func TestFencedConnFencesTheCommitOfAStalledWrite(t *testing.T) {
	lost := errors.New("lease lost")
	var leaseErr error
	inner := &stallingConn{stall: func() { leaseErr = lost }}
	c := fenceConn(inner, func() error { return leaseErr })
	ctx := context.Background()
	for name, write := range map[string]func() error{
		"Create": func() error { _, err := c.Create(ctx, "E", []map[string]any{{}}); return err },
		"Update": func() error { _, err := c.Update(ctx, "E", []connector.Record{{}}); return err },
		"Delete": func() error { _, err := c.Delete(ctx, "E", []string{"1"}); return err },
	} {
		leaseErr = nil
		if err := write(); !errors.Is(err, lost) {
			t.Errorf("%s stalled past the lease: %v, want the lease's error", name, err)
		}
	}
	if inner.committed != 0 {
		t.Errorf("%d stalled writes committed, want none", inner.committed)
	}
}
