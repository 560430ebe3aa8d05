package sync

// The model test of the planner: two systems in memory, random two-way edits and new records
// on both sides, and runs made of nothing but the planner's decisions (link, unmatched,
// merge, baseOf), checked against the contract's invariants (docs/semantics.md §3): after a
// run every linked pair agrees and the next run plans nothing, no update is lost, and no
// record is duplicated. No database: what the end-to-end seeds check through SQLite, at a
// hundred thousand seeds.

import (
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// planModelLink is a link of the model: its records' ids, its base, and the side it was
// created on ("" when linked by merge criteria or made by the model's start).
type planModelLink struct {
	src, tgt string
	base     map[string]state.Base
	made     Side
}

// planModel is the two systems and the link state.
type planModel struct {
	t        *testing.T
	seed     int
	conflict string
	pl       *planner
	rng      *rand.Rand
	recs     map[Side]map[string]map[string]any
	links    []*planModelLink
	ids      int // the systems' id sequence (records and list elements)
}

func planSeeds(t *testing.T, def int) int {
	s := os.Getenv("DATAFLOW_PLAN_SEEDS")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("DATAFLOW_PLAN_SEEDS=%q: want a number of seeds", s)
	}
	return n
}

// The planner's model at random: per seed a few pairs in sync, then rounds of random edits on
// both sides (values changed and cleared, list elements changed, added and removed, codes
// changed, new records on either side, the same new record on both) and a run of the
// planner. After each run: every linked pair holds the same value on both sides in every
// two-way property, and a one-way property holds its origin's value; the next run plans
// nothing (no write, no link, no create); a value edited on one side only is what both sides
// hold, and one edited on both holds one of the two edits (the winner the conflict policy
// names, when it names a side); every record is linked once and no code is held by two records
// of a side. DATAFLOW_PLAN_SEEDS=N runs N seeds (default 2000).
func TestPlanModelAtRandom(t *testing.T) {
	seeds := planSeeds(t, 2000)
	flows := map[string]*mapping.Flow{}
	for _, c := range []string{"newest", "source", "target"} {
		text := strings.ReplaceAll(planFlowYAML, "%CONFLICT%", c)
		text = strings.ReplaceAll(text, "%EXTRA%", "    create: {target: always, source: always}\n")
		flows[c] = planFlowWith(t, text)
	}
	for seed := 1; seed <= seeds && !t.Failed(); seed++ {
		rng := rand.New(rand.NewSource(int64(seed)))
		conflict := []string{"newest", "source", "target"}[rng.Intn(3)]
		m := &planModel{t: t, seed: seed, conflict: conflict, pl: newPlanner(flows[conflict], nil, nil, nil), rng: rng,
			recs: map[Side]map[string]map[string]any{Source: {}, Target: {}}}
		for i := 0; i < 1+rng.Intn(3); i++ {
			m.newRecord(Source, "")
		}
		m.run()
		m.check(nil)
		for round := 0; round < 3 && !t.Failed(); round++ {
			edits := m.edit()
			m.run()
			m.check(edits)
		}
	}
}

func (m *planModel) fatalf(format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf("seed %d (conflict: %s): %s", m.seed, m.conflict, fmt.Sprintf(format, args...))
}

func (m *planModel) nextID() int { m.ids++; return m.ids }

// newRecord adds a record to side, with code (a new one when "").
func (m *planModel) newRecord(side Side, code string) string {
	n := m.nextID()
	if code == "" {
		code = fmt.Sprint("C", n)
	}
	stamp := fmt.Sprintf("2025-01-0%dT10:00:00Z", 1+m.rng.Intn(3))
	if side == Source {
		id := strconv.Itoa(n)
		m.recs[Source][id] = map[string]any{"id": int64(n), "code": code, "name": "Tea", "qty": int64(m.rng.Intn(5)), "note": "n",
			"updated_at": stamp, "lines": []any{map[string]any{"id": int64(m.nextID()), "sku": "A", "qty": int64(1)}},
			"tags": []any{map[string]any{"tag": "x", "n": int64(1)}}}
		return id
	}
	id := fmt.Sprint("t", n)
	m.recs[Target][id] = map[string]any{"id": id, "sku": code, "title": "Tea", "amount": int64(m.rng.Intn(5)), "note": "n",
		"modified_at": stamp, "lines": []any{map[string]any{"id": fmt.Sprint("l", m.nextID()), "sku": "A", "qty": int64(1)}},
		"tags": []any{map[string]any{"tag": "x", "n": int64(1)}}}
	return id
}

