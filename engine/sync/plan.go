package sync

// The plan of a linked pair's merge: from the compiled flow, the two records and the base the
// link holds (the values last synced), what to write to each side. planner.merge reads
// nothing and writes nothing; the runner (batch.go) calls it for each pair, counts what it
// decided and hands the patches to write.go, the code that writes.
//
// Per property (docs/semantics.md §3): in sync, nothing; changed on one side since the base,
// that side's value; changed on both, the flow's conflict policy (newest by the records'
// `updated` values, ties and unknown stamps to the source); at the first merge (no base) a
// value beats an empty one; a one-way property edited on the side it flows to gets its
// origin's value back, and a value the system reformatted on write is its base, not an edit.
// Lists are merged element by element (lists.go).

import (
	"fmt"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/stamp"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// planner decides the merges of one flow's linked pairs. It holds what the decisions read
// besides the records, all fixed for the flow run: the compiled flow, the properties that
// carry the records' last-modified stamps, the properties that identify list elements, and the
// lookup that translates references between flows. It is safe for use by several goroutines.
type planner struct {
	f *mapping.Flow
	// refs translates the ids of referenced records through their flows' links. It only reads:
	// for a record its flow creates on reference (create: referenced) it answers
	// *referenceToCreate, which the plan passes on for apply to create the record and plan
	// again (refs.withReferences).
	refs                   mapping.Refs
	srcUpdated, tgtUpdated string // "" when the entity has none
	// listKeys holds, per list property (by key), the element property that identifies its
	// elements on each side, "" where they have none.
	listKeys map[string]listKeys
	// pos numbers the flow's properties by their place in f.Properties, for propValues, and
	// keys are their keys in that order (for state.Link.SetBaseForms: one slice for every link).
	pos  map[*mapping.Property]int
	keys []string
}

// propValues holds a value per property of a flow, by the property's place in its
// Properties (planner.pos): the canonical values in target form of a record's properties that
// build computes for a create's link base, nil where unknown. A slice, not a map by property
// key, since a first sync makes one per record.
type propValues [][]byte

// complete reports whether s holds a value for every property that flows to the target: the
// base of a link made with s reads only the records (baseOf cannot fail).
func (pl *planner) complete(s propValues) bool {
	if len(s) != len(pl.f.Properties) {
		return false
	}
	for i, prop := range pl.f.Properties {
		if prop.ToTargetSide() && s[i] == nil {
			return false
		}
	}
	return true
}

type listKeys struct{ src, tgt string }

// newPlanner returns the planner of flow f. srcLists and tgtLists are the connections' list
// identifiers (nil when they have none): the element ids are resolved here, once.
func newPlanner(f *mapping.Flow, refs mapping.Refs, srcLists, tgtLists connector.ListIdentifier) *planner {
	pl := &planner{f: f, refs: refs, listKeys: map[string]listKeys{}, pos: make(map[*mapping.Property]int, len(f.Properties))}
	for i, prop := range f.Properties {
		pl.pos[prop] = i
		pl.keys = append(pl.keys, prop.Key())
	}
	if f.Source != nil && f.Source.Config != nil {
		pl.srcUpdated = f.Source.Config.Updated.Value
	}
	if f.Target != nil && f.Target.Config != nil {
		pl.tgtUpdated = f.Target.Config.Updated.Value
	}
	for _, prop := range f.Properties {
		if len(prop.Elements) > 0 {
			pl.listKeys[prop.Key()] = listKeys{
				src: listKeyOf(srcLists, f.Source, prop.Source),
				tgt: listKeyOf(tgtLists, f.Target, prop.Target),
			}
		}
	}
	return pl
}

// merged is the plan of one pair: the patches to write to each side (empty: nothing), the
// values the merge saw (the new base when nothing is written), the pairs of list elements it
// made (for the new base), the conflicts it settled by the policy, and the changes a dry run
// reports.
type merged struct {
	srcPatch, tgtPatch map[string]any
	seen               map[string]state.Base
	hints              map[string][]elemHint
	conflicts          int
	changes            []Change
}

func (m *merged) change(c Change) { m.changes = append(m.changes, c) }

// merge plans the writes of a linked pair from its records and the base of its link. On an
// error (a reference that cannot be translated) the plan holds the changes decided before it.
func (pl *planner) merge(src, tgt connector.Record, bases map[string]state.Base) (*merged, error) {
	m := &merged{}
	desiredTgt := mapping.Clone(tgt.Data).(map[string]any)
	desiredSrc := mapping.Clone(src.Data).(map[string]any)
	changedTgt, changedSrc := false, false
	// Properties that flow to the target are decided first; those that only flow back are
	// computed from the target as it will be after this merge's writes, so that a value
	// derived from a target property (availability from quantity) follows that property.
	ordered := make([]*mapping.Property, 0, len(pl.f.Properties))
	for _, prop := range pl.f.Properties {
		if prop.ToTargetSide() {
			ordered = append(ordered, prop)
		}
	}
	for _, prop := range pl.f.Properties {
		if !prop.ToTargetSide() {
			ordered = append(ordered, prop)
		}
	}
	m.seen = make(map[string]state.Base, len(ordered))
	for _, prop := range ordered {
		ct, cs, err := pl.mergeProperty(m, prop, src, tgt, bases, desiredTgt, desiredSrc)
		if err != nil {
			return m, err
		}
		changedTgt, changedSrc = changedTgt || ct, changedSrc || cs
	}
	if changedTgt {
		m.tgtPatch = patch(tgt.Data, desiredTgt)
	}
	if changedSrc {
		m.srcPatch = patch(src.Data, desiredSrc)
	}
	return m, nil
}

// mergeProperty decides one property of a pair, setting it in the records as they will be
// (desiredTgt, desiredSrc); it reports which of them it changed.
func (pl *planner) mergeProperty(m *merged, prop *mapping.Property, src, tgt connector.Record, bases map[string]state.Base,
	desiredTgt, desiredSrc map[string]any) (changedTgt, changedSrc bool, err error) {
	base, hasBase := bases[prop.Key()]
	var S any
	if prop.ToTargetSide() {
		if S, err = prop.TargetValue(src.Data, pl.refs); err != nil {
			return false, false, err
		}
	}
	tgtNow := tgt.Data
	if !prop.ToTargetSide() {
		tgtNow = desiredTgt
	}
	T := prop.View(tgtNow)
	sC, tC := mapping.Canonical(S), mapping.Canonical(T)
	seen := state.Base{T: tC}
	var srcNow []byte // a to-source property's value in the source, against its base
	if prop.ToTargetSide() {
		seen.S = sC
	} else if len(prop.Elements) == 0 {
		srcNow = mapping.Canonical(prop.SourceView(src.Data))
		seen.S = srcNow
	}
	m.seen[prop.Key()] = seen
	if prop.ToTargetSide() && string(sC) == string(tC) {
		return false, false, nil // in sync
	}
	first := !hasBase
	srcChanged := prop.ToTargetSide() && (first || string(sC) != string(base.S))
	tgtChanged := prop.ToSourceSide() && (first || string(tC) != string(base.T))
	if !first && len(prop.Elements) > 0 && prop.ToTargetSide() && (srcChanged || tgtChanged) {
		// A list is merged element by element (lists.go), whichever side changed it.
		if lm, ok := pl.mergeElements(src, tgt, prop, base, S, T, srcChanged, tgtChanged); ok {
			m.conflicts += lm.conflicts
			return pl.applyList(m, src, tgt, prop, lm, desiredTgt, desiredSrc, tC)
		}
	}
	toTarget, toSource, conflict := pl.direction(prop, src, tgt, base, first, srcChanged, tgtChanged, srcNow, S, T, tC)
	if conflict {
		m.conflicts++
	}
	if toTarget {
		prop.ApplyTarget(desiredTgt, S)
		changedTgt = true
		m.change(Change{Action: "update", Side: string(Target), RecordID: tgt.ID, Property: prop.Target, Old: string(tC), New: string(sC)})
	}
	if toSource {
		v, err := prop.SourceValue(desiredTgt, pl.refs)
		if err != nil {
			return changedTgt, false, err
		}
		old := mapping.Canonical(prop.SourceView(src.Data))
		if string(old) == string(mapping.Canonical(v)) {
			return changedTgt, false, nil // the source already holds it
		}
		prop.ApplySource(desiredSrc, v)
		changedSrc = true
		m.change(Change{Action: "update", Side: string(Source), RecordID: src.ID, Property: prop.Source,
			Old: string(old), New: string(mapping.Canonical(v))})
	}
	return changedTgt, changedSrc, nil
}

// direction says which way a property that is not in sync flows: to the target, to the
// source, or neither; conflict says that both sides changed it and the policy chose.
func (pl *planner) direction(prop *mapping.Property, src, tgt connector.Record, base state.Base, first, srcChanged, tgtChanged bool,
	srcNow []byte, S, T any, tC []byte) (toTarget, toSource, conflict bool) {
	switch {
	case prop.ToTargetSide() && !prop.ToSourceSide() && !first && string(tC) != string(base.T):
		// The target edited a property that flows to it only: the source's value wins
		// back (a value the target reformatted on write is its base, not an edit).
		return true, false, false
	case srcNow != nil && !tgtChanged && base.S != nil && string(srcNow) != string(base.S):
		// The same for the source's edit of a property that flows to it only.
		return false, true, false
	case !srcChanged && !tgtChanged:
		return false, false, false
	case srcChanged && !tgtChanged:
		return true, false, false
	case tgtChanged && !srcChanged:
		return false, true, false
	case first && prop.ToTargetSide() && prop.ToSourceSide() && mapping.Empty(T) != mapping.Empty(S):
		// At first merge a value beats an empty one.
		return mapping.Empty(T), !mapping.Empty(T), false
	}
	wins := pl.sourceWins(src, tgt)
	return wins, !wins, true
}

// unmatched decides, by the flow's create policy for the other side, what becomes of a record
// of side that has no link and that no record of the other side matches: it is created there
// (create), or it waits with the reason wait, or neither (create: referenced creates it when a
// record refers to it).
func (pl *planner) unmatched(side Side) (create bool, wait string) {
	policy, other := pl.f.CreateTarget, pl.f.Target.Name()
	if side == Target {
		policy, other = pl.f.CreateSource, pl.f.Source.Name()
	}
	switch policy {
	case config.CreateAlways:
		return true, ""
	case config.CreateNever:
		// A source record waits for its partner (semantics §3.1, docs/semantics.md). A target
		// record that nothing matches is not synced by this flow unless it may be created in
		// the source: it is linked when a source record matching it appears, so it is not kept
		// as waiting (a shop's many products that the CRM lacks would be re-read on every run).
		if side == Target {
			return false, ""
		}
		if len(pl.f.Merge) > 0 {
			return false, fmt.Sprintf("no %s matches the merge criteria; the flow never creates one", other)
		}
		return false, fmt.Sprintf("no %s to link with; the flow never creates one", other)
	}
	return false, ""
}

// sourceWins applies the conflict policy to a property both sides changed.
func (pl *planner) sourceWins(src, tgt connector.Record) bool {
	switch pl.f.Conflict {
	case mapping.ConflictSource:
		return true
	case mapping.ConflictTarget:
		return false
	}
	// newest: by the records' last-modified values; ties and unknowns go to the source.
	if pl.srcUpdated == "" || pl.tgtUpdated == "" {
		return true
	}
	s := mapping.IDString(mapping.Get(src.Data, pl.srcUpdated))
	t := mapping.IDString(mapping.Get(tgt.Data, pl.tgtUpdated))
	later, ok := laterOrSame(s, t)
	return !ok || later
}

// baseOf returns the base of a link between src and tgt as they hold their values now: the
// values last synced, per property. hints are the pairs of list elements a merge made (nil
// after a create), sVals the canonical values in target form of src's properties by key when
// they are known (nil computes them), old the base before (its pairs of elements with ids
// still hold where those ids do).
func (pl *planner) baseOf(src, tgt connector.Record, hints map[string][]elemHint, sVals propValues, old map[string]state.Base) (map[string]state.Base, error) {
	base := make(map[string]state.Base, len(pl.f.Properties))
	// The T values share one buffer, as build's S values do, and a T value equal to its S
	// value (as most are after a create) is that value: a few allocations per link, not one
	// per property.
	buf := make([]byte, 0, 16*len(pl.f.Properties))
	for i, prop := range pl.f.Properties {
		b, err := pl.baseValue(i, prop, src, tgt, sVals, &buf)
		if err != nil {
			return nil, err
		}
		base[prop.Key()] = b
	}
	pl.withElements(base, src.Data, tgt.Data, hints, old)
	return base, nil
}

// baseForms is baseOf of a flow without lists, by side (for state.Link.SetBaseForms, with
// pl.keys): s holds the S values (sVals itself unless baseValue computed one that sVals lacks),
// t the T values that are not their S's (nil when every T is its S, as after most creates).
// No map and no state.Base per link. asBuilt says that tgt's data is the record build made
// with sVals (and stored as given): a property whose value that record holds as build gave it
// (mapping.Flow.HoldsBuiltValue) has T the form of its S, which is not made again.
func (pl *planner) baseForms(src, tgt connector.Record, sVals propValues, asBuilt bool) (s, t [][]byte, err error) {
	n := len(pl.f.Properties)
	s = sVals
	owned := false // s is a copy of sVals, which the caller's build shares
	var buf []byte
	for i, prop := range pl.f.Properties {
		if asBuilt && i < len(sVals) && sVals[i] != nil && pl.f.HoldsBuiltValue(i) {
			continue // S is sVals[i], and T the same
		}
		b, err := pl.baseValue(i, prop, src, tgt, sVals, &buf)
		if err != nil {
			return nil, nil, err
		}
		if i >= len(sVals) || !sameSlice(sVals[i], b.S) { // computed by baseValue
			if !owned {
				s, owned = make([][]byte, n), true
				copy(s, sVals)
			}
			s[i] = b.S
		}
		if !sameSlice(b.T, b.S) { // baseValue gives a T equal to its S as that S
			if t == nil {
				t = make([][]byte, n)
			}
			t[i] = b.T
		}
	}
	return s, t, nil
}

// sameSlice reports whether a and b are the same bytes in memory (not merely equal ones).
func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// baseValue is the base of property i (prop) of a pair: S from sVals when it holds it, T in
// buf (see baseOf).
func (pl *planner) baseValue(i int, prop *mapping.Property, src, tgt connector.Record, sVals propValues, buf *[]byte) (state.Base, error) {
	var b state.Base
	if i < len(sVals) && sVals[i] != nil {
		b.S = sVals[i]
	} else if prop.ToTargetSide() {
		s, err := prop.TargetValue(src.Data, pl.refs)
		if err != nil {
			return state.Base{}, err
		}
		b.S = mapping.Canonical(s)
	} else if len(prop.Elements) == 0 {
		// A property that flows to the source only keeps the source's value, so that a
		// source edit of it is told from the value the source was last given.
		b.S = mapping.Canonical(prop.SourceView(src.Data))
	}
	start := len(*buf)
	*buf = mapping.AppendCanonical(*buf, prop.View(tgt.Data))
	if t := (*buf)[start:]; string(t) == string(b.S) {
		b.T, *buf = b.S, (*buf)[:start]
	} else {
		b.T = t[:len(t):len(t)]
	}
	return b, nil
}

// patch lists the top-level properties of desired that differ from current.
func patch(current, desired map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range desired {
		if string(mapping.Canonical(v)) != string(mapping.Canonical(current[k])) {
			out[k] = v
		}
	}
	return out
}

// laterOrSame reports whether the stamp a is at or after b, by the one comparison of stamps
// (engine/stamp) that the connectors' since filters use; ok is false when they cannot be
// compared (either is not a stamp, or one is a time and the other a number).
func laterOrSame(a, b string) (later, ok bool) {
	c, err := stamp.Compare(a, b)
	return c >= 0, err == nil
}
