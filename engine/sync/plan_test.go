package sync

// The merge rules of the contract (docs/semantics.md §3) as table tests of the planner: the
// records of a linked pair and the base of its link in, the patches per side, the conflicts
// and the new base out, without a database.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// The systems of the planner's tests: a shop's items and a store's things, whose lines carry
// ids on both sides (child rows, JSON elements with their own id) and whose tags carry none.
var planFiles = map[string]string{
	"shop.yaml": `system: shop
name: Shop
connector: sqlite
path: shop.db
entities:
  Item: {table: items, id: id, updated: updated_at, schema: item.json}
`,
	"store.yaml": `system: store
name: Store
connector: sqlite
path: store.db
entities:
  Thing: {table: things, id: id, updated: modified_at, schema: thing.json}
`,
	"item.json": `{"type": "object", "properties": {
  "id": {"type": "integer"}, "code": {"type": "string"}, "name": {"type": ["string", "null"]}, "parent": {"type": ["integer", "null"]},
  "qty": {"type": ["integer", "null"]}, "note": {"type": ["string", "null"]},
  "lines": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "integer"}, "sku": {"type": "string"}, "qty": {"type": "integer"}}}},
  "tags": {"type": "array", "items": {"type": "object", "properties": {"tag": {"type": "string"}, "n": {"type": "integer"}}}},
  "updated_at": {"type": ["string", "null"], "format": "date-time"}}}`,
	"thing.json": `{"type": "object", "properties": {
  "id": {"type": "string"}, "sku": {"type": "string"}, "title": {"type": ["string", "null"]}, "parent": {"type": ["string", "null"]},
  "amount": {"type": ["integer", "null"]}, "note": {"type": ["string", "null"]},
  "lines": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"}, "sku": {"type": "string"}, "qty": {"type": "integer"}}}},
  "tags": {"type": "array", "items": {"type": "object", "properties": {"tag": {"type": "string"}, "n": {"type": "integer"}}}},
  "modified_at": {"type": ["string", "null"], "format": "date-time"}}}`,
}

// planFlowYAML is the flow of the tests, with its conflict policy in %CONFLICT%.
const planFlowYAML = `dataflow: plan
source: shop
target: store
flows:
  - id: items
    source: Item
    target: Thing
    sync: both
    conflict: %CONFLICT%
%EXTRA%    merge:
      - [{source: code, target: sku}]
    properties:
      - {source: code, target: sku}
      - {source: name, target: title}
      - {source: qty, target: amount}
      - {source: note, target: note, sync: to-target}
      - source: lines
        target: lines
        properties:
          - {source: sku, target: sku}
          - {source: qty, target: qty}
      - source: tags
        target: tags
        properties:
          - {source: tag, target: tag}
          - {source: n, target: n}
`

// planFlow compiles the tests' flow with the given conflict policy.
func planFlow(t *testing.T, conflict string) *mapping.Flow {
	t.Helper()
	return planFlowWith(t, strings.ReplaceAll(planFlowYAML, "%CONFLICT%", conflict))
}

// planFlowWith compiles the dataflow file text over the tests' systems.
func planFlowWith(t *testing.T, text string) *mapping.Flow {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"flow.yaml": strings.ReplaceAll(text, "%EXTRA%", "")}
	for name, text := range planFiles {
		files[name] = text
	}
	var paths []string
	for _, name := range []string{"shop.yaml", "store.yaml", "item.json", "thing.json", "flow.yaml"} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(files[name]), 0o644); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, ".yaml") {
			paths = append(paths, path)
		}
	}
	eng, err := engine.New(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	res, err := eng.Load(context.Background(), paths)
	if err != nil {
		t.Fatal(err)
	}
	if res.Diagnostics.HasErrors() {
		for _, d := range res.Diagnostics {
			t.Error(d)
		}
		t.Fatal("the tests' flow does not load")
	}
	return res.Project.Dataflows[0].Flows[0]
}

// planRecord makes a record from JSON.
func planRecord(t *testing.T, id, data string) connector.Record {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("record %s: %v", id, err)
	}
	return connector.Record{ID: id, Data: normalizeNumbers(m).(map[string]any)}
}

// normalizeNumbers turns JSON numbers into the connectors' int64 and float64.
func normalizeNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, e := range v {
			v[k] = normalizeNumbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = normalizeNumbers(e)
		}
	}
	return v
}

