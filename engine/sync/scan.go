package sync

import (
	"context"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

// scan calls fn with the batches of conn.Scan, in order, on the caller's goroutine. When the
// connection allows it (Capabilities.ConcurrentScan), the scan runs on a goroutine of its own,
// one batch ahead: reading and decoding the next batch overlaps merging and writing this one,
// which puts the second core to work. Memory holds at most three batches: the one fn has,
// the one waiting, and the one being read.
func scan(ctx context.Context, conn connector.Conn, entity, since string, fn func([]connector.Record) error) error {
	if !connector.CapabilitiesOf(conn).ConcurrentScan {
		return conn.Scan(ctx, entity, since, fn)
	}
	readCtx, stop := context.WithCancel(ctx)
	defer stop()
	batches := make(chan []connector.Record, 1)
	read := make(chan error, 1)
	go func() {
		defer close(batches)
		read <- conn.Scan(readCtx, entity, since, func(recs []connector.Record) error {
			select {
			case batches <- recs:
				return nil
			case <-readCtx.Done():
				return readCtx.Err()
			}
		})
	}()
	var err error
	for recs := range batches {
		if err != nil {
			continue // drained until the reader has stopped
		}
		if err = fn(recs); err != nil {
			stop()
		}
	}
	readErr := <-read
	if err != nil {
		return err
	}
	return readErr
}
