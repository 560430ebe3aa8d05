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
	lt := &listTrace{prop: prop, srcChanged: srcChanged, tgtChanged: tgtChanged,
		sourceWins: func() bool { return pl.sourceWins(srcRec, tgtRec) }}
	if json.Unmarshal(base.S, &lt.baseS) != nil || json.Unmarshal(base.T, &lt.baseT) != nil {
		return nil, false
	}
	lt.sv, _ = S.([]any)
	lt.tv, _ = T.([]any)
	var ok1, ok2 bool
	lt.src, ok1 = pl.listOf(Source, prop, srcRec.Data, lt.sv)
	lt.tgt, ok2 = pl.listOf(Target, prop, tgtRec.Data, lt.tv)
	if !ok1 || !ok2 {
		return nil, false
	}
	lt.trace(base.E, pl.mappedKey(prop))
	m := &listMerge{srcIDs: lt.src.ids, tgtIDs: lt.tgt.ids}
	for _, o := range lt.order(lt.fates(m)) {
		m.merged = append(m.merged, o.val)
		m.srcOf = append(m.srcOf, o.sc)
		m.tgtOf = append(m.tgtOf, o.tc)
	}
	if m.merged == nil {
		m.merged = []any{}
	}
	return m, true
}

// listTrace is a list being merged: its base (baseS, baseT, and their canonical forms), its
// current elements on each side, and the entries that trace each current element to the base
// element it continues.
type listTrace struct {
	prop                   *mapping.Property
	srcChanged, tgtChanged bool
	sourceWins             func() bool // the conflict policy, for this pair
	baseS, baseT           []any
	baseSC, baseTC         []string
	sv, tv                 []any
	src, tgt               listSide
	entries                []*listEntry
	bySI, byTI             []*listEntry // the entry of each base element
	srcEntry, tgtEntry     []*listEntry // the entry of each current element, nil for a new one
}

// listEntry is one element of a list's base, or one new on both sides: its places in base S
// and base T (si, ti) and in the current source and target lists (sc, tc), -1 where none.
type listEntry struct{ si, ti, sc, tc int }

// listOut is an element of the merged list: its value and the current elements it continues.
type listOut struct {
	val    any
	sc, tc int
}

// trace pairs the base elements (by e, the base's pairs of elements), and traces each current
// element to its base element by ids, external ids (the target path mk), values or places.
func (lt *listTrace) trace(e *state.Elements, mk string) {
	baseS, baseT, sv, tv := lt.baseS, lt.baseT, lt.sv, lt.tv
	// The base elements, each with its place in base S and base T (-1 where it has none).
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
	lt.baseSC, lt.baseTC = canon(baseS), canon(baseT)
	lt.bySI = make([]*listEntry, len(baseS))
	lt.byTI = make([]*listEntry, len(baseT))
	for i, j := range e.Pairs {
		en := &listEntry{si: i, ti: -1, sc: -1, tc: -1}
		if j >= 0 && j < len(baseT) && lt.byTI[j] == nil {
			en.ti = j
			lt.byTI[j] = en
		}
		lt.bySI[i] = en
		lt.entries = append(lt.entries, en)
	}
	for j := range baseT {
		if lt.byTI[j] == nil {
			en := &listEntry{si: -1, ti: j, sc: -1, tc: -1}
			lt.byTI[j] = en
			lt.entries = append(lt.entries, en)
		}
	}
	lt.srcEntry = make([]*listEntry, len(sv)) // the base element of each current source element
	for i, j := range identify(lt.src.ids, keysOf(sv, mk), lt.src.canon, baseSIDs, keysOf(baseS, mk), lt.baseSC) {
		if j >= 0 {
			lt.srcEntry[i], lt.bySI[j].sc = lt.bySI[j], i
		}
	}
	lt.tgtEntry = make([]*listEntry, len(tv))
	for i, j := range identify(lt.tgt.ids, keysOf(tv, mk), lt.tgt.canon, baseTIDs, keysOf(baseT, mk), lt.baseTC) {
		if j >= 0 {
			lt.tgtEntry[i], lt.byTI[j].tc = lt.byTI[j], i
		}
	}
	// Elements new to both sides with the same external id are one element, added twice.
	tgtKeys := keysOf(tv, mk)
	for i, k := range keysOf(sv, mk) {
		if lt.srcEntry[i] != nil || k == "" {
			continue
		}
		for j := range tv {
			if lt.tgtEntry[j] == nil && tgtKeys[j] == k {
				en := &listEntry{si: -1, ti: -1, sc: i, tc: j}
				lt.srcEntry[i], lt.tgtEntry[j] = en, en
				lt.entries = append(lt.entries, en)
				break
			}
		}
	}
}