// planBase is the base of a link between two records that are in sync, as a write leaves it.
func planBase(t *testing.T, pl *planner, src, tgt connector.Record) map[string]state.Base {
	t.Helper()
	base, err := pl.baseOf(src, tgt, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return base
}

// canon writes a patch as canonical JSON, "" for none.
func canon(p map[string]any) string {
	if len(p) == 0 {
		return ""
	}
	return string(mapping.Canonical(p))
}

const (
	planSrc0 = `{"id": 1, "code": "C1", "name": "Tea", "qty": 3, "note": "n", "updated_at": "2025-01-01T10:00:00Z",
		"lines": [{"id": 10, "sku": "A", "qty": 1}, {"id": 11, "sku": "B", "qty": 2}], "tags": [{"tag": "x", "n": 1}, {"tag": "y", "n": 2}]}`
	planTgt0 = `{"id": "t1", "sku": "C1", "title": "Tea", "amount": 3, "note": "n", "modified_at": "2025-01-01T10:00:00Z",
		"lines": [{"id": "l10", "sku": "A", "qty": 1}, {"id": "l11", "sku": "B", "qty": 2}], "tags": [{"tag": "x", "n": 1}, {"tag": "y", "n": 2}]}`
)

// edit returns the JSON of a record with the top-level values of with replaced.
func edit(t *testing.T, data string, with string) string {
	t.Helper()
	var m, w map[string]any
	if err := json.Unmarshal([]byte(data), &m); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(with), &w); err != nil {
		t.Fatal(err)
	}
	for k, v := range w {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPlanMergeRules(t *testing.T) {
	type row struct {
		name     string
		conflict string // the flow's policy; "" is newest
		first    bool   // no base: the first merge of a pair linked by merge criteria
		src, tgt string // edits of the records in sync (top-level values replaced)
		// The base is taken from the records in sync, or from baseSrc/baseTgt when set.
		baseSrc, baseTgt string
		wantTgt, wantSrc string // the patches, canonical JSON ("" for none)
		conflicts        int
	}
	rows := []row{
		{name: "nothing changed", wantTgt: "", wantSrc: ""},
		{name: "the source changed", src: `{"name": "Green tea"}`, wantTgt: `{"title":"Green tea"}`},
		{name: "the target changed", tgt: `{"title": "Black tea", "amount": 7}`, wantSrc: `{"name":"Black tea","qty":7}`},
		{name: "both changed different properties", src: `{"name": "Green tea"}`, tgt: `{"amount": 9}`,
			wantTgt: `{"title":"Green tea"}`, wantSrc: `{"qty":9}`},
		{name: "both changed one property, the source later (newest)",
			src: `{"name": "S", "updated_at": "2025-01-02T00:00:00Z"}`, tgt: `{"title": "T", "modified_at": "2025-01-01T12:00:00Z"}`,
			wantTgt: `{"title":"S"}`, conflicts: 1},
		{name: "both changed one property, the target later (newest)",
			src: `{"name": "S", "updated_at": "2025-01-01T12:00:00Z"}`, tgt: `{"title": "T", "modified_at": "2025-01-02T00:00:00Z"}`,
			wantSrc: `{"name":"T"}`, conflicts: 1},
		{name: "both changed one property at the same instant: the source wins the tie",
			src: `{"name": "S", "updated_at": "2025-01-02T00:00:00Z"}`, tgt: `{"title": "T", "modified_at": "2025-01-02T00:00:00.000Z"}`,
			wantTgt: `{"title":"S"}`, conflicts: 1},
		{name: "both changed, a stamp missing: the source wins",
			src: `{"name": "S", "updated_at": null}`, tgt: `{"title": "T", "modified_at": "2025-01-02T00:00:00Z"}`,
			wantTgt: `{"title":"S"}`, conflicts: 1},
		{name: "both changed, conflict: target, the source later", conflict: "target",
			src: `{"name": "S", "updated_at": "2025-01-03T00:00:00Z"}`, tgt: `{"title": "T"}`,
			wantSrc: `{"name":"T"}`, conflicts: 1},
		{name: "both changed, conflict: source, the target later", conflict: "source",
			src: `{"name": "S"}`, tgt: `{"title": "T", "modified_at": "2025-01-03T00:00:00Z"}`,
			wantTgt: `{"title":"S"}`, conflicts: 1},
		{name: "both changed to the same value", src: `{"name": "Same"}`, tgt: `{"title": "Same"}`},
		{name: "the source cleared a value", src: `{"name": null}`, wantTgt: `{"title":null}`},
		{name: "the target cleared a value", tgt: `{"amount": null}`, wantSrc: `{"qty":null}`},
		{name: "first merge: equal values", first: true},
		{name: "first merge: a value beats an empty one, to the target", first: true, tgt: `{"title": null}`, wantTgt: `{"title":"Tea"}`},
		{name: "first merge: a value beats an empty one, to the source", first: true, src: `{"qty": null}`, wantSrc: `{"qty":3}`},
		{name: "first merge: both hold different values, the policy decides", first: true,
			src: `{"name": "S", "updated_at": "2025-01-01T09:00:00Z"}`, tgt: `{"title": "T"}`, wantSrc: `{"name":"T"}`, conflicts: 1},
		{name: "a to-target property edited in the target gets the source's value back", tgt: `{"note": "edited"}`, wantTgt: `{"note":"n"}`},
		{name: "a to-target property edited in the source flows", src: `{"note": "new"}`, wantTgt: `{"note":"new"}`},
		{name: "echo after reformat: the base holds the value as the target stored it",
			tgt: `{"title": "TEA"}`, baseTgt: `{"title": "TEA"}`},
		{name: "lists by id: an element changed in the source",
			src:     `{"lines": [{"id": 10, "sku": "A", "qty": 5}, {"id": 11, "sku": "B", "qty": 2}]}`,
			wantTgt: `{"lines":[{"id":"l10","qty":5,"sku":"A"},{"id":"l11","qty":2,"sku":"B"}]}`},
		{name: "lists by id: elements reordered in the target and one changed in the source",
			src:     `{"lines": [{"id": 10, "sku": "A", "qty": 5}, {"id": 11, "sku": "B", "qty": 2}]}`,
			tgt:     `{"lines": [{"id": "l11", "sku": "B", "qty": 2}, {"id": "l10", "sku": "A", "qty": 1}]}`,
			wantTgt: `{"lines":[{"id":"l11","qty":2,"sku":"B"},{"id":"l10","qty":5,"sku":"A"}]}`},
		{name: "lists by id: an element added in the target, another changed in the source",
			src:     `{"lines": [{"id": 10, "sku": "A", "qty": 5}, {"id": 11, "sku": "B", "qty": 2}]}`,
			tgt:     `{"lines": [{"id": "l10", "sku": "A", "qty": 1}, {"id": "l11", "sku": "B", "qty": 2}, {"id": "l12", "sku": "C", "qty": 3}]}`,
			wantTgt: `{"lines":[{"id":"l10","qty":5,"sku":"A"},{"id":"l11","qty":2,"sku":"B"},{"id":"l12","qty":3,"sku":"C"}]}`,
			wantSrc: `{"lines":[{"id":10,"qty":5,"sku":"A"},{"id":11,"qty":2,"sku":"B"},{"qty":3,"sku":"C"}]}`},
		{name: "lists by id: the same element's quantity changed on both sides (newest: the target)",
			src:     `{"lines": [{"id": 10, "sku": "A", "qty": 5}, {"id": 11, "sku": "B", "qty": 2}], "updated_at": "2025-01-01T11:00:00Z"}`,
			tgt:     `{"lines": [{"id": "l10", "sku": "A", "qty": 6}, {"id": "l11", "sku": "B", "qty": 2}], "modified_at": "2025-01-01T12:00:00Z"}`,
			wantSrc: `{"lines":[{"id":10,"qty":6,"sku":"A"},{"id":11,"qty":2,"sku":"B"}]}`, conflicts: 1},
		{name: "lists without ids: an element removed in the source",
			src:     `{"tags": [{"tag": "y", "n": 2}]}`,
			wantTgt: `{"tags":[{"n":2,"tag":"y"}]}`},
		{name: "lists without ids: an element changed in the target, another added in the source",
			src:     `{"tags": [{"tag": "x", "n": 1}, {"tag": "y", "n": 2}, {"tag": "z", "n": 3}]}`,
			tgt:     `{"tags": [{"tag": "x", "n": 9}, {"tag": "y", "n": 2}]}`,
			wantTgt: `{"tags":[{"n":9,"tag":"x"},{"n":2,"tag":"y"},{"n":3,"tag":"z"}]}`,
			wantSrc: `{"tags":[{"n":9,"tag":"x"},{"n":2,"tag":"y"},{"n":3,"tag":"z"}]}`},
	}
	flows := map[string]*mapping.Flow{}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			conflict := r.conflict
			if conflict == "" {
				conflict = "newest"
			}
			if flows[conflict] == nil {
				flows[conflict] = planFlow(t, conflict)
			}
			pl := newPlanner(flows[conflict], nil, nil, nil)
			var bases map[string]state.Base
			if !r.first {
				bs, bt := planSrc0, planTgt0
				if r.baseSrc != "" {
					bs = edit(t, bs, r.baseSrc)
				}
				if r.baseTgt != "" {
					bt = edit(t, bt, r.baseTgt)
				}
				bases = planBase(t, pl, planRecord(t, "1", bs), planRecord(t, "t1", bt))
			}
			src, tgt := planSrc0, planTgt0
			if r.src != "" {
				src = edit(t, src, r.src)
			}
			if r.tgt != "" {
				tgt = edit(t, tgt, r.tgt)
			}
			m, err := pl.merge(planRecord(t, "1", src), planRecord(t, "t1", tgt), bases)
			if err != nil {
				t.Fatal(err)
			}
			if got := canon(m.tgtPatch); got != r.wantTgt {
				t.Errorf("target patch %s, want %s", got, r.wantTgt)
			}
			if got := canon(m.srcPatch); got != r.wantSrc {
				t.Errorf("source patch %s, want %s", got, r.wantSrc)
			}
			if m.conflicts != r.conflicts {
				t.Errorf("%d conflicts, want %d", m.conflicts, r.conflicts)
			}
		})
	}
}

