package sync_test

import (
	"testing"
	"time"

	dsync "github.com/dataflow-sync/dataflow/engine/sync"
)

// An edit that does not stamp updated (an application that does not, a dropped trigger) is
// invisible to runs from the watermarks, which report success for ever; a reconcile compares
// every linked pair and syncs it, and says how many differed.
func TestReconcileSyncsEditsThatDidNotStampUpdated(t *testing.T) {
	p := newE2E(t, "one-way.yaml")
	p.wmRun(dsync.Options{})
	p.exec("crm", "UPDATE products SET name = 'Edited, not stamped' WHERE id IN (3, 5)")
	p.exec("crm", "UPDATE products SET stock = 1 WHERE id = 7")
	for run := 1; run <= 3; run++ {
		rep := p.wmRun(dsync.Options{})
		if rep.Writes() != 0 || e2eFlow(t, rep, "products").Reconcile {
			t.Fatalf("run %d from the watermark: %d writes, reconcile %v; want 0 and none (the case a reconcile is for)", run, rep.Writes(), e2eFlow(t, rep, "products").Reconcile)
		}
	}
	rep := p.wmRun(dsync.Options{Reconcile: true})
	st := e2eFlow(t, rep, "products")
	if !st.Reconcile || st.Reconciled != 3 || st.UpdatedTarget != 3 {
		t.Errorf("reconcile: reconcile %v, %d differed, %d updated; want true, 3, 3", st.Reconcile, st.Reconciled, st.UpdatedTarget)
	}
	for _, id := range []string{"3", "5"} {
		if got := p.text("shop", "SELECT title FROM products WHERE id = ?", p.mustTarget("products", id)); got != "Edited, not stamped" {
			t.Errorf("product %s: title %q after the reconcile", id, got)
		}
	}
	if got := p.text("shop", "SELECT quantity FROM products WHERE id = ?", p.mustTarget("products", "7")); got != "1" {
		t.Errorf("product 7: quantity %s after the reconcile, want 1", got)
	}
	// In sync now: a second reconcile finds nothing.
	rep = p.wmRun(dsync.Options{Reconcile: true})
	if st := e2eFlow(t, rep, "products"); st.Reconciled != 0 || rep.Writes() != 0 || st.Unchanged != 10 {
		t.Errorf("second reconcile: %d differed, %d writes, %d unchanged; want 0, 0, 10", st.Reconciled, rep.Writes(), st.Unchanged)
	}
}

// A dataflow's `reconcile` schedules them: a flow whose last reconcile is older than that
// runs one; the runs between read from the watermarks.
func TestReconcileOnSchedule(t *testing.T) {
	p := newE2E(t, "one-way.yaml")
	for _, d := range p.project.Dataflows {
		d.Config.Reconcile.Value = "24h"
	}
	at := func(h time.Duration) dsync.Options {
		return dsync.Options{Now: func() time.Time { return wmNow.Add(h * time.Hour) }}
	}
	if st := e2eFlow(t, p.wmRun(at(0)), "products"); !st.Reconcile {
		t.Errorf("the first run of a scheduled flow: reconcile %v, want true", st.Reconcile)
	}
	p.exec("crm", "UPDATE products SET name = 'Edited, not stamped' WHERE id = 3")
	for _, h := range []time.Duration{1, 12, 23} {
		if st := e2eFlow(t, p.wmRun(at(h)), "products"); st.Reconcile || st.UpdatedTarget != 0 {
			t.Errorf("%dh after the reconcile: reconcile %v, %d updated; want false, 0", h, st.Reconcile, st.UpdatedTarget)
		}
	}
	if st := e2eFlow(t, p.wmRun(at(24)), "products"); !st.Reconcile || st.Reconciled != 1 {
		t.Errorf("24h after: reconcile %v, %d differed; want true, 1", st.Reconcile, st.Reconciled)
	}
	if st := e2eFlow(t, p.wmRun(at(30)), "products"); st.Reconcile {
		t.Errorf("30h after the first (6h after the second): reconcile %v, want false", st.Reconcile)
	}
}
