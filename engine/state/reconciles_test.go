package state

import (
	"context"
	"testing"
	"time"
)

// A flow's last reconcile is kept across opens; clearing a flow's watermarks leaves the other
// flows' alone.
func TestReconciledAndClearWatermarks(t *testing.T) {
	ctx := context.Background()
	s, path := newStore(t)
	if _, ok, err := s.Reconciled(ctx, "f"); err != nil || ok {
		t.Fatalf("Reconciled of a new state: ok %v, err %v; want none", ok, err)
	}
	at := time.Date(2024, 5, 1, 12, 30, 45, 123456789, time.FixedZone("", 2*3600))
	write(t, s, func(tx Tx) error {
		for _, w := range [][3]string{{"f", Source, "10"}, {"f", Target, "2024-05-01T00:00:00Z"}, {"g", Source, "7"}} {
			if err := tx.SetWatermark(w[0], w[1], w[2]); err != nil {
				return err
			}
		}
		return tx.SetReconciled("f", at)
	})
	write(t, s, func(tx Tx) error { return tx.ClearWatermarks("f") })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, path, ReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, w := range [][3]string{{"f", Source, ""}, {"f", Target, ""}, {"g", Source, "7"}} {
		if got, err := s.Watermark(ctx, w[0], w[1]); err != nil || got != w[2] {
			t.Errorf("Watermark(%s, %s) = %q, %v; want %q", w[0], w[1], got, err, w[2])
		}
	}
	got, ok, err := s.Reconciled(ctx, "f")
	if err != nil || !ok || !got.Equal(at) {
		t.Errorf("Reconciled(f) = %v, %v, %v; want %v", got, ok, err, at)
	}
	if _, ok, _ := s.Reconciled(ctx, "g"); ok {
		t.Errorf("Reconciled(g): a flow never reconciled has a time")
	}
}
