package state

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

// A pending change is listed with its links; a second one of the same flow still waiting
// replaces it, an approved one stays; approve and delete of an unknown id say so.
func TestPending(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	links := []PendingLink{{SourceID: "1", TargetID: "a", Missing: Target}, {SourceID: "2", TargetID: "b"}}
	var first, second, third int64
	write(t, s, func(tx Tx) (err error) {
		first, err = tx.PutPending(&Pending{Flow: "f", Summary: "two missing", Links: links})
		return err
	})
	got, err := s.Pending(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != first || got[0].Status != PendingWaiting || got[0].Summary != "two missing" || !reflect.DeepEqual(got[0].Links, links) {
		t.Fatalf("pending = %+v", got)
	}
	write(t, s, func(tx Tx) (err error) {
		second, err = tx.PutPending(&Pending{Flow: "f", Summary: "one missing", Links: links[:1]})
		return err
	})
	write(t, s, func(tx Tx) error { return tx.ApprovePending(second) })
	write(t, s, func(tx Tx) (err error) {
		third, err = tx.PutPending(&Pending{Flow: "f", Summary: "again", Links: links[:1]})
		return err
	})
	got, _ = s.Pending(ctx, "")
	if len(got) != 2 || got[0].ID != second || got[0].Status != PendingApproved || got[1].ID != third || got[1].Status != PendingWaiting {
		t.Fatalf("after replace and approve: %+v", got)
	}
	if other, _ := s.Pending(ctx, "g"); len(other) != 0 {
		t.Errorf("flow g: %+v", other)
	}
	write(t, s, func(tx Tx) error { return tx.DeletePending(second) })
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := tx.ApprovePending(first); !errors.Is(err, ErrNoPending) || err.Error() != "approve pending change 1: no such pending change" {
		t.Errorf("approve a replaced change: %v", err)
	}
	if err := tx.DeletePending(99); !errors.Is(err, ErrNoPending) || err.Error() != "delete pending change 99: no such pending change" {
		t.Errorf("delete an unknown change: %v", err)
	}
}

// A flow's fingerprint is "" until set, then the last value set.
func TestFingerprint(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if v, err := s.Fingerprint(ctx, "f"); err != nil || v != "" {
		t.Fatalf("before: %q, %v", v, err)
	}
	write(t, s, func(tx Tx) error { return tx.SetFingerprint("f", "a") })
	write(t, s, func(tx Tx) error { return tx.SetFingerprint("f", "b") })
	if v, err := s.Fingerprint(ctx, "f"); err != nil || v != "b" {
		t.Errorf("after: %q, %v", v, err)
	}
	if v, _ := s.Fingerprint(ctx, "g"); v != "" {
		t.Errorf("flow g: %q", v)
	}
}

// A system's identity is recorded and replaced.
func TestSystems(t *testing.T) {
	s, _ := newStore(t)
	write(t, s, func(tx Tx) error { return tx.PutSystem("crm", SystemIdentity{"sqlite", "/a/crm.db"}) })
	write(t, s, func(tx Tx) error { return tx.PutSystem("crm", SystemIdentity{"sqlite", "/b/crm.db"}) })
	write(t, s, func(tx Tx) error { return tx.PutSystem("shop", SystemIdentity{"http", "https://shop.example"}) })
	got, err := s.Systems(context.Background())
	want := map[string]SystemIdentity{"crm": {"sqlite", "/b/crm.db"}, "shop": {"http", "https://shop.example"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("systems = %v, %v; want %v", got, err, want)
	}
}