// fates decides what becomes of each entry: its merged element, or nil when it is removed.
// Conflicts are counted into m.
func (lt *listTrace) fates(m *listMerge) map[*listEntry]*listOut {
	sv, tv, srcChanged, tgtChanged := lt.sv, lt.tv, lt.srcChanged, lt.tgtChanged
	keep := map[*listEntry]*listOut{}
	for _, en := range lt.entries {
		switch {
		case en.sc >= 0 && en.tc >= 0:
			keep[en] = &listOut{lt.mergeElement(m, en), en.sc, en.tc}
		case en.sc >= 0:
			// Gone from the target (or never there): removed, unless the source changed it.
			changed := srcChanged && (en.si < 0 || lt.src.canon[en.sc] != lt.baseSC[en.si])
			switch {
			case en.ti < 0 || !tgtChanged:
				keep[en] = &listOut{sv[en.sc], en.sc, -1}
			case changed:
				m.conflicts++
				if lt.sourceWins() {
					keep[en] = &listOut{sv[en.sc], en.sc, -1}
				}
			}
		case en.tc >= 0:
			changed := tgtChanged && (en.ti < 0 || lt.tgt.canon[en.tc] != lt.baseTC[en.ti])
			switch {
			case en.si < 0 && tgtChanged:
				keep[en] = &listOut{tv[en.tc], -1, en.tc}
			case en.si < 0 || !srcChanged:
				// Not in the source and not changed in the target: the source's list wins.
				if tgtChanged {
					keep[en] = &listOut{tv[en.tc], -1, en.tc}
				}
			case changed:
				m.conflicts++
				if !lt.sourceWins() {
					keep[en] = &listOut{tv[en.tc], -1, en.tc}
				}
			}
		}
	}
	return keep
}

// mergeElement merges, property by property, an element both sides hold.
func (lt *listTrace) mergeElement(m *listMerge, en *listEntry) map[string]any {
	at := func(l []any, i int) any {
		if i < 0 || i >= len(l) {
			return nil
		}
		return l[i]
	}
	bs, _ := at(lt.baseS, en.si).(map[string]any)
	bt, _ := at(lt.baseT, en.ti).(map[string]any)
	se, _ := lt.sv[en.sc].(map[string]any)
	te, _ := lt.tv[en.tc].(map[string]any)
	elem := map[string]any{}
	for _, ep := range lt.prop.Elements {
		if !ep.ToTargetSide() {
			continue
		}
		path := ep.Config.Target.Value
		s, t := mapping.Get(se, path), mapping.Get(te, path)
		sCh := lt.srcChanged && string(mapping.Canonical(s)) != string(mapping.Canonical(mapping.Get(bs, path)))
		tCh := lt.tgtChanged && ep.ToSourceSide() && string(mapping.Canonical(t)) != string(mapping.Canonical(mapping.Get(bt, path)))
		v := s
		switch {
		case tCh && !sCh:
			v = t
		case tCh && sCh && string(mapping.Canonical(s)) != string(mapping.Canonical(t)):
			m.conflicts++
			if !lt.sourceWins() {
				v = t
			}
		}
		mapping.Set(elem, path, v)
	}
	return elem
}

// order places the merged elements: the target's order when it changed, the source's elements
// placed after the element that precedes them in the source; else the source's.
func (lt *listTrace) order(keep map[*listEntry]*listOut) []*listOut {
	sv, tv := lt.sv, lt.tv
	var seq []*listOut
	placed := map[*listOut]bool{}
	if lt.tgtChanged {
		for i := range tv {
			var o *listOut
			if en := lt.tgtEntry[i]; en != nil {
				o = keep[en]
			} else {
				o = &listOut{tv[i], -1, i} // added in the target
			}
			if o != nil && !placed[o] {
				seq = append(seq, o)
				placed[o] = true
			}
		}
	}
	var prev *listOut
	for i := range sv {
		var o *listOut
		if en := lt.srcEntry[i]; en != nil {
			o = keep[en]
		} else {
			o = &listOut{sv[i], i, -1} // added in the source
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
			seq = append(seq[:pos], append([]*listOut{o}, seq[pos:]...)...)
			placed[o] = true
		}
		prev = o
	}
	return seq
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
