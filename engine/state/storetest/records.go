package storetest

// The contract of what a run keeps beside its links: intents, watermarks, reconciles, counts and fingerprints, dead letters and waiting records, pending changes.

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/state"
)

func testIntents(t *testing.T, o Opener) {
	st, now, _ := open(t, o)
	var ids []int64
	Write(t, st, func(tx state.Tx) error {
		for i, in := range []*state.Intent{
			{Flow: "f", Side: state.Target, FromID: "s1", Data: json.RawMessage(`{"name":"A"}`)},
			{Flow: "f", Side: state.Source, FromID: "t2"},
			{Flow: "g", Side: state.Target, FromID: "s3", Created: T0.Add(-time.Hour)},
		} {
			id, err := tx.AddIntent(in)
			if err != nil {
				return err
			}
			if i > 0 && id <= ids[i-1] {
				return fmt.Errorf("intent id %d after %d", id, ids[i-1])
			}
			ids = append(ids, id)
		}
		return nil
	})
	got, err := st.Intents(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	want := []state.Intent{
		{ID: ids[0], Flow: "f", Side: state.Target, FromID: "s1", Data: json.RawMessage(`{"name":"A"}`), Created: *now},
		{ID: ids[1], Flow: "f", Side: state.Source, FromID: "t2", Created: *now},
	}
	if !sameIntents(got, want) {
		t.Errorf("Intents(f) = %+v\nwant %+v", got, want)
	}
	all, _ := st.Intents(ctx, "")
	if len(all) != 3 || !all[2].Created.Equal(T0.Add(-time.Hour)) {
		t.Errorf("Intents() = %+v", all)
	}
	// A deleted id is never handed out again.
	Write(t, st, func(tx state.Tx) error {
		if err := tx.DeleteIntent(ids[2]); err != nil {
			return err
		}
		return tx.DeleteIntents([]int64{ids[0], ids[1], 999999})
	})
	if left, _ := st.Intents(ctx, ""); len(left) != 0 {
		t.Errorf("%d intents left after deleting them", len(left))
	}
	Write(t, st, func(tx state.Tx) error {
		id, err := tx.AddIntent(&state.Intent{Flow: "f", Side: state.Target, FromID: "s4"})
		if err == nil && id <= ids[2] {
			err = fmt.Errorf("intent id %d reused (last was %d)", id, ids[2])
		}
		return err
	})
}

func sameIntents(a, b []state.Intent) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.ID != y.ID || x.Flow != y.Flow || x.Side != y.Side || x.FromID != y.FromID || string(x.Data) != string(y.Data) || !x.Created.Equal(y.Created) {
			return false
		}
	}
	return true
}

