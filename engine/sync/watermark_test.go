package sync_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/state"
	dsync "github.com/dataflow-sync/dataflow/engine/sync"
)

// wmNow is the clock of the watermark tests: after every stamp of the fixtures, before the
// far-future ones.
var wmNow = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

// wmRun runs every flow once with the watermark tests' clock and options.
func (p *e2eProject) wmRun(opts dsync.Options) *dsync.Report {
	p.t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return wmNow }
	}
	rep, err := p.run(e2eRunConfig{opts: opts})
	if err != nil {
		p.t.Fatalf("run: %v", err)
	}
	return rep
}

// watermark reads a flow's stored watermark of one side.
func (p *e2eProject) watermark(flow, side string) string {
	p.t.Helper()
	var wm string
	p.store(func(st state.Store) (err error) {
		wm, err = st.Watermark(p.t.Context(), flow, side)
		return err
	})
	return wm
}

// One row whose updated value is not a time, or is far in the future, must not become the
// watermark: every later row would then be older than it and never read again, while every
// run reported success. The row is synced, named in a warning, and left out of the watermark.
func TestWatermarkIgnoresBadAndFutureStamps(t *testing.T) {
	for _, tc := range []struct {
		bad, warning string
	}{
		{"N/A", `products: source record 11 (Product): updated_at "N/A" is not a time or a number; the record is left out of the watermark`},
		{"9999-12-31T00:00:00Z", `products: source record 11 (Product): updated_at "9999-12-31T00:00:00Z" is in the future; the watermark stays before this read's start, so later changes are still read`},
	} {
		t.Run(tc.bad, func(t *testing.T) {
			p := newE2E(t, "basic.yaml")
			p.wmRun(dsync.Options{})
			before := p.watermark("products", state.Source)
			p.exec("crm", "INSERT INTO products (id, sku, name, price, stock, updated_at) VALUES (11, 'P-11', 'Bad stamp', 1, 1, ?)", tc.bad)
			rep := p.wmRun(dsync.Options{})
			if got := e2eFlow(t, rep, "products").CreatedTarget; got != 1 {
				t.Errorf("the row with a bad stamp: %d created, want 1", got)
			}
			if !containsLine(rep.Warnings, tc.warning) {
				t.Errorf("warnings:\n%s\nwant the line\n%s", strings.Join(rep.Warnings, "\n"), tc.warning)
			}
			if got := p.watermark("products", state.Source); got != before {
				t.Errorf("watermark after the bad stamp = %q, want it unchanged (%q)", got, before)
			}
			// A later row, and a later edit of an older one, are still read, run after run.
			for i, stamp := range []string{"2024-03-01T00:00:00Z", "2024-03-02T00:00:00Z", "2024-03-03T00:00:00Z"} {
				id := 12 + i
				p.exec("crm", "INSERT INTO products (id, sku, name, price, stock, updated_at) VALUES (?, ?, 'Later', 1, 1, ?)", id, fmt.Sprintf("P-%d", id), stamp)
				rep := p.wmRun(dsync.Options{})
				if got := e2eFlow(t, rep, "products").CreatedTarget; got != 1 {
					t.Fatalf("run %d after the bad stamp: %d created, want the new row (stamped %s)", i+1, got, stamp)
				}
				if got := p.watermark("products", state.Source); got != stamp {
					t.Errorf("run %d: watermark %q, want %q", i+1, got, stamp)
				}
			}
			if n := p.count("shop", "products"); n != 14 {
				t.Errorf("the shop has %d products, want 14", n)
			}
		})
	}
}

func containsLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}
