package sync

import (
	"context"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

// scan calls fn with the batches of conn.Scan, in order, on the caller's goroutine. When the
// connection allows it (Capabilities.ConcurrentScan), the scan runs on a goroutine of its own,
// one batch ahead: reading and decoding the next batch, digesting its records (digests,
// aligned with the records; nil otherwise) and, with prepare, building what the batch will
// create (prebuilt, aligned; nil otherwise), overlaps merging and writing this one, which puts
// the second core to work. Memory holds at most three batches: the one fn has, the one
// waiting, and the one being read.
func scan(ctx context.Context, conn connector.Conn, entity, since string, prepare func([]connector.Record) []*prebuilt,
	fn func(recs []connector.Record, digests []string, prebuilt []*prebuilt) error) error {
	if !conn.Capabilities().ConcurrentScan {
		return conn.Scan(ctx, entity, since, func(recs []connector.Record) error { return fn(recs, nil, nil) })
	}
	readCtx, stop := context.WithCancel(ctx)
	defer stop()
	type page struct {
		recs     []connector.Record
		digests  []string
		prebuilt []*prebuilt
	}
	batches := make(chan page, 1)
	read := make(chan error, 1)
	go func() {
		defer close(batches)
		var d digester // the reader's own
		read <- conn.Scan(readCtx, entity, since, func(recs []connector.Record) error {
			digests := make([]string, len(recs))
			for i, r := range recs {
				digests[i] = d.digest(r.Data)
			}
			var built []*prebuilt
			if prepare != nil {
				built = prepare(recs)
			}
			select {
			case batches <- page{recs, digests, built}:
				return nil
			case <-readCtx.Done():
				return readCtx.Err()
			}
		})
	}()
	var err error
	for p := range batches {
		if err != nil {
			continue // drained until the reader has stopped
		}
		if err = fn(p.recs, p.digests, p.prebuilt); err != nil {
			stop()
		}
	}
	readErr := <-read
	if err != nil {
		return err
	}
	return readErr
}
