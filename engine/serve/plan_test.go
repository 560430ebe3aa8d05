package serve

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine"
)

const seedDataflow = "mappings/custom-crm-to-squarespace.yaml"

// editFile replaces old (which must be there once) with new in path.
func editFile(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(data), old) != 1 {
		t.Fatalf("%s: %q is not there once", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func loadSeedPlan(t *testing.T) (*plan, error) {
	t.Helper()
	eng, err := engine.New(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return loadPlan(context.Background(), eng, []string{"mappings"}, 5*time.Minute, time.Now())
}

// TestEvery: a flow runs at its own every:, else at its dataflow's, else at the default; a
// flow runs after the flows it refers to.
func TestEvery(t *testing.T) {
	seedProject(t)
	p, err := loadSeedPlan(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, fp := range p.flows {
		if fp.every != 5*time.Minute {
			t.Errorf("%s runs every %s without every:; want the default 5m", fp.flow.ID(), fp.every)
		}
	}
	editFile(t, seedDataflow, "target: squarespace\n", "target: squarespace\nevery: 30s\n")
	editFile(t, seedDataflow, "  - id: order-to-order\n", "  - id: order-to-order\n    every: 1h30m\n")
	if p, err = loadSeedPlan(t); err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{"product-to-inventory": 30 * time.Second, "order-to-order": 90 * time.Minute, "product-to-sesamproducts": 30 * time.Second}
	for id, every := range want {
		if got := p.byID[id].every; got != every {
			t.Errorf("%s runs every %s; want %s", id, got, every)
		}
	}
	// Orders name the inventory items' variants: when both are due, the items go first.
	if inv, ord := p.byID["product-to-inventory"].priority, p.byID["order-to-order"].priority; inv >= ord {
		t.Errorf("priorities: product-to-inventory %d, order-to-order %d; want the referenced flow first (a smaller number)", inv, ord)
	}
}

// TestEveryInvalid: an every: that is no duration, or under a second, is an error at its
// place, with the fix.
func TestEveryInvalid(t *testing.T) {
	for _, tc := range []struct{ every, want string }{
		{"soon", `mappings/custom-crm-to-squarespace.yaml:5:8: error: invalid every "soon": write a number and a unit (ms, s, m or h), like "30s", "5m" or "1h30m"
  5 | every: soon
    |        ^~~~
`},
		{"10ms", `mappings/custom-crm-to-squarespace.yaml:5:8: error: every "10ms" is shorter than a second
  5 | every: 10ms
    |        ^~~~
  Run a flow at most once a second, e.g. every: 1s; a webhook (POST /hooks/{flow}) runs it as soon as something changes.
`},
	} {
		t.Run(tc.every, func(t *testing.T) {
			seedProject(t)
			editFile(t, seedDataflow, "target: squarespace\n", "target: squarespace\nevery: "+tc.every+"\n")
			_, err := loadSeedPlan(t)
			var invalid *InvalidMappingsError
			if !errors.As(err, &invalid) {
				t.Fatalf("loadPlan: %v; want the mappings refused", err)
			}
			// The seed's warnings (if any) come first, as validate prints them.
			if got := invalid.Text(); !strings.HasSuffix(got, tc.want) || strings.Count(got, ": error: ") != 1 {
				t.Errorf("diagnostics:\n%s\nwant them to end with:\n%s", got, tc.want)
			}
			if got := invalid.Error(); got != "the mappings are invalid (1 error)" {
				t.Errorf("error %q", got)
			}
		})
	}
}

// TestReferencedCreatorsRunWith: a flow that refers to a flow whose records are created only
// when referenced runs that flow in its own run, first: the creations happen there.
func TestReferencedCreatorsRunWith(t *testing.T) {
	seedProject(t)
	p, err := loadSeedPlan(t)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.byID["order-to-order"].with, ","); got != "order-to-order" {
		t.Errorf("order-to-order runs %s; want itself alone", got)
	}
	editFile(t, seedDataflow, "    create: never\n", "    create: referenced\n")
	if p, err = loadSeedPlan(t); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.byID["order-to-order"].with, ","); got != "product-to-inventory,order-to-order" {
		t.Errorf("order-to-order runs %s; want product-to-inventory,order-to-order", got)
	}
	if got := strings.Join(p.byID["product-to-inventory"].with, ","); got != "product-to-inventory" {
		t.Errorf("product-to-inventory runs %s; want itself alone", got)
	}
}

// TestQueuePath: the queue sits beside its state, one per state file.
func TestQueuePath(t *testing.T) {
	for state, want := range map[string]string{
		".dataflow/state.db": ".dataflow/queue.db",
		".dataflow/shop.db":  ".dataflow/shop.queue.db",
		"/var/lib/df/crm":    "/var/lib/df/crm.queue.db",
		"state.db":           "queue.db",
		"a dir?#/state 2.db": "a dir?#/state 2.queue.db",
	} {
		if got := queuePathFor(state); got != want {
			t.Errorf("queuePathFor(%q) = %q; want %q", state, got, want)
		}
	}
}

// TestTwoStatesInOneDirectory: two services on two states of one directory (with characters
// that a file: URI would misread) each keep their own queue.
func TestTwoStatesInOneDirectory(t *testing.T) {
	seedProject(t)
	a := startService(t, Config{StatePath: "st?#%/a.db"})
	b := startService(t, Config{StatePath: "st?#%/b.db"})
	for _, r := range []*running{a, b} {
		waitFor(t, "the first runs", func() bool { return r.finishedRuns("order-to-order") > 0 })
	}
	for _, f := range []string{"st?#%/a.queue.db", "st?#%/b.queue.db"} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("queue: %v", err)
		}
	}
}
