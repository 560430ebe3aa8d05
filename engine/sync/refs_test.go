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