// store keeps what a system is sent, assigning ids to new list elements as the systems do.
func (m *planModel) store(side Side, id string, patch map[string]any) {
	rec := m.recs[side][id]
	for k, v := range patch {
		rec[k] = mapping.Clone(v)
	}
	lines, _ := rec["lines"].([]any)
	for _, e := range lines {
		if el, ok := e.(map[string]any); ok && el["id"] == nil {
			if side == Source {
				el["id"] = int64(m.nextID())
			} else {
				el["id"] = fmt.Sprint("l", m.nextID())
			}
		}
	}
}

func (m *planModel) record(side Side, id string) connector.Record {
	return connector.Record{ID: id, Data: m.recs[side][id]}
}

// planModelEdit is a scalar edit of a linked pair in a round: the value each side was given
// (by key of the property), for the check that no update is lost.
type planModelEdit struct {
	link     *planModelLink
	key      string
	src, tgt any
	edited   [2]bool // source, target
}

var planModelNames = []any{"Tea", "Green tea", "TEA", nil, ""}

// edit makes a round of random edits and returns the scalar edits of linked pairs.
func (m *planModel) edit() []*planModelEdit {
	var edits []*planModelEdit
	for _, l := range m.links {
		byKey := map[string]*planModelEdit{}
		for _, side := range []Side{Source, Target} {
			if m.rng.Intn(3) == 0 {
				continue
			}
			id := l.src
			if side == Target {
				id = l.tgt
			}
			for _, ed := range m.editRecord(side, m.recs[side][id]) {
				e := byKey[ed.key]
				if e == nil {
					e = &planModelEdit{link: l, key: ed.key}
					byKey[ed.key] = e
					edits = append(edits, e)
				}
				if side == Source {
					e.src, e.edited[0] = ed.value, true
				} else {
					e.tgt, e.edited[1] = ed.value, true
				}
			}
		}
	}
	switch m.rng.Intn(4) {
	case 0:
		m.newRecord(Source, "")
	case 1:
		m.newRecord(Target, "")
	case 2: // the same new record on both sides, before a run: linked, not created twice
		code := fmt.Sprint("B", m.nextID())
		m.newRecord(Source, code)
		m.newRecord(Target, code)
	}
	return edits
}

type planModelValue struct {
	key   string
	value any
}

// editRecord edits a record of side at random and returns its scalar edits of two-way
// properties, by property key, in target form.
func (m *planModel) editRecord(side Side, data map[string]any) []planModelValue {
	name, qty, stampKey := "name", "qty", "updated_at"
	if side == Target {
		name, qty, stampKey = "title", "amount", "modified_at"
	}
	var out []planModelValue
	rng := m.rng
	set := func(path string, v any) {
		if string(mapping.Canonical(data[path])) != string(mapping.Canonical(v)) {
			out = append(out, planModelValue{m.key(path, side), v}) // an edit that changes nothing is none
		}
		data[path] = v
	}
	if rng.Intn(2) == 0 {
		set(name, planModelNames[rng.Intn(len(planModelNames))])
	}
	if rng.Intn(3) == 0 {
		set(qty, []any{int64(rng.Intn(5)), nil}[rng.Intn(2)])
	}
	if rng.Intn(4) == 0 {
		data["note"] = []any{"n", "m", nil}[rng.Intn(3)]
	}
	if rng.Intn(8) == 0 {
		code := "code"
		if side == Target {
			code = "sku"
		}
		set(code, fmt.Sprint("E", m.nextID()))
	}
	data[stampKey] = fmt.Sprintf("2025-01-0%dT10:00:00Z", 1+rng.Intn(3))
	newID := func() any { return int64(m.nextID()) }
	if side == Target {
		newID = func() any { return fmt.Sprint("l", m.nextID()) }
	}
	randomListEdits(rng, data, newID)
	return out
}

