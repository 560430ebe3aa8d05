package sync

import (
	"context"

	"github.com/dataflow-sync/dataflow/engine/state"
)

// The links of a batch of creates are not committed at once. A durable commit waits for the
// disk (the link state's fsyncs were a fifth of a first sync's time), and nothing needs them
// in the link state before the next transaction, provided the flow run's own lookups see them
// (linksOf): a crash before their commit leaves the batch's intents, and the next run adopts
// the records created, as after a crash between a create and its link.
//
// So createNow stages a batch's links (with the settling of its intents and the dead letters
// of failed creates). When the link state can be read, and written from another goroutine,
// while a transaction is open (state.Overlapping), the next batch commits its intents alone and
// then hands the staged links to a goroutine, which commits them while the system creates the
// next batch's records. Otherwise the next transaction commits them with its own writes. Any
// other transaction of the flow run first waits for the goroutine, and a pass ends by
// committing what is left (flush).
//
// The goroutine's commit need not wait for the disk either (state.Deferring): a power loss
// that undoes it leaves the batch's intents, as a crash before it does, and the next batch's
// intents, whose commit is durable, make it durable too. That leaves a first sync two durable
// commits per batch (the intents, the records) of three, and the flow run no longer waits
// for the links' fsync when it joins their commit. On the bench machine, whose disk syncs in
// about 0.13 ms, that is within the noise (bench i); on a disk that takes milliseconds, it is
// that many milliseconds a batch.

// stagedLinks is a batch's link writes waiting for their commit.
type stagedLinks struct {
	fns                []func(tx state.Tx) error
	bySource, byTarget map[string]*state.Link
	batches            []*createdBatch // whose links may wait for their bases (deferredBase)
}

func (s *stagedLinks) writes() []func(tx state.Tx) error {
	if s == nil {
		return nil
	}
	return s.fns
}

// overlay adds to links (found by side's ids) the staged links of those ids, with their bases.
func (s *stagedLinks) overlay(links map[string]*state.Link, side Side, ids []string) error {
	if !s.holds(side, ids) {
		return nil
	}
	for _, c := range s.batches {
		if err := c.awaitBases(); err != nil {
			return err
		}
	}
	by := s.by(side)
	for _, id := range ids {
		if l, ok := by[id]; ok {
			links[id] = l
		}
	}
	return nil
}

// by returns the staged links by side's ids.
func (s *stagedLinks) by(side Side) map[string]*state.Link {
	if side == Target {
		return s.byTarget
	}
	return s.bySource
}

// holds reports whether any of side's ids has a staged link.
func (s *stagedLinks) holds(side Side, ids []string) bool {
	if s == nil {
		return false
	}
	by := s.by(side)
	for _, id := range ids {
		if _, ok := by[id]; ok {
			return true
		}
	}
	return false
}

// stage keeps a batch's link writes, its links and the batch (whose links may wait for their
// bases, which it starts computing), for a later commit.
func (fr *flowRun) stage(fn func(tx state.Tx) error, links []*state.Link, c *createdBatch) {
	c.startBases()
	if fr.staged == nil {
		fr.staged = &stagedLinks{bySource: make(map[string]*state.Link, len(links)), byTarget: make(map[string]*state.Link, len(links))}
	}
	fr.staged.fns = append(fr.staged.fns, fn)
	fr.staged.batches = append(fr.staged.batches, c)
	for _, l := range links {
		fr.staged.bySource[l.SourceID] = l
		fr.staged.byTarget[l.TargetID] = l
	}
}

// commitAhead commits fn, which must be durable before what follows it (a batch's intents,
// before its creates). With an overlapping link state it commits fn alone and then the staged
// links on another goroutine; else it commits them together (commit).
func (fr *flowRun) commitAhead(ctx context.Context, fn func(tx state.Tx) error) error {
	if !fr.overlap {
		return fr.commit(ctx, fn)
	}
	if err := fr.join(); err != nil {
		return err
	}
	if err := fr.transact(ctx, nil, fn); err != nil {
		return err
	}
	if fr.staged == nil {
		return nil
	}
	fr.linking, fr.staged = fr.staged, nil
	fr.linked = make(chan error, 1)
	writes := fr.linking.writes()
	ctx = context.WithoutCancel(ctx)
	begin := fr.r.State.Begin
	if d, ok := fr.r.State.(state.Deferring); ok {
		begin = d.BeginDeferred
	}
	go func() { fr.linked <- fr.transactWith(ctx, begin, writes, nil) }()
	return nil
}

// join waits for the links being committed on another goroutine, and returns that commit's
// error.
func (fr *flowRun) join() error {
	if fr.linking == nil {
		return nil
	}
	err := <-fr.linked
	fr.linking, fr.linked = nil, nil
	return err
}

// flush commits the staged links, and waits for those being committed.
func (fr *flowRun) flush(ctx context.Context) error {
	if fr.staged == nil {
		return fr.join()
	}
	return fr.commit(ctx, nil)
}