// After the patches are written, the new base is what both records then hold, and the next
// merge of the pair plans nothing: no write echoes back.
func TestPlanSettles(t *testing.T) {
	pl := newPlanner(planFlow(t, "newest"), nil, nil, nil)
	src0, tgt0 := planRecord(t, "1", planSrc0), planRecord(t, "t1", planTgt0)
	base := planBase(t, pl, src0, tgt0)
	src := planRecord(t, "1", edit(t, planSrc0, `{"name": "Green tea", "lines": [{"id": 10, "sku": "A", "qty": 4}, {"id": 11, "sku": "B", "qty": 2}]}`))
	tgt := planRecord(t, "t1", edit(t, planTgt0, `{"amount": 8, "tags": [{"tag": "x", "n": 1}]}`))
	m, err := pl.merge(src, tgt, base)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range m.srcPatch {
		src.Data[k] = v
	}
	for k, v := range m.tgtPatch {
		tgt.Data[k] = v
	}
	if base, err = pl.baseOf(src, tgt, m.hints, nil, base); err != nil {
		t.Fatal(err)
	}
	again, err := pl.merge(src, tgt, base)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.srcPatch) > 0 || len(again.tgtPatch) > 0 || again.conflicts > 0 {
		t.Errorf("the merge after the writes plans %s to the source, %s to the target, %d conflicts; want nothing",
			canon(again.srcPatch), canon(again.tgtPatch), again.conflicts)
	}
	pl.withElements(again.seen, src.Data, tgt.Data, again.hints, base) // as write.go keeps a base nothing was written for
	if !reflect.DeepEqual(again.seen, base) {
		t.Errorf("the values seen after the writes differ from the base")
	}
}

