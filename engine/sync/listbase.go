package sync

// The pairs of list elements a link's base records (state.Elements): which source element is
// synced with which target element, so that the next merge traces each element through the
// base to its partner (lists.go).

import (
	"encoding/json"

	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
)

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
