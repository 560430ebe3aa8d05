package sync

// The planner's decisions about records without a link, and about references, as table tests
// without a database: which record a record is linked with, and what a reference asks for.

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
)

// Linking by merge criteria (docs/semantics.md §3.1) as a table: the records of a batch
// without a link, in order, and the unlinked candidates the read brought of each side; per
// record, the record it is linked with, or why it is not. A record linked leaves the
// candidates of the records after it, as match takes it out.
func TestPlanLink(t *testing.T) {
	text := strings.ReplaceAll(planFlowYAML, "%CONFLICT%", "newest")
	text = strings.Replace(text, "      - [{source: code, target: sku}]\n",
		"      - [{source: code, target: sku}]\n      - [{source: name, target: title}]\n", 1)
	pl := newPlanner(planFlowWith(t, text), nil, nil, nil)
	src := func(id, code, name string) connector.Record {
		return planRecord(t, id, fmt.Sprintf(`{"id": %s, "code": %q, "name": %q}`, id, code, name))
	}
	tgt := func(id, sku, title string) connector.Record {
		return planRecord(t, id, fmt.Sprintf(`{"id": %q, "sku": %q, "title": %q}`, id, sku, title))
	}
	index := func(side Side, recs ...connector.Record) *mergeIndex {
		idx := newMergeIndex(len(pl.f.Merge))
		for _, r := range recs {
			idx.add(r, pl.f.Merge, side)
		}
		return idx
	}
	type want struct{ id, err string }
	for _, tc := range []struct {
		name    string
		batch   []connector.Record // source records without a link
		targets []connector.Record // the unlinked target candidates
		sources []connector.Record // the unlinked source candidates (the batch among them)
		want    []want
	}{
		{name: "one match", batch: []connector.Record{src("1", "C1", "Tea")},
			targets: []connector.Record{tgt("t1", "C1", "Black tea"), tgt("t2", "C2", "Tea")},
			want:    []want{{id: "t1"}}},
		{name: "none: the create policy decides", batch: []connector.Record{src("1", "C9", "Mate")},
			targets: []connector.Record{tgt("t1", "C1", "Tea")}, want: []want{{}}},
		{name: "no candidates at all", batch: []connector.Record{src("1", "C1", "Tea")}, want: []want{{}}},
		{name: "the second alternative matches when the first matches none", batch: []connector.Record{src("1", "C9", "Tea")},
			targets: []connector.Record{tgt("t1", "C1", "Tea")}, want: []want{{id: "t1"}}},
		{name: "an empty value never matches", batch: []connector.Record{src("1", "", "Tea")},
			targets: []connector.Record{tgt("t1", "", "Coffee")}, want: []want{{}}},
		{name: "two matches: the record is ambiguous (a dead letter)", batch: []connector.Record{src("1", "C1", "Tea")},
			targets: []connector.Record{tgt("t1", "C1", "A"), tgt("t2", "C1", "B")},
			want:    []want{{err: "matches 2 Thing records by the merge criteria (t1, t2); make the criteria stricter or the records distinct"}}},
		{name: "the first alternative's ambiguity stops the search", batch: []connector.Record{src("1", "C1", "Tea")},
			targets: []connector.Record{tgt("t1", "C1", "A"), tgt("t2", "C1", "B"), tgt("t3", "C3", "Tea")},
			want:    []want{{err: "matches 2 Thing records by the merge criteria (t1, t2); make the criteria stricter or the records distinct"}}},
		{name: "two records match one: its ambiguity (this one waits)", batch: []connector.Record{src("1", "C1", "Tea")},
			targets: []connector.Record{tgt("t1", "C1", "A")}, sources: []connector.Record{src("1", "C1", "Tea"), src("2", "C1", "Mate")},
			want: []want{{err: "matches record t1, which 2 Item records match by the merge criteria (1, 2); make the criteria stricter or the records distinct"}}},
		{name: "a match already linked to another record of the batch is not linked again",
			batch:   []connector.Record{src("1", "C1", "Tea"), src("2", "C2", "Tea")},
			targets: []connector.Record{tgt("t1", "C1", "Tea")},
			want:    []want{{id: "t1"}, {}}},
	} {
		others, same := index(Target, tc.targets...), index(Source, tc.sources...)
		for i, rec := range tc.batch {
			found, err := pl.linkTaking(Source, rec, others, same)
			var got want
			if found != nil {
				got.id = found.ID
			}
			if err != nil {
				got.err = err.Error()
			}
			if got != tc.want[i] {
				t.Errorf("%s: record %s: linked with %q, error %q; want %q, %q", tc.name, rec.ID, got.id, got.err, tc.want[i].id, tc.want[i].err)
			}
		}
	}
}

