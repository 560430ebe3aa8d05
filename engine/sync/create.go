package sync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// build computes the record to create on the other side from a record of side and, for a
// source record, the canonical value of each property in target form: the S half of the new
// link's base (rebase), computed here once.
func (fr *flowRun) build(side Side, rec connector.Record) (map[string]any, map[string][]byte, error) {
	if side == Target {
		data, err := fr.f.BuildSource(rec.Data, fr.refs)
		return data, nil, err
	}
	s := make(map[string][]byte, len(fr.f.Properties))
	data, err := fr.f.BuildTargetFunc(rec.Data, fr.refs, func(p *mapping.Property, v any) {
		s[p.Key()] = mapping.Canonical(v)
	})
	return data, s, err
}

// prebuilt is a record built for its create, with the canonical form its intent records.
type prebuilt struct {
	data    map[string]any
	s       map[string][]byte
	err     error
	encoded []byte
}

// prebuild builds a record for its create.
func (fr *flowRun) prebuild(side Side, rec connector.Record) *prebuilt {
	b := &prebuilt{}
	if b.data, b.s, b.err = fr.build(side, rec); b.err == nil {
		b.encoded = mapping.Canonical(b.data)
	}
	return b
}

// prepareCreates returns, for a pass of side that will create nearly every record it reads
// (a first sync: the flow had no link when the run began, and the run has linked nothing
// yet, as it has before a two-way sync's second pass), the work that builds the records for
// their creates on the scan's goroutine, while the batch before is written: nil otherwise.
// Only a pure flow's records are built there: their mapping reads nothing but the record (no
// reference to translate through links this run is making).
func (fr *flowRun) prepareCreates(side Side) func([]connector.Record) []*prebuilt {
	linked := fr.stats.CreatedTarget + fr.stats.CreatedSource + fr.stats.Merged + fr.stats.Recovered
	if !fr.pure || fr.check == nil || fr.check.hadLinks || linked > 0 || fr.r.Opts.DryRun {
		return nil
	}
	return func(recs []connector.Record) []*prebuilt {
		built := make([]*prebuilt, len(recs))
		for i, rec := range recs {
			built[i] = fr.prebuild(side, rec)
		}
		return built
	}
}

// create creates, on the other side, the records of side that have no partner (built: what
// the scan built for them, aligned; nil where it did not). The intent to create is committed
// first; a run killed after the create and before the link finds the record at its next
// start (recoverIntents) instead of creating it again.
func (fr *flowRun) create(ctx context.Context, side Side, recs []connector.Record, built []*prebuilt, out *outcome) error {
	all := make([]*prebuilt, len(recs))
	copy(all, built)
	fr.split(len(recs), func(lo, hi int, _ *digesters) {
		for i := lo; i < hi; i++ {
			if all[i] == nil {
				all[i] = fr.prebuild(side, recs[i])
			}
		}
	})
	var from []connector.Record
	var datas []map[string]any
	var sVals []map[string][]byte
	var encoded [][]byte
	for i, rec := range recs {
		if all[i].err != nil {
			fr.fail(out, side, rec.ID, all[i].err)
			continue
		}
		from = append(from, rec)
		datas = append(datas, all[i].data)
		sVals = append(sVals, all[i].s)
		encoded = append(encoded, all[i].encoded)
	}
	if len(datas) == 0 {
		return nil
	}
	if fr.r.Opts.DryRun {
		for i, rec := range from {
			fr.dryCreate(side, rec.ID, datas[i], "")
		}
		return nil
	}
	_, err := fr.createNow(ctx, side, from, datas, sVals, encoded, true)
	return err
}

// dryCreate counts a create a dry run plans, and links the record to a placeholder so that
// records referring to it are planned as the run would do them.
func (fr *flowRun) dryCreate(side Side, id string, data map[string]any, reason string) string {
	fr.countCreate(side)
	fr.dryLinked[Key{side, id}] = true
	if side == Source {
		fr.dryProcessed[id] = true
	}
	placeholder := "(new from " + id + ")"
	if side == Source {
		fr.refs.remember(fr.f, id, placeholder)
	} else {
		fr.refs.remember(fr.f, placeholder, id)
	}
	fr.change(Change{Action: "create", Side: string(other(side)), FromID: id, New: string(mapping.Canonical(data)), Reason: reason})
	return placeholder
}