// key is the key of the property at path on side.
func (m *planModel) key(path string, side Side) string {
	for _, p := range m.pl.f.Properties {
		if (side == Source && p.Source == path) || (side == Target && p.Target == path) {
			return p.Key()
		}
	}
	m.fatalf("no property at %s", path)
	return ""
}

// run is a run of the planner over both sides: a source pass, then a target pass. It returns
// the number of writes, links and creates it made.
func (m *planModel) run() int {
	done := map[*planModelLink]bool{}
	n := m.pass(Source, done)
	return n + m.pass(Target, done)
}

func (m *planModel) linkOf(side Side, id string) *planModelLink {
	for _, l := range m.links {
		if (side == Source && l.src == id) || (side == Target && l.tgt == id) {
			return l
		}
	}
	return nil
}

// pass plans each record of side, in id order, as a batch of the runner does.
func (m *planModel) pass(side Side, done map[*planModelLink]bool) int {
	ids := make([]string, 0, len(m.recs[side]))
	for id := range m.recs[side] {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	others, same := m.unlinked(other(side)), m.unlinked(side)
	n := 0
	for _, id := range ids {
		l := m.linkOf(side, id)
		if l == nil {
			n += m.linkOrCreate(side, id, others, same, done)
			continue
		}
		if !done[l] {
			done[l] = true
			n += m.merge(l)
		}
	}
	return n
}

// unlinked is the index of the records of side without a link: the candidates the read brings.
func (m *planModel) unlinked(side Side) *mergeIndex {
	idx := newMergeIndex(len(m.pl.f.Merge))
	for id := range m.recs[side] {
		if m.linkOf(side, id) == nil {
			idx.add(m.record(side, id), m.pl.f.Merge, side)
		}
	}
	return idx
}

func (m *planModel) linkOrCreate(side Side, id string, others, same *mergeIndex, done map[*planModelLink]bool) int {
	rec := m.record(side, id)
	found, err := m.pl.linkTaking(side, rec, others, same)
	if err != nil {
		m.fatalf("%s record %s: %v (every code is held once: a duplicate?)", side, id, err)
	}
	if found != nil {
		l := &planModelLink{src: id, tgt: found.ID}
		if side == Target {
			l.src, l.tgt = found.ID, id
		}
		m.links = append(m.links, l)
		done[l] = true
		m.merge(l)
		return 1
	}
	create, wait := m.pl.unmatched(side)
	if !create || wait != "" {
		m.fatalf("%s record %s is not created (wait %q) under create: always", side, id, wait)
	}
	var data map[string]any
	if side == Source {
		data, err = m.pl.f.BuildTarget(rec.Data, nil)
	} else {
		data, err = m.pl.f.BuildSource(rec.Data, nil)
	}
	if err != nil {
		m.fatalf("building the partner of %s record %s: %v", side, id, err)
	}
	n := m.nextID()
	newID := strconv.Itoa(n)
	data["id"] = int64(n)
	if side == Source {
		newID = fmt.Sprint("t", n)
		data["id"] = newID
	}
	m.recs[other(side)][newID] = map[string]any{}
	m.store(other(side), newID, data)
	l := &planModelLink{src: id, tgt: newID, made: other(side)}
	if side == Target {
		l.src, l.tgt = newID, id
	}
	if l.base, err = m.pl.baseOf(m.record(Source, l.src), m.record(Target, l.tgt), nil, nil, nil); err != nil {
		m.fatalf("the base of a created pair: %v", err)
	}
	m.links = append(m.links, l)
	done[l] = true
	return 1
}

// merge plans a linked pair, writes its patches and takes its new base; it returns the
// number of sides written.
func (m *planModel) merge(l *planModelLink) int {
	src, tgt := m.record(Source, l.src), m.record(Target, l.tgt)
	plan, err := m.pl.merge(src, tgt, l.base)
	if err != nil {
		m.fatalf("merging %s and %s: %v", l.src, l.tgt, err)
	}
	n := 0
	if len(plan.srcPatch) > 0 {
		m.store(Source, l.src, plan.srcPatch)
		n++
	}
	if len(plan.tgtPatch) > 0 {
		m.store(Target, l.tgt, plan.tgtPatch)
		n++
	}
	if l.base, err = m.pl.baseOf(m.record(Source, l.src), m.record(Target, l.tgt), plan.hints, nil, l.base); err != nil {
		m.fatalf("the base of %s and %s: %v", l.src, l.tgt, err)
	}
	return n
}

// check checks the invariants after a run (edits: the round's scalar edits of linked pairs).
func (m *planModel) check(edits []*planModelEdit) {
	m.t.Helper()
	for _, l := range m.links {
		for _, prop := range m.pl.f.Properties {
			S, err := prop.TargetValue(m.recs[Source][l.src], nil)
			if err != nil {
				m.fatalf("%v", err)
			}
			s, t := mapping.Canonical(S), mapping.Canonical(prop.View(m.recs[Target][l.tgt]))
			if prop.ToSourceSide() || l.made != Source {
				if !sameElements(s, t) {
					m.fatalf("after the run %s is %s in source %s and %s in target %s; want them in sync", prop.Key(), s, l.src, t, l.tgt)
				}
			}
		}
	}
	for _, e := range edits {
		got := mapping.Canonical(m.recs[Target][e.link.tgt][m.targetPath(e.key)])
		want := func(v any) []byte { return mapping.Canonical(v) }
		switch {
		case e.edited[0] && !e.edited[1] && string(got) != string(want(e.src)):
			m.fatalf("the source's edit of %s to %s is lost: the pair holds %s", e.key, want(e.src), got)
		case e.edited[1] && !e.edited[0] && string(got) != string(want(e.tgt)):
			m.fatalf("the target's edit of %s to %s is lost: the pair holds %s", e.key, want(e.tgt), got)
		case e.edited[0] && e.edited[1]:
			winners := map[string][]byte{"source": want(e.src), "target": want(e.tgt)}
			if w, ok := winners[m.conflict]; ok && string(got) != string(w) && string(want(e.src)) != string(want(e.tgt)) {
				m.fatalf("both sides edited %s (%s, %s): the pair holds %s, want the %s's", e.key, want(e.src), want(e.tgt), got, m.conflict)
			}
			if string(got) != string(want(e.src)) && string(got) != string(want(e.tgt)) {
				m.fatalf("both sides edited %s (%s, %s): the pair holds %s, neither", e.key, want(e.src), want(e.tgt), got)
			}
		}
	}
	for _, side := range []Side{Source, Target} {
		codes := map[any]string{}
		code := map[Side]string{Source: "code", Target: "sku"}[side]
		for id, rec := range m.recs[side] {
			if m.linkOf(side, id) == nil {
				m.fatalf("%s record %s is not linked after the run", side, id)
			}
			if was, dup := codes[rec[code]]; dup {
				m.fatalf("%s records %s and %s both hold %s %v: a duplicate", side, was, id, code, rec[code])
			}
			codes[rec[code]] = id
		}
	}
	if len(m.recs[Source]) != len(m.links) || len(m.recs[Target]) != len(m.links) {
		m.fatalf("%d source and %d target records for %d links", len(m.recs[Source]), len(m.recs[Target]), len(m.links))
	}
	if n := m.run(); n > 0 {
		m.fatalf("the run after the run made %d writes, links or creates; want none", n)
	}
}

// targetPath is the target path of the property of key.
func (m *planModel) targetPath(key string) string {
	for _, p := range m.pl.f.Properties {
		if p.Key() == key {
			return p.Target
		}
	}
	m.fatalf("no property %s", key)
	return ""
}
