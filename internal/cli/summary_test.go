package cli

import (
	"strings"
	"testing"

	dsync "github.com/dataflow-sync/dataflow/engine/sync"
)

// The summary of a run that stopped on a failed write call counts the writes the system
// accepted and says how many were left undone.
func TestSummarySaysWhatWasLeftUndone(t *testing.T) {
	var b strings.Builder
	rep := &dsync.Report{Flows: []*dsync.FlowStats{{Flow: "products", UpdatedTarget: 140, Undone: 360}}}
	printSummary(&b, rep, true)
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if got := strings.Join(lines[len(lines)-2:], "\n"); got != "140 writes, then the run stopped on an error; what it did not reach is synced by the next run\n360 writes left undone, for the next run" {
		t.Errorf("summary ends with:\n%s", got)
	}
	b.Reset()
	printSummary(&b, rep, false)
	lines = strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if got := strings.Join(lines[len(lines)-2:], "\n"); got != "140 writes, 0 records failed\n360 writes left undone, for the next run" {
		t.Errorf("summary ends with:\n%s", got)
	}
	b.Reset()
	printSummary(&b, &dsync.Report{Flows: []*dsync.FlowStats{{Flow: "products", UpdatedTarget: 1}}}, false)
	if strings.Contains(b.String(), "undone") {
		t.Errorf("a run with nothing undone says:\n%s", b.String())
	}
}

// The requests line counts what each system that counts requests was sent during the run.
func TestPrintRequests(t *testing.T) {
	var b strings.Builder
	printRequests(&b, map[string]int64{"shop": 10, "crm": 0}, map[string]int64{"shop": 59, "crm": 4})
	if got, want := b.String(), "requests: crm 4, shop 49\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	b.Reset()
	printRequests(&b, nil, map[string]int64{})
	if b.Len() != 0 {
		t.Errorf("no counting system printed %q", b.String())
	}
}
