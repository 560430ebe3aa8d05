package sync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// The translations cached in a run are bounded, whatever the number of records linked.
func TestRefCacheIsBounded(t *testing.T) {
	rf := newRefs(&Runner{})
	f := &mapping.Flow{}
	rf.referenced[f] = true
	for i := 0; i < 3*maxRefCache+7; i++ {
		rf.remember(f, fmt.Sprint("s", i), fmt.Sprint("t", i))
		if n := len(rf.toTarget[f]); n > maxRefCache || len(rf.toSource[f]) != n {
			t.Fatalf("after %d links the cache holds %d and %d translations, want at most %d each", i+1, n, len(rf.toSource[f]), maxRefCache)
		}
	}
	if id, ok := rf.toTarget[f][fmt.Sprint("s", 3*maxRefCache+6)]; !ok || id != fmt.Sprint("t", 3*maxRefCache+6) {
		t.Errorf("the last translation is not cached: %q, %v", id, ok)
	}
}

// Translations through a flow that no property refers to are not cached: nothing would ask.
func TestRefCacheOnlyForReferencedFlows(t *testing.T) {
	rf := newRefs(&Runner{})
	f := &mapping.Flow{}
	rf.remember(f, "s1", "t1")
	if len(rf.toTarget[f]) != 0 || len(rf.toSource[f]) != 0 {
		t.Errorf("an unreferenced flow's translations were cached: %v, %v", rf.toTarget[f], rf.toSource[f])
	}
}

// linkStore is a link state that holds the given links and nothing else: any other read, or a
// transaction, is a test failure (the embedded nil interface panics).
type linkStore struct {
	state.Store
	bySource map[string]*state.Link // by flow and source id: flow+"/"+id
}

func (s linkStore) LinksBySource(_ context.Context, flow string, ids []string) (map[string]*state.Link, error) {
	out := map[string]*state.Link{}
	for _, id := range ids {
		if l := s.bySource[flow+"/"+id]; l != nil {
			out[id] = l
		}
	}
	return out, nil
}

func (s linkStore) LinksByTarget(_ context.Context, flow string, ids []string) (map[string]*state.Link, error) {
	out := map[string]*state.Link{}
	for _, l := range s.bySource {
		if l.Flow == flow && slices.Contains(ids, l.TargetID) {
			out[l.TargetID] = l
		}
	}
	return out, nil
}

// A lookup of a record that its flow creates on reference reads links and nothing else: it
// answers that the record is to be created (a *referenceToCreate, which apply acts on), and
// neither reads a system nor creates (the flow run has no connections: either would panic).
// A flow that never creates answers "not linked", a linked record its partner.
func TestRefsAnswerWithoutCreating(t *testing.T) {
	created := func(create string) *mapping.Flow {
		f := &mapping.Flow{Config: &config.Flow{ID: config.Str{Value: "items"}}}
		f.CreateTarget, f.CreateSource = create, config.CreateNever
		return f
	}
	store := linkStore{bySource: map[string]*state.Link{"items/1": {Flow: "items", SourceID: "1", TargetID: "t1"}}}
	for _, tc := range []struct {
		name, create, id string
		wantID           string
		wantOK           bool
		wantCreate       bool
	}{
		{"linked", "referenced", "1", "t1", true, false},
		{"not linked, created on reference", "referenced", "2", "", false, true},
		{"not linked, never created", "never", "2", "", false, false},
	} {
		f := created(tc.create)
		rf := newRefs(&Runner{State: store})
		rf.runs[f] = &flowRun{r: &Runner{State: store}, f: f}
		id, ok, err := rf.TargetID(f, tc.id)
		var ref *referenceToCreate
		if id != tc.wantID || ok != tc.wantOK || errors.As(err, &ref) != tc.wantCreate || (err != nil && ref == nil) {
			t.Errorf("%s: %q, %v, %v; want %q, %v, to create: %v", tc.name, id, ok, err, tc.wantID, tc.wantOK, tc.wantCreate)
		}
		if ref != nil && (ref.flow != f || ref.id != tc.id || ref.side != Source) {
			t.Errorf("%s: to create %+v, want record %s of the source of flow items", tc.name, ref, tc.id)
		}
	}
}
