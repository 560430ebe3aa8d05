package sync

// A pass reads one side of a flow: what changed since its watermark (all of it without one),
// in batches, then the records that waited or failed before; each batch is merged, linked or
// created (batch.go).

import (
	"context"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// pass reads one side (what changed since its watermark, then the records that wait or
// failed before) and merges, links or creates each record.
func (fr *flowRun) pass(ctx context.Context, side Side) (err error) {
	// What the last batch staged is committed whatever happens, even after an interrupt.
	defer func() {
		if ferr := fr.flush(context.WithoutCancel(ctx)); err == nil {
			err = ferr
		}
		fr.basing.Wait() // the bases of batches left staged by an error, too
	}()
	conn, entity := fr.on(side)
	updated := fr.updatedOf(side)
	wm, since, err := fr.passMarks(ctx, side)
	if err != nil {
		return err
	}
	if wm != nil {
		defer fr.reportWarnings(wm)
	}
	fr.readWhole[side] = since == ""
	// A scan that is not a snapshot may skip records that the run's own writes to the side
	// move (paging by updated): the watermark then counts only the batches the scan handed
	// over before the first such write.
	written, snapshot := fr.writtenTo(side), snapshots(conn)
	// Records that wait for a reference, or failed, are read again whatever the watermark,
	// unless the scan reads them: memory grows with those, not with the records scanned.
	retry, err := fr.retryIDs(ctx, side)
	if err != nil {
		return err
	}
	pending := make(map[string]bool, len(retry))
	for _, id := range retry {
		pending[id] = true
	}
	fr.scanning = side
	defer func() { fr.scanning = "" }()
	h := &held{}
	err = scan(ctx, conn, entity, since, fr.prepareCreates(side), func(recs []connector.Record, digests []string, built []*prebuilt) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if wm != nil && !snapshot && fr.writtenTo(side) != written {
			wm.frozen = true
		}
		for _, rec := range recs {
			delete(pending, rec.ID)
			if wm != nil {
				wm.see(rec)
			}
		}
		h.add(recs, digests, built)
		return fr.processHeld(ctx, side, h, false)
	})
	if err == nil {
		err = fr.processHeld(ctx, side, h, true)
	}
	h = nil // what the scan handed over is done with: the retries need none of it
	fr.scanning = ""
	if err != nil {
		return err
	}
	if err := fr.retryPending(ctx, side, retry, pending); err != nil {
		return err
	}
	if side == Source {
		fr.srcPass = &passInfo{whole: updated == "" || since == "", since: since}
	}
	// Only a scan that read every record it was asked for moves the watermark (an error or
	// an interrupt returned above), and only to a stamp of a record read and processed.
	if wm != nil {
		if high := wm.next(); high != "" && !fr.r.Opts.DryRun {
			if len(fr.vanished) > 0 {
				// Records whose partners vanished wait for the delete pass: if the breaker
				// holds the run, no watermark may pass the records it read and did not merge.
				if fr.heldMarks == nil {
					fr.heldMarks = map[Side]string{}
				}
				fr.heldMarks[side] = high
				return nil
			}
			return fr.setWatermark(ctx, side, high)
		}
	}
	return nil
}

// held holds the records a scan handed over until they make a batch: records are merged and
// written in batches of Opts.BatchSize, whatever the size of the connection's pages, since a
// transaction's cost is mostly its commit and the index pages it dirties, so larger batches
// cost less per record.
type held struct {
	recs     []connector.Record
	digests  []string    // aligned with recs; "" where the scan gave none
	prebuilt []*prebuilt // aligned with recs; nil where the scan built none
}

func (h *held) add(recs []connector.Record, digests []string, built []*prebuilt) {
	h.recs = append(h.recs, recs...)
	if digests == nil {
		digests = make([]string, len(recs))
	}
	h.digests = append(h.digests, digests...)
	if built == nil {
		built = make([]*prebuilt, len(recs))
	}
	h.prebuilt = append(h.prebuilt, built...)
}