// planRefs is the lookup of references of the planner's tests: the links it holds, and the
// records their flow creates on reference, which it answers as the runner's lookup does.
type planRefs struct {
	linked   map[string]string // source id → target id
	toCreate map[string]bool   // source ids
}

func (r planRefs) TargetID(f *mapping.Flow, id string) (string, bool, error) {
	if t, ok := r.linked[id]; ok {
		return t, true, nil
	}
	if r.toCreate[id] {
		return "", false, &referenceToCreate{flow: f, id: id, side: Source}
	}
	return "", false, nil
}

func (r planRefs) SourceID(f *mapping.Flow, id string) (string, bool, error) {
	for s, t := range r.linked {
		if t == id {
			return s, true, nil
		}
	}
	return "", false, nil
}

// References (docs/semantics.md §3.4): a reference is translated through the links of the
// flow it names; one not linked makes the record wait; one its flow creates on reference makes
// the plan of the record that apply is to create it first (refs.withReferences), and nothing
// else: the planner creates nothing.
func TestPlanReferences(t *testing.T) {
	text := strings.ReplaceAll(planFlowYAML, "%CONFLICT%", "newest")
	text = strings.ReplaceAll(text, "%EXTRA%", "    create: {target: referenced, source: never}\n")
	text = strings.Replace(text, "      - {source: code, target: sku}\n", "      - {source: code, target: sku}\n      - {source: parent, target: parent, ref: items}\n", 1)
	f := planFlowWith(t, text)
	refs := planRefs{linked: map[string]string{"5": "t5"}, toCreate: map[string]bool{"7": true}}
	pl := newPlanner(f, refs, nil, nil)
	base := planBase(t, pl, planRecord(t, "1", planSrc0), planRecord(t, "t1", planTgt0))
	for _, tc := range []struct {
		name, parent string
		wantTgt      string
		wantErr      string
		wantCreate   string // the id of the record apply is to create first
	}{
		{name: "a reference linked: its id is translated", parent: "5", wantTgt: `{"parent":"t5"}`},
		{name: "a reference not linked: the record waits", parent: "6", wantErr: "refers to 6, which flow items has not linked yet"},
		{name: "a reference its flow creates on reference: apply is to create it first", parent: "7", wantCreate: "7"},
		{name: "no reference", parent: "null"},
	} {
		src := planRecord(t, "1", edit(t, planSrc0, `{"parent": `+tc.parent+`}`))
		m, err := pl.merge(src, planRecord(t, "t1", planTgt0), base)
		var ref *referenceToCreate
		switch {
		case tc.wantCreate != "":
			if !errors.As(err, &ref) || ref.id != tc.wantCreate || ref.side != Source || ref.flow != f {
				t.Errorf("%s: %v, want the create of source record %s of flow items first", tc.name, err, tc.wantCreate)
			}
			if mapping.IsWaiting(err) {
				t.Errorf("%s: the record waits; want it planned again after the create", tc.name)
			}
		case tc.wantErr != "":
			if err == nil || err.Error() != tc.wantErr || !mapping.IsWaiting(err) {
				t.Errorf("%s: %v, want the wait %q", tc.name, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		}
		if err == nil {
			if got := canon(m.tgtPatch); got != tc.wantTgt {
				t.Errorf("%s: target patch %s, want %s", tc.name, got, tc.wantTgt)
			}
		}
	}
}
