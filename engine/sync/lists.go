package sync

// Lists (`lines` → `lineItems`) are merged element by element. Each element is identified on
// each side: by its id where the system gives one (Capabilities.ListIdentifier; else an `id`
// property in the element schema), by the target's id when the mapping carries it in an element
// property (an external id), else by its value or its place among the elements the base holds. The
// base records, for every element, which source element is synced with which target element
// (state.Elements), so that after edits on both sides each current element is traced to its
// base element on its side, and through the base to its partner:
//
//   - an element changed on one side takes that side's values, property by property; the same
//     property of the same element changed on both sides is a conflict for the flow's policy;
//   - an element added on either side is added to the other (added on both: both are kept);
//   - an element removed on one side is removed from the other, unless the other side changed
//     it: then the policy decides between the removal and the change;
//   - fields of an element the mapping does not set stay with the element they belong to (a
//     source row keeps its id, a target element its own fields), however the list moves.
//
// Without ids an element is found by its value (an element equal to a base element is that
// element), then by its place among the elements left (base elements in order, then new ones
// appended): a removal and an edit of elements without ids cannot always be told apart from
// edits of the elements that follow, a limit of the information the system gives.

import (
	"encoding/json"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// listKeyOf returns the element property that identifies the elements of the list property
// at path of entity ent: the one the connection names (li, nil when it names none), else an
// `id` property in the element schema, else "".
func listKeyOf(li connector.ListIdentifier, ent *mapping.Entity, path string) string {
	id := ""
	if li != nil && ent != nil {
		id = li.ListID(ent.Name(), path)
	}
	if id == "" && ent != nil && ent.Schema != nil && ent.Schema.Root != nil {
		p := ent.Schema.Root
		for _, seg := range strings.Split(path, ".") {
			if p != nil && p.Items != nil && p.Properties == nil {
				p = p.Items
			}
			if p != nil {
				p = p.Properties[seg]
			}
		}
		if p != nil && p.Items != nil && p.Items.Properties["id"] != nil {
			id = "id"
		}
	}
	return id
}

// listKey returns the element property that identifies the elements of a list property on
// one side, "" when they have none.
func (pl *planner) listKey(side Side, prop *mapping.Property) string {
	if side == Source {
		return pl.listKeys[prop.Key()].src
	}
	return pl.listKeys[prop.Key()].tgt
}

// listSide is a list as one side holds it: the elements as stored, their ids, and their
// values in target form (canonical).
type listSide struct {
	raw   []any
	ids   []string
	vals  []any
	canon []string
}

func (pl *planner) listOf(side Side, prop *mapping.Property, rec map[string]any, vals []any) (listSide, bool) {
	path := prop.Target
	if side == Source {
		path = prop.Source
	}
	raw, _ := mapping.Get(rec, path).([]any)
	if len(raw) != len(vals) {
		return listSide{}, false
	}
	ls := listSide{raw: raw, vals: vals, ids: make([]string, len(raw)), canon: make([]string, len(raw))}
	key := pl.listKey(side, prop)
	for i, e := range raw {
		if m, ok := e.(map[string]any); ok && key != "" {
			ls.ids[i] = mapping.IDString(m[key])
		}
		ls.canon[i] = string(mapping.Canonical(vals[i]))
	}
	return ls, true
}

// mappedKey returns the target path of the element property that carries the target's element
// id (an external id: `{source: line_ref, target: id}`), "" when none does. Values in target
// form then identify elements whichever side they come from, and whatever the base records.
func (pl *planner) mappedKey(prop *mapping.Property) string {
	key := pl.listKey(Target, prop)
	if key == "" {
		return ""
	}
	for _, ep := range prop.Elements {
		if ep.ToTargetSide() && ep.Config.Target.Value == key {
			return key
		}
	}
	return ""
}

// keysOf returns the values at path of target-form elements, as text ("" for none).
func keysOf(vals []any, path string) []string {
	out := make([]string, len(vals))
	if path == "" {
		return out
	}
	for i, v := range vals {
		if m, ok := v.(map[string]any); ok {
			out[i] = mapping.IDString(mapping.Get(m, path))
		}
	}
	return out
}

// identify traces the current elements of one side to the base elements of that side: by id,
// by the external id they carry (keys), then by an equal value, then by place among the
// elements left. It returns, per current element, the index of its base element or -1 (added).
func identify(curIDs, curKeys, curVals, baseIDs, baseKeys, baseVals []string) []int {
	out := make([]int, len(curIDs))
	taken := make([]bool, len(baseIDs))
	byID := map[string]int{}
	for j, id := range baseIDs {
		if id != "" {
			if _, dup := byID[id]; !dup {
				byID[id] = j
			}
		}
	}
	for i, id := range curIDs {
		out[i] = -1
		if j, ok := byID[id]; ok && id != "" && !taken[j] {
			out[i], taken[j] = j, true
		}
	}
	// Elements with ids, or external ids, that differ are different elements.
	can := func(i, j int) bool {
		return !taken[j] && (curIDs[i] == "" || baseIDs[j] == "") && (curKeys[i] == "" || baseKeys[j] == "" || curKeys[i] == baseKeys[j])
	}
	for i := range curIDs {
		if out[i] >= 0 || curKeys[i] == "" {
			continue
		}
		// The external id names the element even where the system's id changed (a row
		// deleted and written again).
		for j := range baseIDs {
			if !taken[j] && curKeys[i] == baseKeys[j] {
				out[i], taken[j] = j, true
				break
			}
		}
	}
	for i := range curIDs {
		if out[i] >= 0 {
			continue
		}
		for j := range baseIDs {
			if can(i, j) && curVals[i] == baseVals[j] {
				out[i], taken[j] = j, true
				break
			}
		}
	}
	j := 0
	for i := range curIDs {
		if out[i] >= 0 {
			continue
		}
		for j < len(baseIDs) && !can(i, j) {
			j++
		}
		if j < len(baseIDs) {
			out[i], taken[j] = j, true
			j++
		}
	}
	return out
}

// listMerge is the outcome of merging a list: the merged elements in target form, and for
// each the element of each side it continues (an index of that side's current list, -1 for
// an element new to that side).
type listMerge struct {
	merged         []any
	srcOf, tgtOf   []int
	conflicts      int
	srcIDs, tgtIDs []string // the ids of the current elements, before any write
}

// mergeElements merges a list that changed on one side or both (see the top of this file).
// ok is false when the list cannot be traced (its values do not line up with the elements).
func (pl *planner) mergeElements(srcRec, tgtRec connector.Record, prop *mapping.Property, base state.Base, S, T any, srcChanged, tgtChanged bool) (*listMerge, bool) {
	var baseS, baseT []any
	if json.Unmarshal(base.S, &baseS) != nil || json.Unmarshal(base.T, &baseT) != nil {
		return nil, false
	}
	sv, _ := S.([]any)
	tv, _ := T.([]any)
	src, ok1 := pl.listOf(Source, prop, srcRec.Data, sv)
	tgt, ok2 := pl.listOf(Target, prop, tgtRec.Data, tv)
	if !ok1 || !ok2 {
		return nil, false
	}
	// The base elements, each with its place in base S and base T (-1 where it has none).
	e := base.E
	if e == nil || len(e.Pairs) != len(baseS) || (len(e.Source) > 0 && len(e.Source) != len(baseS)) || (len(e.Target) > 0 && len(e.Target) != len(baseT)) {
		// A base written before elements were identified: paired in order, no ids.
		e = &state.Elements{Pairs: make([]int, len(baseS))}
		for i := range e.Pairs {
			e.Pairs[i] = -1
			if i < len(baseT) {
				e.Pairs[i] = i
			}
		}
	}
	baseSIDs, baseTIDs := e.Source, e.Target
	if len(baseSIDs) == 0 {
		baseSIDs = make([]string, len(baseS))
	}
	if len(baseTIDs) == 0 {
		baseTIDs = make([]string, len(baseT))
	}
	canon := func(l []any) []string {
		out := make([]string, len(l))
		for i, v := range l {
			out[i] = string(mapping.Canonical(v))
		}
		return out
	}
	baseSC, baseTC := canon(baseS), canon(baseT)
	type entry struct{ si, ti, sc, tc int }
	var entries []*entry
	bySI := make([]*entry, len(baseS))
	byTI := make([]*entry, len(baseT))
	for i, j := range e.Pairs {
		en := &entry{si: i, ti: -1, sc: -1, tc: -1}
		if j >= 0 && j < len(baseT) && byTI[j] == nil {
			en.ti = j
			byTI[j] = en
		}
		bySI[i] = en
		entries = append(entries, en)
	}
	for j := range baseT {
		if byTI[j] == nil {
			en := &entry{si: -1, ti: j, sc: -1, tc: -1}
			byTI[j] = en
			entries = append(entries, en)
		}
	}
	mk := pl.mappedKey(prop)
	srcEntry := make([]*entry, len(sv)) // the base element of each current source element
	for i, j := range identify(src.ids, keysOf(sv, mk), src.canon, baseSIDs, keysOf(baseS, mk), baseSC) {
		if j >= 0 {
			srcEntry[i], bySI[j].sc = bySI[j], i
		}
	}
	tgtEntry := make([]*entry, len(tv))
	for i, j := range identify(tgt.ids, keysOf(tv, mk), tgt.canon, baseTIDs, keysOf(baseT, mk), baseTC) {
		if j >= 0 {
			tgtEntry[i], byTI[j].tc = byTI[j], i
		}
	}
	// Elements new to both sides with the same external id are one element, added twice.
	tgtKeys := keysOf(tv, mk)
	for i, k := range keysOf(sv, mk) {
		if srcEntry[i] != nil || k == "" {
			continue
		}
		for j := range tv {
			if tgtEntry[j] == nil && tgtKeys[j] == k {
				en := &entry{si: -1, ti: -1, sc: i, tc: j}
				srcEntry[i], tgtEntry[j] = en, en
				entries = append(entries, en)
				break
			}
		}
	}
	at := func(l []any, i int) any {
		if i < 0 || i >= len(l) {
			return nil
		}
		return l[i]
	}
	m := &listMerge{srcIDs: src.ids, tgtIDs: tgt.ids}
	type out struct {
		val    any
		sc, tc int
	}
	// What becomes of each base element (nil: removed), and of each new element.
	keep := map[*entry]*out{}
	for _, en := range entries {
		switch {
		case en.sc >= 0 && en.tc >= 0:
			bs, _ := at(baseS, en.si).(map[string]any)
			bt, _ := at(baseT, en.ti).(map[string]any)
			se, _ := sv[en.sc].(map[string]any)
			te, _ := tv[en.tc].(map[string]any)
			elem := map[string]any{}
			for _, ep := range prop.Elements {
				if !ep.ToTargetSide() {
					continue
				}
				path := ep.Config.Target.Value
				s, t := mapping.Get(se, path), mapping.Get(te, path)
				sCh := srcChanged && string(mapping.Canonical(s)) != string(mapping.Canonical(mapping.Get(bs, path)))
				tCh := tgtChanged && ep.ToSourceSide() && string(mapping.Canonical(t)) != string(mapping.Canonical(mapping.Get(bt, path)))
				v := s
				switch {
				case tCh && !sCh:
					v = t
				case tCh && sCh && string(mapping.Canonical(s)) != string(mapping.Canonical(t)):
					m.conflicts++
					if !pl.sourceWins(srcRec, tgtRec) {
						v = t
					}
				}
				mapping.Set(elem, path, v)
			}
			keep[en] = &out{elem, en.sc, en.tc}
		case en.sc >= 0:
			// Gone from the target (or never there): removed, unless the source changed it.
			changed := srcChanged && (en.si < 0 || src.canon[en.sc] != baseSC[en.si])
			switch {
			case en.ti < 0 || !tgtChanged:
				keep[en] = &out{sv[en.sc], en.sc, -1}
			case changed:
				m.conflicts++
				if pl.sourceWins(srcRec, tgtRec) {
					keep[en] = &out{sv[en.sc], en.sc, -1}
				}
			}
		case en.tc >= 0:
			changed := tgtChanged && (en.ti < 0 || tgt.canon[en.tc] != baseTC[en.ti])
			switch {
			case en.si < 0 && tgtChanged:
				keep[en] = &out{tv[en.tc], -1, en.tc}
			case en.si < 0 || !srcChanged:
				// Not in the source and not changed in the target: the source's list wins.
				if tgtChanged {
					keep[en] = &out{tv[en.tc], -1, en.tc}
				}
			case changed:
				m.conflicts++
				if !pl.sourceWins(srcRec, tgtRec) {
					keep[en] = &out{tv[en.tc], -1, en.tc}
				}
			}
		}
	}
	// The order: the target's when it changed, the source's elements placed after the element
	// that precedes them in the source; else the source's.
	var seq []*out
	placed := map[*out]bool{}
	if tgtChanged {
		for i := range tv {
			var o *out
			if en := tgtEntry[i]; en != nil {
				o = keep[en]
			} else {
				o = &out{tv[i], -1, i} // added in the target
			}
			if o != nil && !placed[o] {
				seq = append(seq, o)
				placed[o] = true
			}
		}
	}
	var prev *out
	for i := range sv {
		var o *out
		if en := srcEntry[i]; en != nil {
			o = keep[en]
		} else {
			o = &out{sv[i], i, -1} // added in the source
		}
		if o == nil {
			continue
		}
		if !placed[o] {
			pos := 0
			if prev != nil {
				for k, x := range seq {
					if x == prev {
						pos = k + 1
					}
				}
			}
			seq = append(seq[:pos], append([]*out{o}, seq[pos:]...)...)
			placed[o] = true
		}
		prev = o
	}
	for _, o := range seq {
		m.merged = append(m.merged, o.val)
		m.srcOf = append(m.srcOf, o.sc)
		m.tgtOf = append(m.tgtOf, o.tc)
	}
	if m.merged == nil {
		m.merged = []any{}
	}
	return m, true
}

// arranged is a side's current list with its elements placed as the merge places them (an
// empty element where it is new to that side), so that applying the merged values element by
// element keeps each element's unmapped fields, and its id, with it.
func arranged(raw []any, of []int) []any {
	out := make([]any, len(of))
	for i, j := range of {
		if j >= 0 && j < len(raw) {
			out[i] = mapping.Clone(raw[j])
		} else {
			out[i] = map[string]any{}
		}
	}
	return out
}

// elemHint says that the source element with id s is synced with the target element with id
// t, or, when t is "", with the target element at place pos.
type elemHint struct {
	s, t string
	pos  int
}

// hints are what a merge knows of the pairs after its writes: an element continued on the
// source keeps its id, on the target its id or its place in the merged list.
func (m *listMerge) hints() []elemHint {
	var out []elemHint
	for i := range m.merged {
		if m.srcOf[i] < 0 {
			continue
		}
		h := elemHint{s: m.srcIDs[m.srcOf[i]], pos: i}
		if m.tgtOf[i] >= 0 {
			h.t = m.tgtIDs[m.tgtOf[i]]
		}
		if h.s != "" {
			out = append(out, h)
		}
	}
	return out
}

// elements pairs the elements of a list as two records hold it, for the base: by the hints,
// then by the external id they carry, then by equal values, then in order.
func (pl *planner) elements(prop *mapping.Property, src, tgt map[string]any, S, T any, hints []elemHint) *state.Elements {
	sv, _ := S.([]any)
	tv, _ := T.([]any)
	s, ok1 := pl.listOf(Source, prop, src, sv)
	t, ok2 := pl.listOf(Target, prop, tgt, tv)
	if !ok1 || !ok2 {
		return nil
	}
	e := &state.Elements{Pairs: make([]int, len(sv))}
	taken := make([]bool, len(tv))
	srcAt := map[string]int{}
	for i, id := range s.ids {
		e.Pairs[i] = -1
		if id != "" {
			srcAt[id] = i
		}
	}
	tgtAt := map[string]int{}
	for j, id := range t.ids {
		if id != "" {
			tgtAt[id] = j
		}
	}
	for _, h := range hints {
		i, ok := srcAt[h.s]
		if !ok || e.Pairs[i] >= 0 {
			continue
		}
		j, ok := tgtAt[h.t]
		if h.t == "" {
			j, ok = h.pos, h.pos < len(tv) && t.ids[h.pos] == ""
		}
		if ok && !taken[j] {
			e.Pairs[i], taken[j] = j, true
		}
	}
	mk := pl.mappedKey(prop)
	sk, tk := keysOf(sv, mk), keysOf(tv, mk)
	for _, same := range []func(i, j int) bool{
		func(i, j int) bool { return sk[i] != "" && sk[i] == tk[j] },
		func(i, j int) bool { return s.canon[i] == t.canon[j] },
	} {
		for i := range sv {
			for j := 0; j < len(tv) && e.Pairs[i] < 0; j++ {
				if !taken[j] && same(i, j) {
					e.Pairs[i], taken[j] = j, true
				}
			}
		}
	}
	j := 0
	for i := range sv {
		if e.Pairs[i] >= 0 || sk[i] != "" {
			continue // an element with an external id pairs only with that id
		}
		for j < len(tv) && (taken[j] || tk[j] != "") {
			j++
		}
		if j < len(tv) {
			e.Pairs[i], taken[j] = j, true
		}
	}
	for _, id := range s.ids {
		if id != "" {
			e.Source = s.ids
			break
		}
	}
	for _, id := range t.ids {
		if id != "" {
			e.Target = t.ids
			break
		}
	}
	return e
}

// applyList writes a merged list into the records being built: the target's when the merge
// differs from what the target holds (tC), the source's when the merge, taken back to source
// form, differs from the source's elements. It reports which side changed.
func (pl *planner) applyList(m *merged, src, tgt connector.Record, prop *mapping.Property, lm *listMerge, desiredTgt, desiredSrc map[string]any, tC []byte) (changedTgt, changedSrc bool, err error) {
	if m.hints == nil {
		m.hints = map[string][]elemHint{}
	}
	m.hints[prop.Key()] = lm.hints()
	if mc := mapping.Canonical(lm.merged); string(mc) != string(tC) {
		raw, _ := mapping.Get(tgt.Data, prop.Target).([]any)
		mapping.Set(desiredTgt, prop.Target, arranged(raw, lm.tgtOf))
		prop.ApplyTarget(desiredTgt, lm.merged)
		changedTgt = true
		m.change(Change{Action: "update", Side: string(Target), RecordID: tgt.ID, Property: prop.Target, Old: string(tC), New: string(mc)})
	}
	if !prop.ToSourceSide() {
		return changedTgt, false, nil
	}
	v, err := prop.SourceValue(desiredTgt, pl.refs)
	if err != nil {
		return false, false, err
	}
	raw, _ := mapping.Get(src.Data, prop.Source).([]any)
	arr := arranged(raw, lm.srcOf)
	probe := map[string]any{}
	mapping.Set(probe, prop.Source, arr)
	nv := mapping.Canonical(v)
	// The source already holds it when each of its elements continues in the merge with the
	// values the merge gives it: an order of its own (child rows by id) is not a change.
	same := len(lm.srcOf) == len(raw)
	seen := make([]bool, len(raw))
	for _, j := range lm.srcOf {
		same = same && j >= 0 && !seen[j]
		if j >= 0 {
			seen[j] = true
		}
	}
	if same && string(mapping.Canonical(prop.SourceView(probe))) == string(nv) {
		return changedTgt, false, nil
	}
	mapping.Set(desiredSrc, prop.Source, arr)
	prop.ApplySource(desiredSrc, v)
	m.change(Change{Action: "update", Side: string(Source), RecordID: src.ID, Property: prop.Source,
		Old: string(mapping.Canonical(prop.SourceView(src.Data))), New: string(nv)})
	return changedTgt, true, nil
}

// withElements completes a base with the pairs of the elements of its lists, as the records
// src and tgt hold them; hints (per property key) are the pairs a merge knows, old the base
// before, whose pairs of elements with ids on both sides still hold where those ids do.
func (pl *planner) withElements(base map[string]state.Base, src, tgt map[string]any, hints map[string][]elemHint, old map[string]state.Base) {
	for _, prop := range pl.f.Properties {
		if len(prop.Elements) == 0 || !prop.ToTargetSide() {
			continue
		}
		b, ok := base[prop.Key()]
		if !ok {
			continue
		}
		var S, T []any
		if json.Unmarshal(b.S, &S) != nil || json.Unmarshal(b.T, &T) != nil {
			continue
		}
		hs := hints[prop.Key()]
		if e := old[prop.Key()].E; e != nil {
			for i, j := range e.Pairs {
				if i < len(e.Source) && j >= 0 && j < len(e.Target) && e.Source[i] != "" && e.Target[j] != "" {
					hs = append(hs, elemHint{s: e.Source[i], t: e.Target[j]})
				}
			}
		}
		b.E = pl.elements(prop, src, tgt, S, T, hs)
		base[prop.Key()] = b
	}
}