// The circuit breaker of deletions (docs/semantics.md §3): a run changes at most
// Options.MaxDeleteShare of a flow's links for records gone on one side (at least one), the
// links of approved changes left out of the count.
func TestPlanDeleteBreaker(t *testing.T) {
	vanished := func(survivors ...Side) []gone {
		var out []gone
		for i, s := range survivors {
			out = append(out, gone{link: &state.Link{SourceID: fmt.Sprint("s", i), TargetID: fmt.Sprint("t", i)}, survivor: s})
		}
		return out
	}
	many := func(n int, s Side) []Side {
		out := make([]Side, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		plan     []gone
		total    int
		share    float64
		approved map[string]bool
		want     deleteHold
	}{
		{"one record gone of 100 at 10%", vanished(Source), 100, 0.1, nil, deleteHold{side: Target, missing: 1, limit: 10}},
		{"ten gone of 100 at 10%: at the limit", vanished(many(10, Source)...), 100, 0.1, nil, deleteHold{side: Target, missing: 10, limit: 10}},
		{"eleven gone of 100 at 10%: held", vanished(many(11, Source)...), 100, 0.1, nil, deleteHold{side: Target, missing: 11, limit: 10, held: true}},
		{"source records gone: the side is the source", vanished(many(11, Target)...), 100, 0.1, nil, deleteHold{side: Source, missing: 11, limit: 10, held: true}},
		{"gone on both sides count for each", vanished(many(11, "")...), 100, 0.1, nil, deleteHold{side: Source, missing: 11, limit: 10, held: true}},
		{"one may always go", vanished(Source), 3, 0.1, nil, deleteHold{side: Target, missing: 1, limit: 1}},
		{"two of three at 10%: held", vanished(Source, Source), 3, 0.1, nil, deleteHold{side: Target, missing: 2, limit: 1, held: true}},
		{"approved links are left out", vanished(many(11, Source)...), 100, 0.1, map[string]bool{"s0": true},
			deleteHold{side: Target, missing: 10, limit: 10}},
		{"a share of 1 never holds", vanished(many(5, Source)...), 5, 1, nil, deleteHold{side: Target, missing: 5, limit: 5}},
	} {
		if got := holdDeletes(tc.plan, tc.total, tc.share, tc.approved); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// A record without a link that no record of the other side matches is created there, waits,
// or is left alone, by the flow's create policy for that side.
func TestPlanUnmatched(t *testing.T) {
	flow := func(create string, merge bool) *mapping.Flow {
		text := strings.ReplaceAll(planFlowYAML, "%CONFLICT%", "newest")
		text = strings.ReplaceAll(text, "%EXTRA%", "    create: "+create+"\n")
		if !merge {
			text = strings.Replace(text, "    merge:\n      - [{source: code, target: sku}]\n", "", 1)
		}
		return planFlowWith(t, text)
	}
	for _, tc := range []struct {
		name   string
		create string
		merge  bool
		side   Side
		want   bool
		wait   string
	}{
		{"create: always, a source record", "{target: always, source: always}", true, Source, true, ""},
		{"create: always, a target record", "{target: always, source: always}", true, Target, true, ""},
		{"create: never, a source record waits", "{target: never, source: never}", true, Source, false,
			"no Thing matches the merge criteria; the flow never creates one"},
		{"create: never without merge criteria", "{target: never, source: never}", false, Source, false,
			"no Thing to link with; the flow never creates one"},
		{"create: never, a target record is left alone", "{target: never, source: never}", true, Target, false, ""},
		{"create: referenced waits for a reference", "{target: referenced, source: never}", true, Source, false, ""},
	} {
		pl := newPlanner(flow(tc.create, tc.merge), nil, nil, nil)
		if create, wait := pl.unmatched(tc.side); create != tc.want || wait != tc.wait {
			t.Errorf("%s: create %v, wait %q; want %v, %q", tc.name, create, wait, tc.want, tc.wait)
		}
	}
}

// sameElements compares two canonical values; lists as sets of elements, since a side keeps an
// order of its own (child rows by id), which the merge does not take for a change.
func sameElements(a, b []byte) bool {
	var la, lb []any
	if json.Unmarshal(a, &la) != nil || json.Unmarshal(b, &lb) != nil {
		return string(a) == string(b)
	}
	sorted := func(l []any) string {
		out := make([]string, len(l))
		for i, e := range l {
			out[i] = string(mapping.Canonical(e))
		}
		sort.Strings(out)
		return strings.Join(out, "\n")
	}
	return sorted(la) == sorted(lb)
}

// The planner at random: from a pair in sync, random edits on both sides (values changed,
// cleared, list elements changed, added and removed, stamps moved), the plan written to both
// records and the new base taken, every property holds the same value on both sides and the
// next plan writes nothing and finds no conflict: every
// merge settles with both records in sync, whatever the edits. DATAFLOW_PLAN_SEEDS=N runs N
// seeds (default 3000).
func TestPlanSettlesAtRandom(t *testing.T) {
	seeds := planSeeds(t, 3000)
	flows := map[string]*mapping.Flow{}
	for _, c := range []string{"newest", "source", "target"} {
		flows[c] = planFlow(t, c)
	}
	names := []any{"Tea", "Green tea", "TEA", nil, ""}
	failures := 0
	for seed := 1; seed <= seeds; seed++ {
		rng := rand.New(rand.NewSource(int64(seed)))
		conflict := []string{"newest", "source", "target"}[rng.Intn(3)]
		pl := newPlanner(flows[conflict], nil, nil, nil)
		src, tgt := planRecord(t, "1", planSrc0), planRecord(t, "t1", planTgt0)
		base := planBase(t, pl, src, tgt)
		stamp := func() string { return fmt.Sprintf("2025-01-0%dT10:00:00Z", 1+rng.Intn(3)) }
		editSide := func(data map[string]any, name, qty, stampKey string, newID func() any) {
			if rng.Intn(2) == 0 {
				data[name] = names[rng.Intn(len(names))]
			}
			if rng.Intn(3) == 0 {
				data[qty] = []any{int64(rng.Intn(5)), nil}[rng.Intn(2)]
			}
			if rng.Intn(4) == 0 {
				data["note"] = []any{"n", "m", nil}[rng.Intn(3)]
			}
			data[stampKey] = stamp()
			randomListEdits(rng, data, newID)
		}
		srcIDs, tgtIDs := int64(100), 100
		if rng.Intn(4) > 0 {
			editSide(src.Data, "name", "qty", "updated_at", func() any { srcIDs++; return srcIDs })
		}
		if rng.Intn(4) > 0 {
			editSide(tgt.Data, "title", "amount", "modified_at", func() any { tgtIDs++; return fmt.Sprint("l", tgtIDs) })
		}
		m, err := pl.merge(src, tgt, base)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		// The systems store what they are sent; new list elements get their ids.
		for k, v := range m.srcPatch {
			src.Data[k] = mapping.Clone(v)
		}
		for k, v := range m.tgtPatch {
			tgt.Data[k] = mapping.Clone(v)
		}
		for _, rec := range []struct {
			data  map[string]any
			newID func() any
		}{{src.Data, func() any { srcIDs++; return srcIDs }}, {tgt.Data, func() any { tgtIDs++; return fmt.Sprint("l", tgtIDs) }}} {
			lines, _ := rec.data["lines"].([]any)
			for _, e := range lines {
				if el, ok := e.(map[string]any); ok && el["id"] == nil {
					el["id"] = rec.newID()
				}
			}
		}
		if base, err = pl.baseOf(src, tgt, m.hints, nil, base); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		for key, b := range base {
			if b.S != nil && !sameElements(b.S, b.T) {
				t.Errorf("seed %d (conflict: %s): after the writes %s is %s in the source and %s in the target; want them in sync",
					seed, conflict, key, b.S, b.T)
			}
		}
		again, err := pl.merge(src, tgt, base)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if len(again.srcPatch) > 0 || len(again.tgtPatch) > 0 || again.conflicts > 0 {
			t.Errorf("seed %d (conflict: %s): after the writes the next merge plans %s to the source, %s to the target, %d conflicts; want nothing\nsource %s\ntarget %s",
				seed, conflict, canon(again.srcPatch), canon(again.tgtPatch), again.conflicts, mapping.Canonical(src.Data), mapping.Canonical(tgt.Data))
			if failures++; failures == 5 {
				return
			}
		}
	}
}

// randomListEdits edits a record's lists at random: elements removed, changed and added (a
// line with an id from newID, as its system gives it).
func randomListEdits(rng *rand.Rand, data map[string]any, newID func() any) {
	for _, list := range []string{"lines", "tags"} {
		if rng.Intn(2) == 0 {
			continue
		}
		elems, _ := data[list].([]any)
		var next []any
		for _, e := range elems {
			m := mapping.Clone(e).(map[string]any)
			switch rng.Intn(4) {
			case 0:
				continue // removed
			case 1:
				if list == "lines" {
					m["qty"] = int64(rng.Intn(5))
				} else {
					m["n"] = int64(rng.Intn(5))
				}
			}
			next = append(next, m)
		}
		if rng.Intn(2) == 0 {
			if list == "lines" {
				next = append(next, map[string]any{"id": newID(), "sku": fmt.Sprint("N", rng.Intn(3)), "qty": int64(rng.Intn(5))})
			} else {
				next = append(next, map[string]any{"tag": fmt.Sprint("z", rng.Intn(3)), "n": int64(rng.Intn(5))})
			}
		}
		if next == nil {
			next = []any{}
		}
		data[list] = next
	}
}
