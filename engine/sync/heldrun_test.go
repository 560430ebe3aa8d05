package sync_test

import (
	"errors"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/state"
	dsync "github.com/dataflow-sync/dataflow/engine/sync"
)

// A run that the circuit breaker holds (the shop's listing came back empty, as with an
// expired token) reads the CRM's changed products but cannot merge them: their partners are
// missing. Once the shop is back and the change rejected, the next run must sync them: the
// held run's watermark may not pass records it read and did not merge. Found by the model
// test (seed 99 with a run after the listing came back instead of a reconcile): the CRM's
// watermark moved to the later of the two edits, so the earlier one was never read again.
func TestHeldRunLeavesTheWatermarkBeforeWhatItDidNotMerge(t *testing.T) {
	p := newE2E(t, "delete-keep.yaml")
	p.sync()
	// The shop stamps its products, so that its side too is read from a watermark.
	p.exec("shop", "UPDATE products SET modified = '2024-01-01T00:00:00Z'")
	p.exec("shop", "UPDATE products SET modified = '2024-02-01T00:00:00Z' WHERE sku = 'P-10'")
	p.quiet("run after the shop stamped its products")
	p.exec("crm", "UPDATE products SET name = 'Espresso beans, renamed', updated_at = '2024-06-01T00:00:00Z' WHERE id = 1")
	p.exec("crm", "UPDATE products SET stock = 99, updated_at = '2024-06-02T00:00:00Z' WHERE id = 2")
	_, err := p.run(e2eRunConfig{wrap: func(system string, c connector.Conn) connector.Conn {
		if system == "shop" {
			return emptyConn{c}
		}
		return c
	}})
	if !errors.Is(err, dsync.ErrBreaker) {
		t.Fatalf("run with the shop's listing empty: %v, want the breaker", err)
	}
	pend := p.pending("products")
	if len(pend) != 1 {
		t.Fatalf("pending = %+v", pend)
	}
	p.writeState(func(tx state.Tx) error { return tx.DeletePending(pend[0].ID) })
	rep := p.sync()
	if st := e2eFlow(t, rep, "products"); st.UpdatedTarget != 2 {
		t.Errorf("the run with the shop back: %s; want the 2 CRM edits written to the shop", e2eStats(rep))
	}
	if got := p.text("shop", "SELECT title FROM products WHERE sku = 'P-01'"); got != "Espresso beans, renamed" {
		t.Errorf("shop P-01 title = %s, want the CRM's edit made while the shop's listing was empty", got)
	}
	if got := p.text("shop", "SELECT quantity FROM products WHERE sku = 'P-02'"); got != "99" {
		t.Errorf("shop P-02 quantity = %s, want 99", got)
	}
}