func testMarks(t *testing.T, o Opener) {
	st, _, _ := open(t, o)
	if _, ok, err := st.Reconciled(ctx, "f"); ok || err != nil {
		t.Errorf("Reconciled of a new state = %v, %v", ok, err)
	}
	if _, ok, err := st.Counts(ctx, "f"); ok || err != nil {
		t.Errorf("Counts of a new state = %v, %v", ok, err)
	}
	counts := state.Counts{Source: 10, Target: -1, Skipped: 2, SourceDeletions: 7, TargetDeletions: -1}
	Write(t, st, func(tx state.Tx) error {
		for _, err := range []error{
			tx.SetWatermark("f", state.Source, "2024-01-01"),
			tx.SetWatermark("f", state.Source, "2024-02-01"),
			tx.SetWatermark("f", state.Target, "17"),
			tx.SetWatermark("g", state.Target, "g1"),
			tx.SetReconciled("f", T0),
			tx.SetCounts("f", counts),
			tx.SetCounts("g", counts),
			tx.SetFingerprint("f", "fp1"),
			tx.SetFingerprint("f", "fp2"),
			tx.PutSystem("crm", state.SystemIdentity{Connector: "sqlite", Location: "/data/crm.db"}),
			tx.PutSystem("shop", state.SystemIdentity{Connector: "http", Location: "https://shop.example.com"}),
			tx.PutSystem("crm", state.SystemIdentity{Connector: "sqlite", Location: "/data/crm2.db"}),
			tx.PutSystem("shop", state.SystemIdentity{Connector: "http", Location: "https://shop.example.com"}),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	for _, c := range []struct{ flow, side, want string }{
		{"f", state.Source, "2024-02-01"}, {"f", state.Target, "17"}, {"g", state.Target, "g1"}, {"g", state.Source, ""},
	} {
		if got, err := st.Watermark(ctx, c.flow, c.side); err != nil || got != c.want {
			t.Errorf("Watermark(%s, %s) = %q, %v; want %q", c.flow, c.side, got, err, c.want)
		}
	}
	if at, ok, err := st.Reconciled(ctx, "f"); !ok || err != nil || !at.Equal(T0) {
		t.Errorf("Reconciled(f) = %v, %v, %v", at, ok, err)
	}
	if c, ok, err := st.Counts(ctx, "f"); !ok || err != nil || c != counts {
		t.Errorf("Counts(f) = %+v, %v, %v", c, ok, err)
	}
	if fp, err := st.Fingerprint(ctx, "f"); err != nil || fp != "fp2" {
		t.Errorf("Fingerprint(f) = %q, %v", fp, err)
	}
	if fp, err := st.Fingerprint(ctx, "g"); err != nil || fp != "" {
		t.Errorf("Fingerprint(g) = %q, %v", fp, err)
	}
	systems, err := st.Systems(ctx)
	wantSystems := map[string]state.SystemIdentity{
		"crm":  {Connector: "sqlite", Location: "/data/crm2.db"},
		"shop": {Connector: "http", Location: "https://shop.example.com"},
	}
	if err != nil || !reflect.DeepEqual(systems, wantSystems) {
		t.Errorf("Systems = %v, %v", systems, err)
	}
	Write(t, st, func(tx state.Tx) error {
		if err := tx.ClearWatermarks("f"); err != nil {
			return err
		}
		return tx.ClearCounts("f")
	})
	if w, _ := st.Watermark(ctx, "f", state.Source); w != "" {
		t.Errorf("watermark %q after ClearWatermarks", w)
	}
	if w, _ := st.Watermark(ctx, "g", state.Target); w != "g1" {
		t.Errorf("ClearWatermarks(f) cleared g's: %q", w)
	}
	if _, ok, _ := st.Counts(ctx, "f"); ok {
		t.Error("counts after ClearCounts")
	}
	if _, ok, _ := st.Counts(ctx, "g"); !ok {
		t.Error("ClearCounts(f) cleared g's")
	}
}

func testDeadLettersAndWaiting(t *testing.T, o Opener) {
	st, now, _ := open(t, o)
	Write(t, st, func(tx state.Tx) error {
		for _, err := range []error{
			tx.PutDeadLetter("f", state.Source, "r2", "first reason"),
			tx.PutDeadLetter("f", state.Target, "r1", "other side"),
			tx.PutDeadLetter("e", state.Source, "r9", "another flow"),
			tx.PutWaiting("f", state.Source, "w1", "waits for customer c1"),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	*now = T0.Add(time.Minute)
	Write(t, st, func(tx state.Tx) error {
		if err := tx.PutDeadLetter("f", state.Source, "r2", "second reason"); err != nil {
			return err
		}
		return tx.PutWaiting("f", state.Source, "w1", "still waits")
	})
	dead, err := st.DeadLetters(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []state.DeadLetter{
		{Flow: "e", Side: state.Source, RecordID: "r9", Reason: "another flow", Attempts: 1, First: T0, Last: T0},
		{Flow: "f", Side: state.Source, RecordID: "r2", Reason: "second reason", Attempts: 2, First: T0, Last: T0.Add(time.Minute)},
		{Flow: "f", Side: state.Target, RecordID: "r1", Reason: "other side", Attempts: 1, First: T0, Last: T0},
	}
	if !reflect.DeepEqual(dead, want) {
		t.Errorf("DeadLetters = %+v\nwant %+v", dead, want)
	}
	if f, _ := st.DeadLetters(ctx, "f"); len(f) != 2 {
		t.Errorf("DeadLetters(f) = %d, want 2", len(f))
	}
	waiting, err := st.Waiting(ctx, "f")
	wantW := []state.Waiting{{Flow: "f", Side: state.Source, RecordID: "w1", Reason: "still waits", Since: T0}}
	if err != nil || !reflect.DeepEqual(waiting, wantW) {
		t.Errorf("Waiting = %+v, %v\nwant %+v", waiting, err, wantW)
	}
	Write(t, st, func(tx state.Tx) error {
		for _, err := range []error{
			tx.ClearDeadLetter("f", state.Source, "r2"),
			tx.ClearDeadLetter("f", state.Source, "never"),
			tx.ClearWaiting("f", state.Source, "w1"),
			tx.ClearWaiting("x", state.Target, "never"),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	if f, _ := st.DeadLetters(ctx, "f"); len(f) != 1 || f[0].RecordID != "r1" {
		t.Errorf("DeadLetters(f) after clearing = %+v", f)
	}
	if w, _ := st.Waiting(ctx, ""); len(w) != 0 {
		t.Errorf("Waiting after clearing = %+v", w)
	}
}

func testPending(t *testing.T, o Opener) {
	st, _, _ := open(t, o)
	links := []state.PendingLink{{SourceID: "s1", TargetID: "t1", Missing: state.Target}, {SourceID: "s2", TargetID: "t2"}}
	var first, second, other int64
	Write(t, st, func(tx state.Tx) error {
		var err error
		if first, err = tx.PutPending(&state.Pending{Flow: "f", Summary: "would delete 2", Links: links}); err != nil {
			return err
		}
		if other, err = tx.PutPending(&state.Pending{Flow: "g", Summary: "g", Links: links[:1]}); err != nil {
			return err
		}
		// A second trip of the flow replaces the change that still waits.
		second, err = tx.PutPending(&state.Pending{Flow: "f", Summary: "would delete 1", Links: links[1:]})
		return err
	})
	got, err := st.Pending(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []state.Pending{
		{ID: other, Flow: "g", Created: T0, Status: state.PendingWaiting, Summary: "g", Links: links[:1]},
		{ID: second, Flow: "f", Created: T0, Status: state.PendingWaiting, Summary: "would delete 1", Links: links[1:]},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Pending = %+v\nwant %+v", got, want)
	}
	Write(t, st, func(tx state.Tx) error {
		if err := tx.ApprovePending(second); err != nil {
			return err
		}
		// An approved change is kept when the flow trips again.
		_, err := tx.PutPending(&state.Pending{Flow: "f", Summary: "again", Links: links})
		return err
	})
	f, _ := st.Pending(ctx, "f")
	if len(f) != 2 || f[0].ID != second || f[0].Status != state.PendingApproved || f[1].Status != state.PendingWaiting {
		t.Errorf("Pending(f) = %+v", f)
	}
	tx, err := st.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := tx.ApprovePending(first); !errors.Is(err, state.ErrNoPending) || err.Error() != fmt.Sprintf("approve pending change %d: no such pending change", first) {
		t.Errorf("approving a replaced change: %v", err)
	}
	if err := tx.DeletePending(first); !errors.Is(err, state.ErrNoPending) || err.Error() != fmt.Sprintf("delete pending change %d: no such pending change", first) {
		t.Errorf("deleting a replaced change: %v", err)
	}
	if err := tx.DeletePending(other); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if g, _ := st.Pending(ctx, "g"); len(g) != 0 {
		t.Errorf("Pending(g) after delete = %+v", g)
	}
}