func (fr *flowRun) countCreate(fromSide Side) {
	if fromSide == Source {
		fr.stats.CreatedTarget++
	} else {
		fr.stats.CreatedSource++
	}
}

// createNow records intents, creates the records, and links them. It returns the new ids, ""
// for a record that failed. sVals holds what build gave for each record (nil entries allowed),
// encoded the canonical form of each record of datas (nil: made here). stage leaves the links to be committed later, as stage.go describes; without it they are
// committed before createNow returns.
func (fr *flowRun) createNow(ctx context.Context, side Side, from []connector.Record, datas []map[string]any, sVals []map[string][]byte, encoded [][]byte, stage bool) ([]string, error) {
	toSide := other(side)
	conn, entity := fr.on(toSide)
	intentIDs := make([]int64, len(datas))
	keys := make([]string, len(datas))
	// The canonical form is JSON, written without encoding/json's reflection.
	if encoded == nil {
		encoded = make([][]byte, len(datas))
		fr.split(len(datas), func(lo, hi int, _ *digesters) {
			for i := lo; i < hi; i++ {
				encoded[i] = mapping.Canonical(datas[i])
			}
		})
	}
	err := fr.commitAhead(ctx, func(tx state.Tx) error {
		for i := range datas {
			in := state.Intent{Flow: fr.f.ID(), Side: string(toSide), FromID: from[i].ID, Data: encoded[i], Created: fr.r.Opts.Now().UTC()}
			id, err := tx.AddIntent(&in)
			if err != nil {
				return err
			}
			in.ID = id
			intentIDs[i], keys[i] = id, idempotencyKey(in)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var results []connector.Result
	if kc := fr.keyed(toSide); kc != nil {
		results, err = kc.CreateKeyed(ctx, entity, datas, keys)
	} else {
		results, err = conn.Create(ctx, entity, datas)
	}
	// A call that failed as a whole may have created some of the records: those are linked
	// now, the intents of the others stay for the next run to recover.
	results, failedCall := partialResults(results, len(datas), err)
	callErr := err
	if err = readBack(ctx, conn, entity, results); err != nil {
		if failedCall {
			err = callErr
		}
		return nil, err // the intents stay: the next run recovers whatever was created
	}
	from = append([]connector.Record(nil), from...) // flowBack replaces the records it writes
	unsynced, unsyncedWhy, err := fr.flowBack(ctx, side, from, results, sVals)
	if err != nil {
		return nil, err // the intents stay: the next run recovers whatever was created
	}
	newIDs := make([]string, len(datas))
	// The links' bases are computed before the transaction, on two goroutines for a pure flow.
	made := make([]*state.Link, len(results))
	unbased := make([]error, len(results))
	fr.split(len(results), func(lo, hi int, d *digesters) {
		for i := lo; i < hi; i++ {
			if results[i].Err != nil {
				continue
			}
			src, tgt := from[i], results[i].Record
			if side == Target {
				src, tgt = results[i].Record, from[i]
			}
			l := &state.Link{Flow: fr.f.ID(), LinkedIn: fr.runID, MergedIn: fr.runID, Made: string(toSide)}
			if unbased[i] = fr.rebaseWith(l, src, tgt, nil, sVals[i], d); unbased[i] == nil {
				made[i] = l
				if keys := unsynced[i]; len(keys) > 0 {
					// What did not reach the origin is left out of the base, and the digests
					// with it, so that the next merge of the pair writes it.
					for _, k := range keys {
						delete(l.Base, k)
					}
					l.SourceHash, l.TargetHash = "", ""
				}
			}
		}
	})
	// What the transaction writes per record: its link, or why it failed. Only this is kept
	// when the links are staged, not the records.
	type written struct {
		id     string
		link   *state.Link
		reason string
	}
	var links []*state.Link
	outcomes := make([]written, len(results))
	accepted, undone := 0, 0
	for i, res := range results {
		o := &outcomes[i]
		o.id = from[i].ID
		if res.Err == errUndone {
			undone++
			fr.stats.Undone++
			continue
		}
		if res.Err == nil {
			accepted++
		}
		switch {
		case res.Err != nil:
			o.reason = fmt.Sprintf("creating %s: %v", entity, res.Err)
			fr.stats.Failed++
			fr.failedNow[Key{side, o.id}] = true
		case made[i] == nil:
			o.reason = unbased[i].Error()
		default:
			o.link = made[i]
			links = append(links, made[i])
			newIDs[i] = res.Record.ID
			fr.countCreate(side)
		}
	}
	for i, reason := range unsyncedWhy {
		outcomes[i].reason = reason
	}
	// Only the intents of the records the connection answered for are settled; the others
	// stay for the next run to recover.
	settled := intentIDs[:min(len(results), len(intentIDs))]
	if undone > 0 {
		settled = nil
		for i, res := range results {
			if res.Err != errUndone {
				settled = append(settled, intentIDs[i])
			}
		}
	}
	link := func(tx state.Tx) error {
		if err := tx.DeleteIntents(settled); err != nil {
			return err
		}
		for i, o := range outcomes {
			if results[i].Err == errUndone {
				continue // its intent stays
			}
			if o.link == nil {
				if err := tx.PutDeadLetter(fr.f.ID(), string(side), o.id, o.reason); err != nil {
					return err
				}
				continue
			}
			if err := tx.PutLink(o.link); err != nil {
				return err
			}
			if o.reason != "" {
				// Linked, but what flows back did not reach it: retried by the next run.
				if err := tx.PutDeadLetter(fr.f.ID(), string(side), o.id, o.reason); err != nil {
					return err
				}
				continue
			}
			if err := tx.ClearDeadLetter(fr.f.ID(), string(side), o.id); err != nil {
				return err
			}
			if err := tx.ClearWaiting(fr.f.ID(), string(side), o.id); err != nil {
				return err
			}
		}
		return nil
	}
	for _, l := range links {
		fr.refs.remember(fr.f, l.SourceID, l.TargetID)
	}
	var partialErr error
	if failedCall {
		partialErr = &undoneError{err: callErr, entity: entity, made: accepted, undone: undone}
	}
	if stage {
		fr.stage(link, links)
		return newIDs, partialErr
	}
	if err := fr.commit(ctx, link); err != nil {
		return nil, err
	}
	return newIDs, partialErr
}

// backProps lists the properties that may flow back to the records created from (of side):
// those that flow to side. A create sends what flows from side; the others, and those whose
// value was empty there, the other system may assign (an id, a default, a stamp).
func (fr *flowRun) backProps(side Side) []*mapping.Property {
	var out []*mapping.Property
	for _, prop := range fr.f.Properties {
		if len(prop.Elements) > 0 {
			continue // lists are left to the next merge
		}
		if (side == Target && prop.ToTargetSide()) || (side == Source && prop.ToSourceSide()) {
			out = append(out, prop)
		}
	}
	return out
}

// flowBack writes, to the records of side that records were just created from (from, aligned
// with results), the values that flow back to them from what the other system assigned when
// it created their partners: the id a source assigns a record created from a target record
// reaches the target's a_id in the same run, and the base records it. A property the create
// sent (it flows from side and side's value was not empty) is not written back, so that a
// system that reformats what it stores does not send its format back.
//
// from's records are replaced by what their system holds after the write. For a record whose
// write failed it returns the keys of the properties that did not reach it (left out of the
// link's base, so that the next merge writes them) and why, by index.
func (fr *flowRun) flowBack(ctx context.Context, side Side, from []connector.Record, results []connector.Result, sVals []map[string][]byte) (map[int][]string, map[int]string, error) {
	props := fr.backProps(side)
	if len(props) == 0 {
		return nil, nil, nil
	}
	var idx []int
	var recs []connector.Record
	var keys [][]string
	for i, res := range results {
		if res.Err != nil || i >= len(from) {
			continue
		}
		var desired map[string]any
		var changed []string
		for _, prop := range props {
			var v, now any
			var err error
			if side == Target {
				// Created in the source: what flows to the target comes from the new record.
				if prop.ToSourceSide() && !mapping.Empty(prop.View(from[i].Data)) {
					continue
				}
				v, err = prop.TargetValue(res.Record.Data, fr.refs)
				now = prop.View(from[i].Data)
			} else {
				if prop.ToTargetSide() && !mapping.Empty(prop.SourceView(from[i].Data)) {
					continue
				}
				v, err = prop.SourceValue(res.Record.Data, fr.refs)
				now = prop.SourceView(from[i].Data)
			}
			if err != nil || sameValue(v, now) || (mapping.Empty(v) && mapping.Empty(now)) {
				// An error is the next merge's to report; an empty value ("" for null) was not
				// assigned.
				continue
			}
			if desired == nil {
				desired = mapping.Clone(from[i].Data).(map[string]any)
			}
			if side == Target {
				prop.ApplyTarget(desired, v)
			} else {
				prop.ApplySource(desired, v)
			}
			changed = append(changed, prop.Key())
		}
		if desired == nil {
			continue
		}
		if p := patch(from[i].Data, desired); len(p) > 0 {
			idx = append(idx, i)
			recs = append(recs, connector.Record{ID: from[i].ID, Data: p})
			keys = append(keys, changed)
		}
	}
	if len(recs) == 0 {
		return nil, nil, nil
	}
	conn, entity := fr.on(side)
	written, err := conn.Update(ctx, entity, recs)
	if err == nil {
		err = readBack(ctx, conn, entity, written)
	}
	if err != nil {
		return nil, nil, err
	}
	unsynced, why := map[int][]string{}, map[int]string{}
	for j, res := range written {
		i := idx[j]
		if res.Err != nil {
			unsynced[i] = keys[j]
			why[i] = fmt.Sprintf("writing %s %s: %v", entity, recs[j].ID, res.Err)
			fr.stats.Failed++
			fr.failedNow[Key{side, from[i].ID}] = true
			continue
		}
		from[i] = res.Record
		if side == Source {
			if i < len(sVals) {
				sVals[i] = nil // the source changed: its values in target form are computed again
			}
			fr.stats.UpdatedSource++
		} else {
			fr.stats.UpdatedTarget++
		}
	}
	return unsynced, why, nil
}

// createReferenced creates, for a record that refers to it, the partner of record id (of the
// source side when fromSource) in a "create: referenced" flow, and returns the new id.
func (fr *flowRun) createReferenced(ctx context.Context, id string, fromSource bool) (string, bool, error) {
	side := Source
	if !fromSource {
		side = Target
	}
	conn, entity := fr.on(side)
	got, err := conn.Get(ctx, entity, []string{id})
	if err != nil {
		return "", false, err
	}
	rec, ok := got[id]
	if !ok {
		return "", false, nil
	}
	if fromSource {
		if pass, err := fr.f.Filter(rec.Data); err != nil || !pass {
			return "", false, nil
		}
	}
	data, s, err := fr.build(side, rec)
	if err != nil {
		return "", false, err
	}
	if fr.r.Opts.DryRun {
		return fr.dryCreate(side, id, data, "referenced"), true, nil
	}
	ids, err := fr.createNow(ctx, side, []connector.Record{rec}, []map[string]any{data}, []map[string][]byte{s}, nil, false)
	if err != nil || ids[0] == "" {
		return "", false, err
	}
	return ids[0], true, nil
}

// recoverIntents finishes the creates of a run that was killed: a record created but not
// linked is found (by repeating the create with its idempotency key where the system honours
// keys, else by merge criteria or by its content among the records no link points at) and
// linked; an intent whose record was never created is dropped, and the record is created
// again by this run.
func (fr *flowRun) recoverIntents(ctx context.Context) error {
	intents, err := fr.r.State.Intents(ctx, fr.f.ID())
	if err != nil || len(intents) == 0 {
		return err
	}
	bySide := map[Side][]state.Intent{}
	for _, in := range intents {
		bySide[Side(in.Side)] = append(bySide[Side(in.Side)], in)
	}
	for side, ins := range bySide {
		if kc := fr.keyed(side); kc != nil {
			if ins, err = fr.recoverKeyed(ctx, side, kc, ins); err != nil {
				return err
			}
			if len(ins) == 0 {
				continue
			}
		}
		froms := make([]*connector.Record, len(ins))
		for i, in := range ins {
			from, ok, err := fr.intentSource(ctx, in)
			if err != nil {
				return err
			}
			if ok {
				froms[i] = &from
			}
		}
		candidates, err := fr.recoveryCandidates(ctx, side, ins, froms)
		if err != nil {
			return err
		}
		adopted := map[string]bool{}
		for i, in := range ins {
			if froms[i] == nil {
				// The record the create was made from is gone: under delete: propagate its
				// copy goes too, else the copy stays as an unlinked record.
				if err := fr.dropOrphan(ctx, in, candidates, adopted); err != nil {
					return err
				}
				continue
			}
			from := *froms[i]
			found := fr.findCreated(in, from, candidates, adopted)
			if err := fr.adopt(ctx, in, from, found, adopted); err != nil {
				return err
			}
		}
	}
	return nil
}

// recoveryCandidates returns the records of side that no link points at and that may be the
// copy an intent created: those with a merge key of an intent (of what it sent, or of the
// record it was made from: froms, nil where that is gone), or that hold the content an intent
// sent. findCreated and findCopy choose among them as they would among all unlinked records,
// but only these are held in memory. With a Finder the records with the keys are looked up,
// and the unlinked records are scanned for content only when the keys leave an intent
// without its one copy.
func (fr *flowRun) recoveryCandidates(ctx context.Context, side Side, ins []state.Intent, froms []*connector.Record) ([]connector.Record, error) {
	fromSide := other(side)
	keys := make([]map[string]bool, len(fr.f.Merge))
	for a := range keys {
		keys[a] = map[string]bool{}
	}
	datas := make([]map[string]any, len(ins))
	for i, in := range ins {
		json.Unmarshal(in.Data, &datas[i])
		for a, alt := range fr.f.Merge {
			if k, ok := mergeKey(datas[i], alt, side); ok {
				keys[a][k] = true
			}
			if froms[i] != nil {
				if k, ok := mergeKey(froms[i].Data, alt, fromSide); ok {
					keys[a][k] = true
				}
			}
		}
	}
	var out []connector.Record
	seen := map[string]bool{}
	if len(fr.f.Merge) > 0 && fr.finder(side) != nil {
		idx, err := fr.findByKeys(ctx, side, keys, func(Side, connector.Record) bool { return true })
		if err != nil {
			return nil, err
		}
		if idx != nil {
			for _, id := range idx.order {
				seen[id] = true
				out = append(out, idx.recs[id])
			}
			if fr.keysSettle(side, ins, datas, froms, idx) {
				return out, nil
			}
		}
	}
	err := fr.scanUnlinked(ctx, side, func(r connector.Record) {
		if seen[r.ID] {
			return
		}
		for a, alt := range fr.f.Merge {
			if k, ok := mergeKey(r.Data, alt, side); ok && keys[a][k] {
				out = append(out, r)
				return
			}
		}
		for _, d := range datas {
			if hasContent(d) && contains(r.Data, d, looselySame) {
				out = append(out, r)
				return
			}
		}
	})
	return out, err
}

// keysSettle reports whether merge keys alone find each intent's copy among idx's records:
// each intent has an alternative with exactly one record, and no two intents the same one.
// Then no search by content is needed.
func (fr *flowRun) keysSettle(side Side, ins []state.Intent, datas []map[string]any, froms []*connector.Record, idx *mergeIndex) bool {
	taken := map[string]bool{}
	for i := range ins {
		hit := ""
		for a, alt := range fr.f.Merge {
			rec, recSide := datas[i], side
			if froms[i] != nil {
				rec, recSide = froms[i].Data, other(side)
			}
			if k, ok := mergeKey(rec, alt, recSide); ok && len(idx.byKey[a][k]) == 1 {
				hit = idx.byKey[a][k][0]
				break
			}
		}
		if hit == "" || taken[hit] {
			return false
		}
		taken[hit] = true
	}
	return true
}

// keyed returns the connection of side when it creates the flow's records there with
// idempotency keys, else nil.
func (fr *flowRun) keyed(side Side) connector.KeyedCreator {
	conn, entity := fr.on(side)
	if kc := conn.Capabilities().KeyedCreator; kc != nil && kc.Idempotent(entity) {
		return kc
	}
	return nil
}

// idempotencyKey is the key of the create an intent records: a digest of what identifies the
// intent, all of it kept in the link state, so that the create repeated after a crash (or a
// lost response) sends the same key. The intent id alone would do within one state file; the
// flow, side, origin and creation time keep keys apart across state files that share a system.
func idempotencyKey(in state.Intent) string {
	h := sha256.New()
	for _, part := range []string{in.Flow, in.Side, in.FromID, strconv.FormatInt(in.ID, 10), strconv.FormatInt(in.Created.UnixNano(), 10)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// recoverKeyed finishes the interrupted creates of a side whose system honours idempotency
// keys: each create is repeated with its intent's key, and the system answers with the record
// it created the first time (or creates it now, when the first attempt never reached it),
// which is adopted. Nothing is searched, so a copy that was edited or reformatted since is
// still the one adopted. It returns the intents whose origin is gone, for dropOrphan: creating
// again the copy of a deleted record is not wanted.
func (fr *flowRun) recoverKeyed(ctx context.Context, side Side, kc connector.KeyedCreator, ins []state.Intent) ([]state.Intent, error) {
	conn, entity := fr.on(side)
	var orphans, todo []state.Intent
	var froms []connector.Record
	var datas []map[string]any
	var keys []string
	for _, in := range ins {
		from, ok, err := fr.intentSource(ctx, in)
		if err != nil {
			return nil, err
		}
		if !ok {
			orphans = append(orphans, in)
			continue
		}
		var data map[string]any
		if err := json.Unmarshal(in.Data, &data); err != nil {
			return nil, fmt.Errorf("intent %d: %w", in.ID, err)
		}
		todo = append(todo, in)
		froms = append(froms, from)
		datas = append(datas, data)
		keys = append(keys, idempotencyKey(in))
	}
	if len(todo) == 0 {
		return orphans, nil
	}
	results, err := kc.CreateKeyed(ctx, entity, datas, keys)
	if err == nil {
		err = readBack(ctx, conn, entity, results)
	}
	if err != nil {
		return nil, err // the intents stay for the next run
	}
	adopted := map[string]bool{}
	for i, res := range results {
		in := todo[i]
		if res.Err != nil {
			// The system refuses the create: the record it was made from is a dead letter,
			// retried (and created under a new intent) by this run's pass, which counts it if
			// it fails again, and by the next runs.
			reason := fmt.Sprintf("creating %s: %v", entity, res.Err)
			err := fr.commit(ctx, func(tx state.Tx) error {
				if err := tx.DeleteIntent(in.ID); err != nil {
					return err
				}
				return tx.PutDeadLetter(fr.f.ID(), string(other(side)), in.FromID, reason)
			})
			if err != nil {
				return nil, err
			}
			continue
		}
		found := res.Record
		if err := fr.adopt(ctx, in, froms[i], &found, adopted); err != nil {
			return nil, err
		}
	}
	return orphans, nil
}

// dropOrphan handles an intent whose origin was deleted before the run that created its copy
// could link it.
func (fr *flowRun) dropOrphan(ctx context.Context, in state.Intent, candidates []connector.Record, adopted map[string]bool) error {
	var data map[string]any
	json.Unmarshal(in.Data, &data)
	if fr.f.Delete == mapping.DeletePropagate && fr.writes(Side(in.Side)) {
		conn, entity := fr.on(Side(in.Side))
		if match := fr.findCopy(in, data, candidates, adopted); match >= 0 {
			c := candidates[match]
			adopted[c.ID] = true
			if err := deleteOne(ctx, conn, entity, c.ID); err != nil {
				return err
			}
			fr.stats.Deleted++
		}
		return fr.commit(ctx, func(tx state.Tx) error { return tx.DeleteIntent(in.ID) })
	}
	// Otherwise the copy is a record like any other: it is looked at in this run's pass and
	// linked or created anew per the flow's policies, even if incremental reads skip it.
	if match := fr.findCopy(in, data, candidates, adopted); match >= 0 {
		c := candidates[match]
		adopted[c.ID] = true
		return fr.commit(ctx, func(tx state.Tx) error {
			if err := tx.DeleteIntent(in.ID); err != nil {
				return err
			}
			return tx.PutWaiting(fr.f.ID(), string(Side(in.Side)), c.ID, "created from a record deleted before the copy was linked")
		})
	}
	return fr.commit(ctx, func(tx state.Tx) error { return tx.DeleteIntent(in.ID) })
}

// findCopy finds, among the unlinked candidates, the record an intent created: by the merge
// keys the create sent (the copy may have been edited since), else by its content. It returns
// the candidate's index, or -1.
func (fr *flowRun) findCopy(in state.Intent, data map[string]any, candidates []connector.Record, adopted map[string]bool) int {
	for _, alt := range fr.f.Merge {
		key, ok := mergeKey(data, alt, Side(in.Side))
		if !ok {
			continue
		}
		var hits []int
		for i, c := range candidates {
			if k, ok := mergeKey(c.Data, alt, Side(in.Side)); ok && k == key && !adopted[c.ID] {
				hits = append(hits, i)
			}
		}
		if len(hits) == 1 {
			return hits[0]
		}
	}
	if !hasContent(data) {
		return -1 // an empty record would match any
	}
	for _, equal := range []func(a, b any) bool{sameValue, looselySame} {
		for i := range candidates {
			if !adopted[candidates[i].ID] && contains(candidates[i].Data, data, equal) {
				return i
			}
		}
	}
	return -1
}

// intentSource reads the record an intent's create was made from.
func (fr *flowRun) intentSource(ctx context.Context, in state.Intent) (connector.Record, bool, error) {
	conn, entity := fr.on(other(Side(in.Side)))
	got, err := conn.Get(ctx, entity, []string{in.FromID})
	if err != nil {
		return connector.Record{}, false, err
	}
	rec, ok := got[in.FromID]
	return rec, ok, nil
}

// findCreated finds the record an intent created among the unlinked candidates: by the
// first merge alternative that gives exactly one, else by the content the create sent: exactly,
// then allowing for the reformatting systems commonly do (case, number notation). Merge
// criteria are the reliable way; content is the fallback docs/semantics.md §3.7 allows.
func (fr *flowRun) findCreated(in state.Intent, from connector.Record, candidates []connector.Record, adopted map[string]bool) *connector.Record {
	fromSide := other(Side(in.Side))
	for _, alt := range fr.f.Merge {
		key, ok := mergeKey(from.Data, alt, fromSide)
		if !ok {
			continue
		}
		var hits []int
		for i := range candidates {
			if k, ok := mergeKey(candidates[i].Data, alt, Side(in.Side)); ok && k == key && !adopted[candidates[i].ID] {
				hits = append(hits, i)
			}
		}
		if len(hits) == 1 {
			return &candidates[hits[0]]
		}
	}
	var data map[string]any
	json.Unmarshal(in.Data, &data)
	if !hasContent(data) {
		return nil // an empty record would match any
	}
	for _, equal := range []func(a, b any) bool{sameValue, looselySame} {
		for i := range candidates {
			if !adopted[candidates[i].ID] && contains(candidates[i].Data, data, equal) {
				return &candidates[i]
			}
		}
	}
	return nil
}

// hasContent reports whether a record holds a value that is not empty: only such a record
// can be recognised by its content (an empty one, or one of nulls, is contained in any).
func hasContent(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			if hasContent(e) {
				return true
			}
		}
		return false
	case []any:
		for _, e := range x {
			if hasContent(e) {
				return true
			}
		}
		return false
	}
	return !mapping.Empty(v)
}

func sameValue(a, b any) bool {
	return string(mapping.Canonical(a)) == string(mapping.Canonical(b))
}

// looselySame compares as systems commonly reformat what they store: text without regard to
// case and surrounding space, and numbers by value whatever their decimal notation (10 and
// "10.00"). Values compare by type otherwise: a number never equals text that is not a plain
// decimal ("007", " 7", "7e0" are codes, not 7), a boolean never equals a number.
func looselySame(a, b any) bool {
	if sameValue(a, b) {
		return true
	}
	as, aok := a.(string)
	bs, bok := b.(string)
	if aok && bok && strings.EqualFold(strings.TrimSpace(as), strings.TrimSpace(bs)) {
		return true
	}
	if !numberLike(a) || !numberLike(b) {
		return false
	}
	af, aerr := mapping.Coerce(a, "number")
	bf, berr := mapping.Coerce(b, "number")
	return aerr == nil && berr == nil && af != nil && sameValue(af, bf)
}

// plainDecimal is the text of a number as a system that formats numbers writes it: no sign
// but a minus, no leading zero, no exponent, no space.
var plainDecimal = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?$`)

// numberLike reports whether v is a number, or text that is a plain decimal.
func numberLike(v any) bool {
	switch x := v.(type) {
	case string:
		return plainDecimal.MatchString(x)
	case bool, nil, map[string]any, []any:
		return false
	}
	return true
}

// adopt links the record found for an intent, or drops the intent when none was created.
func (fr *flowRun) adopt(ctx context.Context, in state.Intent, from connector.Record, found *connector.Record, adopted map[string]bool) error {
	fromSide := other(Side(in.Side))
	return fr.commit(ctx, func(tx state.Tx) error {
		if err := tx.DeleteIntent(in.ID); err != nil {
			return err
		}
		if found == nil || from.ID == "" {
			return nil // nothing was created, or what it was created from is gone
		}
		src, tgt := from, *found
		if fromSide == Target {
			src, tgt = *found, from
		}
		// The base is what the create sent: either record may have been edited since, and the
		// merge in this run's pass (the waiting entry makes it read the record) then sees
		// those edits as changes.
		// MergedIn stays 0: the pass merges the pair in this run.
		l := &state.Link{Flow: fr.f.ID(), SourceID: src.ID, TargetID: tgt.ID, Base: fr.intentBase(in),
			Updated: fr.r.Opts.Now().UTC(), LinkedIn: fr.runID}
		adopted[found.ID] = true
		fr.stats.Recovered++
		if err := tx.PutLink(l); err != nil {
			return err
		}
		return tx.PutWaiting(fr.f.ID(), string(fromSide), from.ID, "adopted after an interrupted run; merged again")
	})
}

// intentBase is the base of a link to a record created from an intent's data: the values the
// create sent, in target form.
func (fr *flowRun) intentBase(in state.Intent) map[string]state.Base {
	var data map[string]any
	json.Unmarshal(in.Data, &data)
	base := map[string]state.Base{}
	for _, prop := range fr.f.Properties {
		var v any
		if Side(in.Side) == Target {
			v = prop.View(data)
		} else if prop.ToTargetSide() {
			var err error
			if v, err = prop.TargetValue(data, fr.refs); err != nil {
				continue
			}
		} else {
			continue // a value that only flows back is not in what was sent
		}
		c := mapping.Canonical(v)
		base[prop.Key()] = state.Base{S: c, T: c}
	}
	return base
}

// contains reports whether rec holds every value of want (recursively: objects by key, lists
// element by element), so that a created record is recognised although the system added
// fields (an id, defaults) to it.
func contains(rec, want any, equal func(a, b any) bool) bool {
	switch w := want.(type) {
	case map[string]any:
		r, ok := rec.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !contains(r[k], v, equal) {
				return false
			}
		}
		return true
	case []any:
		r, ok := rec.([]any)
		if !ok || len(r) != len(w) {
			return false
		}
		for i := range w {
			if !contains(r[i], w[i], equal) {
				return false
			}
		}
		return true
	}
	return equal(rec, want)
}
