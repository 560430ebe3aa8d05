package sync_test

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// snapshot reads both systems and the link state.
func (w *modelWorld) snapshot() *modelSnap {
	ctx := context.Background()
	s := &modelSnap{recs: map[modelKey]connector.Record{}, order: map[string][]string{},
		links: map[string]string{}, rev: map[string]string{}}
	for _, x := range []struct {
		side, entity string
		c            connector.Conn
	}{{state.Source, "Item", w.srcRd}, {state.Target, "Thing", w.tgtRd}} {
		err := x.c.Scan(ctx, x.entity, "", func(recs []connector.Record) error {
			for _, r := range recs {
				s.recs[modelKey{x.side, r.ID}] = r
			}
			return nil
		})
		if err != nil {
			w.t.Fatal(err)
		}
		s.order[x.side] = w.ids(x.side)
	}
	err := w.store.ScanLinks(ctx, w.flow.ID(), func(links []*state.Link) error {
		for _, l := range links {
			if prev, dup := s.rev[l.TargetID]; dup {
				w.t.Errorf("seed %d: target %s is linked to source %s and to source %s", w.seed, l.TargetID, prev, l.SourceID)
			}
			s.links[l.SourceID] = l.TargetID
			s.rev[l.TargetID] = l.SourceID
		}
		return nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
	if s.intents, err = w.store.Intents(ctx, w.flow.ID()); err != nil {
		w.t.Fatal(err)
	}
	return s
}

// vals is a record's properties in target form, canonical: what the sides must agree on.
func (w *modelWorld) vals(side string, r connector.Record) []string {
	out := make([]string, len(w.flow.Properties))
	for i, p := range w.flow.Properties {
		if side == state.Source {
			v, err := p.TargetValue(r.Data, nil)
			if err != nil {
				w.t.Errorf("seed %d: source %s, %s: %v", w.seed, r.ID, p.Key(), err)
			}
			out[i] = string(mapping.Canonical(v))
		} else {
			out[i] = string(mapping.Canonical(p.View(r.Data)))
		}
		if len(p.Elements) > 0 {
			out[i] = modelSortedList(out[i])
		}
	}
	return out
}

// modelSortedList is a list's canonical form with its elements sorted: the source holds its
// parts in the order of their rows, the store in its own order; the sides agree on the parts,
// not on their order.
func modelSortedList(canon string) string {
	var list []any
	if err := json.Unmarshal([]byte(canon), &list); err != nil {
		return canon
	}
	sort.Slice(list, func(i, j int) bool {
		return string(mapping.Canonical(list[i])) < string(mapping.Canonical(list[j]))
	})
	if list == nil {
		list = []any{}
	}
	return string(mapping.Canonical(list))
}

// modelParts reads a list of parts in target form: label → quantity (canonical).
func modelParts(canon string) map[string]string {
	var list []map[string]any
	json.Unmarshal([]byte(canon), &list)
	out := map[string]string{}
	for _, m := range list {
		out[mapping.IDString(m["id"])] = string(mapping.Canonical(m["qty"]))
	}
	return out
}

// modelPartsList is the sorted canonical list of parts.
func modelPartsList(parts map[string]string) string {
	list := []any{}
	for label, qty := range parts {
		var q any
		json.Unmarshal([]byte(qty), &q)
		list = append(list, map[string]any{"id": label, "qty": q})
	}
	return modelSortedList(string(mapping.Canonical(list)))
}

// modelListThreeWay is the merge of the parts, part by part: a part added on one side is
// added; removed on one side and unchanged on the other, removed; changed on one side only,
// that side's; changed on both (a removal and a change, or two quantities), the newer record's
// (ties and unknown stamps to the source).
func modelListThreeWay(ps, pt, bs, bt string, preS, preT connector.Record) (string, string) {
	S, T, BS, BT := modelParts(ps), modelParts(pt), modelParts(bs), modelParts(bt)
	sourceWins := modelSourceNewer(modelStampOf(state.Source, preS), modelStampOf(state.Target, preT))
	out := map[string]string{}
	labels := map[string]bool{}
	for _, m := range []map[string]string{S, T, BS, BT} {
		for l := range m {
			labels[l] = true
		}
	}
	why := "parts merged part by part"
	if ps != bs && pt != bt {
		why = "parts changed on both sides, merged part by part"
		if len(S) != len(BS) && len(T) != len(BT) {
			why = "parts changed on both sides, both lengths changed, merged part by part"
		}
	}
	conflict := ""
	for l := range labels {
		s, inS := S[l]
		t, inT := T[l]
		bs, inBS := BS[l]
		bt, inBT := BT[l]
		sCh := inS != inBS || s != bs
		tCh := inT != inBT || t != bt
		take := func(v string, in bool) {
			if in {
				out[l] = v
			}
		}
		switch {
		case !tCh:
			take(s, inS)
		case !sCh:
			take(t, inT)
		case inS == inT && s == t:
			take(s, inS)
		case sourceWins:
			take(s, inS)
			conflict = ", a conflict to the source"
		default:
			take(t, inT)
			conflict = ", a conflict to the target"
		}
	}
	return modelPartsList(out), why + conflict
}

// modelListEither reports whether each part of got is as one side had it before the run
// (present with its quantity, or absent): after a kill the base the engine holds may be newer
// than the model's, so either side may win each part, but no part may take a third state.
func modelListEither(got, ps, pt string) bool {
	G, S, T := modelParts(got), modelParts(ps), modelParts(pt)
	labels := map[string]bool{}
	for _, m := range []map[string]string{G, S, T} {
		for l := range m {
			labels[l] = true
		}
	}
	for l := range labels {
		g, inG := G[l]
		s, inS := S[l]
		t, inT := T[l]
		if !(inG == inS && g == s) && !(inG == inT && g == t) {
			return false
		}
	}
	return true
}

// intentVals is the record an intent creates, in target form, as vals gives it.
func (w *modelWorld) intentVals(in state.Intent) ([]string, map[string]any) {
	var data map[string]any
	if err := json.Unmarshal(in.Data, &data); err != nil {
		w.t.Fatalf("seed %d: intent %d: %v", w.seed, in.ID, err)
	}
	return w.vals(in.Side, connector.Record{Data: data}), data
}

func modelEmpty(canon string) bool { return canon == "null" || canon == `""` || canon == "[]" }

func modelStampOf(side string, r connector.Record) string {
	_, col := modelTable(side)
	return mapping.IDString(r.Data[col])
}

// sourceNewer is the newest rule: the source wins unless the target's stamp is later; a
// record without a stamp loses nothing to the source (ties and unknowns go to the source).
func modelSourceNewer(s, t string) bool {
	if s == "" || t == "" {
		return true
	}
	ts, err1 := time.Parse(time.RFC3339Nano, s)
	tt, err2 := time.Parse(time.RFC3339Nano, t)
	if err1 != nil || err2 != nil {
		return true // stamps that cannot be compared ("N/A") are unknowns
	}
	return !ts.Before(tt)
}

// checkRun checks a successful run: no intent left, linked pairs agree, and each property of
// each linked pair holds what the three-way merge must give from the values before the run.
func (w *modelWorld) checkRun(pre *modelSnap) {
	post := w.snapshot()
	if len(post.intents) > 0 {
		w.t.Errorf("seed %d: %d intents are left after a run that was not killed", w.seed, len(post.intents))
	}
	// Records created before a kill and not linked yet: each intent's record is the unlinked
	// record on its side with the intent's merge key (codes are unique on each side), when
	// the engine created it (else the user made a record with that code). Its
	// values as created are the intent's; the record it was created from had those values
	// then. So the intent is the pair's base: recovery must adopt the record (by merge key,
	// or by content when the user did not edit it) and merge it three-way from there.
	type orphanInfo struct {
		from string
		base []string
	}
	orphans := map[modelKey]orphanInfo{} // the created record → its intent
	froms := map[modelKey]bool{}         // the records intents were creating copies of
	for _, in := range pre.intents {
		iv, data := w.intentVals(in)
		code := string(mapping.Canonical(data[modelCol(in.Side, 0)]))
		for _, id := range pre.order[in.Side] {
			k := modelKey{in.Side, id}
			_, linked := pre.links[id]
			if in.Side == state.Target {
				_, linked = pre.rev[id]
			}
			if _, taken := orphans[k]; !linked && !taken && string(mapping.Canonical(pre.recs[k].Data[modelCol(in.Side, 0)])) == code {
				orphans[k] = orphanInfo{in.FromID, iv}
				froms[modelKey{modelOther(in.Side), in.FromID}] = true
				break
			}
		}
	}
	newBase := map[[2]string]modelBase{}
	srcIDs := make([]string, 0, len(post.links))
	for s := range post.links {
		srcIDs = append(srcIDs, s)
	}
	sort.Strings(srcIDs)
	for _, s := range srcIDs {
		t := post.links[s]
		S, okS := post.recs[modelKey{state.Source, s}]
		T, okT := post.recs[modelKey{state.Target, t}]
		if !okS || !okT {
			continue // a link to a deleted record: checked at the end, when it must be gone
		}
		vs, vt := w.vals(state.Source, S), w.vals(state.Target, T)
		newBase[[2]string{s, t}] = modelBase{vs, vt}
		if w.shape != nil && w.shape.unread(w, pre, s, t, vs, vt) {
			// A pair the run's listing hid from it (reordered while paging): left as it was,
			// with its base, for the next run to sync.
			if b, ok := w.base[[2]string{s, t}]; ok {
				newBase[[2]string{s, t}] = b
			} else {
				delete(newBase, [2]string{s, t})
			}
			continue
		}
		preS, hadS := pre.recs[modelKey{state.Source, s}]
		preT, hadT := pre.recs[modelKey{state.Target, t}]
		var ps, pt []string
		if hadS {
			ps = w.vals(state.Source, preS)
		}
		if hadT {
			pt = w.vals(state.Target, preT)
		}
		base, wasPair := w.base[[2]string{s, t}]
		linkedBefore := pre.links[s] == t
		// A pair of a record and the copy made of it before a kill: its base is the intent.
		adopted, copied, from := false, false, ""
		if o, ok := orphans[modelKey{state.Target, t}]; ok && o.from == s && !linkedBefore {
			adopted, copied, from, base = true, w.made[modelKey{state.Target, t}], state.Source, modelBase{o.base, o.base}
		}
		if o, ok := orphans[modelKey{state.Source, s}]; ok && o.from == t && !linkedBefore {
			adopted, copied, from, base = true, w.made[modelKey{state.Source, s}], state.Target, modelBase{o.base, o.base}
		}
		_, orphanT := orphans[modelKey{state.Target, t}]
		_, orphanS := orphans[modelKey{state.Source, s}]
		involved := orphanT || orphanS || froms[modelKey{state.Source, s}] || froms[modelKey{state.Target, t}]
		for i, p := range w.flow.Properties {
			threeWay := modelThreeWay
			if len(p.Elements) > 0 {
				threeWay = modelListThreeWay
			}
			if vs[i] != vt[i] {
				w.t.Errorf("seed %d: source %s and target %s disagree on %s: %s and %s", w.seed, s, t, p.Key(), vs[i], vt[i])
				continue
			}
			if w.assigned(i) {
				// An id the creating system assigned (the flow-back variant): that the pair
				// agrees on it is the whole expectation, in the run that created the record too.
				if !hadS || !hadT {
					w.cover("property checked: an assigned id flowed back in the run that created the record")
				}
				continue
			}
			var want []string
			var why string
			switch {
			case !hadS && !hadT:
				w.t.Errorf("seed %d: source %s and target %s were both created by the run and linked", w.seed, s, t)
				continue
			case !hadS:
				want, why = []string{pt[i]}, "source created from the target"
			case !hadT:
				want, why = []string{ps[i]}, "target created from the source"
			case ps[i] == pt[i]:
				want, why = []string{ps[i]}, "equal before the run"
			case adopted && copied:
				v, w2 := threeWay(ps[i], pt[i], base.s[i], base.t[i], preS, preT)
				want, why = []string{v}, w2+", a copy made before a kill of the "+from+", adopted"
			case adopted:
				// The user made a record with the code of one the engine was creating: the engine
				// cannot tell it from its copy edited by the user. Either a three-way merge from
				// the intent or a first merge is right.
				v1, w1 := threeWay(ps[i], pt[i], base.s[i], base.t[i], preS, preT)
				v2, w2 := modelFirstMerge(ps[i], pt[i], preS, preT)
				want, why = []string{v1, v2}, "a record with the code of a copy being made before a kill of the "+from+": "+w1+" / "+w2
			case wasPair && !w.killedSince:
				v, w2 := threeWay(ps[i], pt[i], base.s[i], base.t[i], preS, preT)
				want, why = []string{v}, w2
			case !linkedBefore && !wasPair && !involved:
				v, w2 := modelFirstMerge(ps[i], pt[i], preS, preT)
				want, why = []string{v}, w2
			default:
				// A kill since the last successful run may have moved the engine's base: either
				// side's value may win, but no other value.
				want, why = []string{ps[i], pt[i]}, "after a kill"
			}
			w.cover("property checked: " + why)
			ok := false
			for _, x := range want {
				ok = ok || x == vs[i]
			}
			if len(p.Elements) > 0 && why == "after a kill" {
				ok = modelListEither(vs[i], ps[i], pt[i])
			}
			if len(p.Elements) > 0 && len(modelParts(vs[i])) != strings.Count(vs[i], `"id":`) {
				w.t.Errorf("seed %d: source %s / target %s have a part twice: %s", w.seed, s, t, vs[i])
			}
			if !ok {
				was := "(new)"
				if wasPair || adopted {
					was = base.s[i]
				}
				w.t.Errorf("seed %d: lost update: source %s / target %s, %s = %s after the run; want %s (%s; before the run: source %s, target %s; base %s)",
					w.seed, s, t, p.Key(), vs[i], strings.Join(want, " or "), why, modelOr(ps, i), modelOr(pt, i), was)
			}
		}
	}
	w.base = newBase
	w.killedSince = false
}

// modelThreeWay is the three-way merge of one property: a change on one side wins; changes on
// both go to the newer record (ties and unknown stamps to the source).
func modelThreeWay(ps, pt, bs, bt string, preS, preT connector.Record) (string, string) {
	sCh, tCh := ps != bs, pt != bt
	switch {
	case sCh && !tCh:
		return ps, "changed in the source only"
	case tCh && !sCh:
		return pt, "changed in the target only"
	case modelSourceNewer(modelStampOf(state.Source, preS), modelStampOf(state.Target, preT)):
		return ps, "changed on both sides, the source is newer"
	}
	return pt, "changed on both sides, the target is newer"
}

// modelFirstMerge is the merge of one property of a pair linked by merge criteria: a non-empty
// value beats an empty one, then the newer record wins.
func modelFirstMerge(ps, pt string, preS, preT connector.Record) (string, string) {
	switch {
	case modelEmpty(ps) != modelEmpty(pt) && modelEmpty(pt):
		return ps, "first merge, the target's is empty"
	case modelEmpty(ps) != modelEmpty(pt):
		return pt, "first merge, the source's is empty"
	case modelSourceNewer(modelStampOf(state.Source, preS), modelStampOf(state.Target, preT)):
		return ps, "first merge, the source is newer"
	}
	return pt, "first merge, the target is newer"
}

func modelOr(v []string, i int) string {
	if v == nil {
		return "(none)"
	}
	return v[i]
}

// modelContains reports whether rec holds every value of want (the engine's own test for a
// record created from an intent; values compared in canonical form).
func modelContains(rec, want map[string]any) bool {
	for k, v := range want {
		if string(mapping.Canonical(rec[k])) != string(mapping.Canonical(v)) {
			return false
		}
	}
	return true
}

// checkFinal checks the invariants after the quiet runs.
func (w *modelWorld) checkFinal() {
	ctx := context.Background()
	s := w.snapshot()
	for src, tgt := range s.links {
		_, okS := s.recs[modelKey{state.Source, src}]
		_, okT := s.recs[modelKey{state.Target, tgt}]
		if !okS || !okT {
			w.t.Errorf("seed %d: link source %s (exists: %v) → target %s (exists: %v) points at a deleted record", w.seed, src, okS, tgt, okT)
		}
	}
	for _, side := range []string{state.Source, state.Target} {
		codes := map[string]string{}
		for _, id := range s.order[side] {
			linked := false
			if side == state.Source {
				_, linked = s.links[id]
			} else {
				_, linked = s.rev[id]
			}
			if !linked {
				w.t.Errorf("seed %d: %s %s is not linked after the quiet runs", w.seed, side, id)
			}
			r := s.recs[modelKey{side, id}]
			code := mapping.IDString(r.Data[modelCol(side, 0)])
			if was, ok := w.gone[code]; ok {
				w.t.Errorf("seed %d: %s %s has code %s of %s, which the user deleted (delete: propagate): the delete was lost", w.seed, side, id, code, was)
			}
			if prev, dup := codes[code]; dup {
				w.t.Errorf("seed %d: %s %s and %s have the same code %s: a duplicate", w.seed, side, prev, id, code)
			}
			codes[code] = id
		}
	}
	if len(s.intents) > 0 {
		w.t.Errorf("seed %d: %d intents pending after the quiet runs", w.seed, len(s.intents))
	}
	if dead, err := w.store.DeadLetters(ctx, w.flow.ID()); err != nil || len(dead) > 0 {
		w.t.Errorf("seed %d: dead letters after the quiet runs: %v %v", w.seed, dead, err)
	}
	if waiting, err := w.store.Waiting(ctx, w.flow.ID()); err != nil || len(waiting) > 0 {
		w.t.Errorf("seed %d: waiting records after the quiet runs: %v %v", w.seed, waiting, err)
	}
}
