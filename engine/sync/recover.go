package sync

// Recovery of interrupted creates: an intent is committed before each create (create.go); a
// run killed between the create and its link leaves the intent, and the next run finds the
// record it made (by its idempotency key, its merge keys or its content) and links it, or
// creates it when it was never made, instead of creating a copy.

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
