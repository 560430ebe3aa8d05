package sync

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/state"
)

// The filter of a fresh flow's linked ids holds every id added, whatever their number (its
// levels grow with them), and takes few others for held.
func TestLinkFilterHoldsEveryIDAdded(t *testing.T) {
	f := newLinkFilter(0)
	const n = 100000
	for i := range n {
		f.add(fmt.Sprintf("P-%d", i))
	}
	added := make([]string, n)
	for i := range added {
		added[i] = fmt.Sprintf("P-%d", i)
	}
	if held := f.maybeHeld(added); len(held) != n {
		t.Fatalf("%d ids were added and the filter holds %d of them", n, len(held))
	}
	if len(f.levels) < 4 {
		t.Errorf("%d ids in %d levels: the levels do not grow with the ids", n, len(f.levels))
	}
	var bits int
	for _, l := range f.levels {
		bits += len(l.blocks) * 512
	}
	if per := float64(bits) / n; per > 3*filterBitsPer {
		t.Errorf("%.1f bits per id, want about %d", per, filterBitsPer)
	}
	others := make([]string, n)
	for i := range others {
		others[i] = fmt.Sprintf("Q-%d", i)
	}
	if rate := float64(len(f.maybeHeld(others))) / n; rate > 0.10 {
		t.Errorf("%.1f %% of ids never added are taken for held, want under 10 %%", 100*rate)
	}
}

// A filter sized for the ids a run expects holds them in one level, and takes under 3 % of
// other ids for held.
func TestLinkFilterSizedForTheIDsExpected(t *testing.T) {
	const n = 300000
	f := newLinkFilter(n)
	added := make([]string, n)
	for i := range added {
		added[i] = fmt.Sprintf("P-%d", i)
		f.add(added[i])
	}
	if held := f.maybeHeld(added); len(held) != n {
		t.Fatalf("%d ids were added and the filter holds %d of them", n, len(held))
	}
	if len(f.levels) != 1 {
		t.Errorf("%d ids expected and added in %d levels, want 1", n, len(f.levels))
	}
	others := make([]string, n)
	for i := range others {
		others[i] = fmt.Sprintf("Q-%d", i)
	}
	if rate := float64(len(f.maybeHeld(others))) / n; rate > 0.03 {
		t.Errorf("%.1f %% of ids never added are taken for held, want under 3 %%", 100*rate)
	}
	f.add("one more") // beyond what was expected: a level more
	if len(f.levels) != 2 || len(f.maybeHeld([]string{"one more"})) != 1 {
		t.Errorf("an id beyond those expected: %d levels, held %v", len(f.levels), f.maybeHeld([]string{"one more"}))
	}
}

// countingStore is a link state whose lookups by id are recorded.
type countingStore struct {
	linkStore
	asked []string
}

func (s *countingStore) LinksBySource(ctx context.Context, flow string, ids []string) (map[string]*state.Link, error) {
	s.asked = append(s.asked, ids...)
	return s.linkStore.LinksBySource(ctx, flow, ids)
}

func (s *countingStore) LinksByTarget(ctx context.Context, flow string, ids []string) (map[string]*state.Link, error) {
	s.asked = append(s.asked, ids...)
	return s.linkStore.LinksByTarget(ctx, flow, ids)
}

// A flow that had no link when the run began asks the link state only for the ids whose links
// the run wrote (through its transactions, PutLink or PutLinks); any other flow asks for every
// id.
func TestFreshFlowLooksUpOnlyTheIDsItLinked(t *testing.T) {
	f := planFlow(t, "newest")
	l1 := &state.Link{Flow: f.ID(), SourceID: "S1", TargetID: "T1"}
	l2 := &state.Link{Flow: f.ID(), SourceID: "S2", TargetID: "T2"}
	other := &state.Link{Flow: "another", SourceID: "S3", TargetID: "T3"}
	st := &countingStore{linkStore: linkStore{bySource: map[string]*state.Link{
		f.ID() + "/S1": l1, f.ID() + "/S2": l2, "another/S3": other,
	}}}
	fr := &flowRun{r: &Runner{State: st}, f: f, plan: newPlanner(f, nil, nil, nil), linkedNow: newLinkFilters(0)}
	tx := trackedTx{noTx{}, fr}
	if err := tx.PutLink(l1); err != nil {
		t.Fatal(err)
	}
	if err := tx.PutLinks([]*state.Link{l2, other}); err != nil {
		t.Fatal(err)
	}
	ids := []string{"S0", "S1", "S2", "S3", "S4"}
	links, err := fr.linksOf(context.Background(), Source, ids)
	if err != nil {
		t.Fatal(err)
	}
	if links["S1"] != l1 || links["S2"] != l2 || len(links) != 2 {
		t.Errorf("links of %v: %v, want S1 and S2", ids, links)
	}
	if want := []string{"S1", "S2"}; !slices.Equal(st.asked, want) {
		t.Errorf("the link state was asked for %v, want %v", st.asked, want)
	}
	st.asked = nil
	if _, err := fr.linksOf(context.Background(), Target, []string{"T1", "T3", "T9"}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"T1"}; !slices.Equal(st.asked, want) {
		t.Errorf("by target, the link state was asked for %v, want %v (T3 is another flow's)", st.asked, want)
	}

	st.asked = nil
	fr.linkedNow = nil // a flow that had links
	if _, err := fr.linksOf(context.Background(), Source, ids); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st.asked, ids) {
		t.Errorf("a flow that had links asked the link state for %v, want %v", st.asked, ids)
	}
}

// noTx is a transaction that accepts link writes and does nothing.
type noTx struct{ state.Tx }

func (noTx) PutLink(*state.Link) error       { return nil }
func (noTx) PutLinks([]*state.Link) error    { return nil }
func (noTx) DeleteLink(string, string) error { return nil }

// BenchmarkLinkFilterBatch is the filter's part of a fresh flow's lookup of a batch of 1,000
// ids that have no link, with 1,000,000 links written: in a chain of levels from the smallest
// (expect=0), or in the one level of a run that knew how many to expect.
func BenchmarkLinkFilterBatch(b *testing.B) {
	for _, expect := range []int{0, 1000000} {
		b.Run(fmt.Sprint("expect=", expect), func(b *testing.B) { benchLinkFilterBatch(b, expect) })
	}
}

func benchLinkFilterBatch(b *testing.B, expect int) {
	lf := newLinkFilters(expect)
	for i := range 1000000 {
		lf.source.add(fmt.Sprintf("P-%d", i))
	}
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("N-%d", i)
	}
	b.ResetTimer()
	for b.Loop() {
		lf.maybeLinked(Source, ids)
	}
}
