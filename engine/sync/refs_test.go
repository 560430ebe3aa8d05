package sync

import (
	"fmt"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/mapping"
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