// processHeld merges, links or creates the held records of side in full batches, and with all
// the last one too.
func (fr *flowRun) processHeld(ctx context.Context, side Side, h *held, all bool) error {
	for len(h.recs) >= fr.batchSize || (all && len(h.recs) > 0) {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(fr.batchSize, len(h.recs))
		fr.digests, fr.prebuilt = h.digests[:n], h.prebuilt[:n]
		err := fr.batch(ctx, side, h.recs[:n])
		fr.digests, fr.prebuilt = nil, nil
		if err != nil {
			return err
		}
		h.recs, h.digests, h.prebuilt = h.recs[n:], h.digests[n:], h.prebuilt[n:]
	}
	return nil
}

// passMarks returns the watermark a pass of side follows (nil for an entity without an
// updated property) and what it reads since ("" for every record: no watermark yet, or a
// reconcile). The read starts now: the next watermark stays before this (less the clock
// skew), so that what is written from now on, by the run or anyone, is read next time.
func (fr *flowRun) passMarks(ctx context.Context, side Side) (*marks, string, error) {
	if fr.updatedOf(side) == "" {
		return nil, "", nil
	}
	if fr.reconciling() {
		return fr.newMarks(side, "", fr.r.Opts.Now()), "", nil
	}
	stored, err := fr.r.State.Watermark(ctx, fr.f.ID(), string(side))
	if err != nil {
		return nil, "", err
	}
	lookback, err := fr.lookbackOf(side)
	if err != nil {
		return nil, "", err
	}
	wm := fr.newMarks(side, stored, fr.r.Opts.Now())
	return wm, wm.since(lookback), nil
}

// retryPending reads again, in batches, the records of side that waited or failed before
// (retry) and that the scan did not read (pending), and merges, links or creates them. A
// record that is gone is forgotten.
func (fr *flowRun) retryPending(ctx context.Context, side Side, retry []string, pending map[string]bool) error {
	conn, entity := fr.on(side)
	var todo []string
	for _, id := range retry {
		if pending[id] {
			todo = append(todo, id)
		}
	}
	retry = todo
	for start := 0; start < len(retry); start += fr.batchSize {
		ids := retry[start:min(start+fr.batchSize, len(retry))]
		got, refused, err := getSome(ctx, conn, entity, ids)
		if err != nil {
			return err
		}
		if len(refused) > 0 {
			out := &outcome{}
			for _, id := range ids {
				if why := refused[id]; why != nil {
					fr.fail(out, side, id, why)
				}
			}
			if err := fr.save(ctx, out); err != nil {
				return err
			}
		}
		recs := make([]connector.Record, 0, len(got))
		for _, id := range ids {
			if refused[id] != nil {
				continue
			}
			if rec, ok := got[id]; ok {
				recs = append(recs, rec)
			} else if err := fr.forget(ctx, side, id); err != nil {
				return err
			}
		}
		if err := fr.batch(ctx, side, recs); err != nil {
			return err
		}
	}
	return nil
}

// retryIDs lists the records of a side that wait or failed.
func (fr *flowRun) retryIDs(ctx context.Context, side Side) ([]string, error) {
	var ids []string
	seen := map[string]bool{}
	waiting, err := fr.r.State.Waiting(ctx, fr.f.ID())
	if err != nil {
		return nil, err
	}
	for _, w := range waiting {
		if w.Side == string(side) && !seen[w.RecordID] && w.Reason != unlinkedReason {
			seen[w.RecordID] = true
			ids = append(ids, w.RecordID)
		}
	}
	dead, err := fr.r.State.DeadLetters(ctx, fr.f.ID())
	if err != nil {
		return nil, err
	}
	for _, d := range dead {
		if d.Side == string(side) && !seen[d.RecordID] {
			seen[d.RecordID] = true
			ids = append(ids, d.RecordID)
		}
	}
	return ids, nil
}

// forget drops the waiting and dead-letter entries of a record that no longer exists.
func (fr *flowRun) forget(ctx context.Context, side Side, id string) error {
	if fr.r.Opts.DryRun {
		return nil
	}
	return fr.commit(ctx, func(tx state.Tx) error {
		if err := tx.ClearWaiting(fr.f.ID(), string(side), id); err != nil {
			return err
		}
		return tx.ClearDeadLetter(fr.f.ID(), string(side), id)
	})
}
