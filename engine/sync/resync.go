package sync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// A pair whose two records have not changed since their link was saved is skipped by
// comparing digests; the digests do not see the mapping. So that an edited property table
// (an expression, a target, a direction, a type, a property added or removed) reaches the
// records already linked, the link state keeps, per flow, the fingerprint of the property
// table its links were last all merged under. A run that finds another one merges every linked
// pair of the flow (the edited properties then differ from their bases and are written), in
// batches of the flow's links, and records the new fingerprint once it has merged them all:
// a run stopped half-way leaves the old one, and the next run merges them all again, which
// writes nothing for the pairs already done. Options.Resync does the same on request.
//
// One fingerprint per flow rather than one per link: a link would carry it in every row, and
// every link must be merged again anyway when it changes.

// fingerprint digests what of a flow's property table decides the values synced.
func fingerprint(props []*mapping.Property) string {
	var b strings.Builder
	var write func(props []*mapping.Property)
	write = func(props []*mapping.Property) {
		for _, p := range props {
			ref := ""
			if p.Ref != nil {
				ref = p.Ref.ID()
			}
			toTarget, toSource := "", ""
			if p.Config != nil {
				toTarget, toSource = p.Config.ToTarget.Value, p.Config.ToSource.Value
			}
			for _, part := range []string{p.Key(), p.Source, p.Target, p.Direction, p.SourceType, p.TargetType, toTarget, toSource, ref} {
				b.WriteString(part)
				b.WriteByte(0)
			}
			b.WriteByte('[')
			write(p.Elements)
			b.WriteString("]\x01")
		}
	}
	write(props)
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:16])
}

// beginResync decides whether this flow run merges every linked pair: on request, or because
// the property table changed since the links were merged. A flow without a recorded
// fingerprint records its table's (a link state of an older dataflow, a new flow).
func (fr *flowRun) beginResync(ctx context.Context) error {
	fr.print = fingerprint(fr.f.Properties)
	stored, err := fr.r.State.Fingerprint(ctx, fr.f.ID())
	if err != nil {
		return err
	}
	fr.resync = fr.r.Opts.Resync || (stored != "" && stored != fr.print)
	if stored == "" && !fr.r.Opts.DryRun {
		return fr.commit(ctx, func(tx state.Tx) error { return tx.SetFingerprint(fr.f.ID(), fr.print) })
	}
	return nil
}

// resyncPass merges every linked pair the passes did not merge, batch by batch (when the flow
// had links when the run began: the links this run made are merged already), and then records
// the flow's fingerprint.
func (fr *flowRun) resyncPass(ctx context.Context, hadLinks bool) error {
	if !hadLinks {
		if fr.r.Opts.DryRun {
			return nil
		}
		return fr.commit(ctx, func(tx state.Tx) error { return tx.SetFingerprint(fr.f.ID(), fr.print) })
	}
	side := Source
	if !fr.writes(Target) {
		side = Target
	}
	conn, entity := fr.on(side)
	err := fr.r.State.ScanLinks(ctx, fr.f.ID(), func(links []*state.Link) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var ids []string
		for _, l := range links {
			if !fr.done(l) {
				ids = append(ids, partnerOf(l, other(side)))
			}
		}
		if len(ids) == 0 {
			return nil
		}
		got, refused, err := getSome(ctx, conn, entity, ids)
		if err != nil {
			return err
		}
		recs := make([]connector.Record, 0, len(got))
		out := &outcome{}
		for _, id := range ids {
			if why := refused[id]; why != nil {
				fr.fail(out, side, id, why)
			} else if rec, ok := got[id]; ok {
				recs = append(recs, rec) // a missing record is the delete pass's
			}
		}
		if err := fr.save(ctx, out); err != nil {
			return err
		}
		// The batch counts what it reads; these records are read to be merged again.
		return fr.batch(ctx, side, recs)
	})
	if err != nil {
		return err
	}
	if err := fr.flush(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	if fr.r.Opts.DryRun {
		return nil
	}
	return fr.commit(ctx, func(tx state.Tx) error { return tx.SetFingerprint(fr.f.ID(), fr.print) })
}
