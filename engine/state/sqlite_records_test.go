package state

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
)

func TestDeadLetters(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	t1, t2 := t0, t0.Add(time.Hour)

	s.now = func() time.Time { return t1 }
	write(t, s, func(tx Tx) error {
		for _, d := range [][4]string{
			{"contacts", Source, "r2", "schema: email is required"},
			{"contacts", Source, "r1", "expression: division by zero"},
			{"contacts", Target, "r1", "HTTP 422"},
			{"deals", Source, "d1", "HTTP 400"},
		} {
			if err := tx.PutDeadLetter(d[0], d[1], d[2], d[3]); err != nil {
				return err
			}
		}
		return nil
	})
	s.now = func() time.Time { return t2 }
	write(t, s, func(tx Tx) error {
		return tx.PutDeadLetter("contacts", Source, "r1", "expression: nil has no field x")
	})
	write(t, s, func(tx Tx) error {
		return tx.PutDeadLetter("contacts", Source, "r1", "expression: nil has no field y")
	})

	want := []DeadLetter{
		{Flow: "contacts", Side: Source, RecordID: "r1", Reason: "expression: nil has no field y", Attempts: 3, First: t1, Last: t2},
		{Flow: "contacts", Side: Source, RecordID: "r2", Reason: "schema: email is required", Attempts: 1, First: t1, Last: t1},
		{Flow: "contacts", Side: Target, RecordID: "r1", Reason: "HTTP 422", Attempts: 1, First: t1, Last: t1},
		{Flow: "deals", Side: Source, RecordID: "d1", Reason: "HTTP 400", Attempts: 1, First: t1, Last: t1},
	}
	got, err := s.DeadLetters(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("all dead letters:\n got %+v\nwant %+v", got, want)
	}
	got, err = s.DeadLetters(ctx, "contacts")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want[:3]) {
		t.Errorf("dead letters of contacts:\n got %+v\nwant %+v", got, want[:3])
	}

	write(t, s, func(tx Tx) error {
		if err := tx.ClearDeadLetter("contacts", Source, "r1"); err != nil {
			return err
		}
		return tx.ClearDeadLetter("contacts", Source, "missing")
	})
	got, err = s.DeadLetters(ctx, "contacts")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want[1:3]) {
		t.Errorf("after clear:\n got %+v\nwant %+v", got, want[1:3])
	}

	// A record failing again after it was cleared starts over.
	write(t, s, func(tx Tx) error { return tx.PutDeadLetter("contacts", Source, "r1", "again") })
	got, _ = s.DeadLetters(ctx, "contacts")
	if w := (DeadLetter{Flow: "contacts", Side: Source, RecordID: "r1", Reason: "again", Attempts: 1, First: t2, Last: t2}); !reflect.DeepEqual(got[0], w) {
		t.Errorf("after failing again: got %+v, want %+v", got[0], w)
	}
	if none, err := s.DeadLetters(ctx, "nope"); err != nil || none != nil {
		t.Errorf("dead letters of an unknown flow: %v, %v; want none", none, err)
	}
}

func TestWaiting(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	t1, t2 := t0, t0.Add(time.Minute)

	s.now = func() time.Time { return t1 }
	write(t, s, func(tx Tx) error {
		if err := tx.PutWaiting("deals", Source, "d1", "company c1 is not linked yet"); err != nil {
			return err
		}
		return tx.PutWaiting("contacts", Target, "c9", "owner u1 is not linked yet")
	})
	// Waiting again keeps the time it started waiting and takes the new reason.
	s.now = func() time.Time { return t2 }
	write(t, s, func(tx Tx) error {
		if err := tx.PutWaiting("deals", Source, "d1", "company c2 is not linked yet"); err != nil {
			return err
		}
		return tx.PutWaiting("deals", Source, "d0", "company c3 is not linked yet")
	})

	want := []Waiting{
		{Flow: "contacts", Side: Target, RecordID: "c9", Reason: "owner u1 is not linked yet", Since: t1},
		{Flow: "deals", Side: Source, RecordID: "d0", Reason: "company c3 is not linked yet", Since: t2},
		{Flow: "deals", Side: Source, RecordID: "d1", Reason: "company c2 is not linked yet", Since: t1},
	}
	got, err := s.Waiting(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("all waiting:\n got %+v\nwant %+v", got, want)
	}
	got, _ = s.Waiting(ctx, "deals")
	if !reflect.DeepEqual(got, want[1:]) {
		t.Errorf("waiting of deals:\n got %+v\nwant %+v", got, want[1:])
	}

	write(t, s, func(tx Tx) error {
		if err := tx.ClearWaiting("deals", Source, "d1"); err != nil {
			return err
		}
		return tx.ClearWaiting("deals", Target, "d0") // the other side: not this record
	})
	got, _ = s.Waiting(ctx, "")
	if !reflect.DeepEqual(got, want[:2]) {
		t.Errorf("after clear:\n got %+v\nwant %+v", got, want[:2])
	}
}

func TestIntents(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	created := t0.Add(-time.Hour)
	var ids []int64
	write(t, s, func(tx Tx) error {
		for _, in := range []*Intent{
			{Flow: "contacts", Side: Target, FromID: "s1", Data: json.RawMessage(`{"email":"a@example.com"}`), Created: created},
			{Flow: "deals", Side: Source, FromID: "t7"}, // no data, created now
			{Flow: "contacts", Side: Target, FromID: "s2", Data: json.RawMessage(`{ "email" : "b@example.com" }`)},
		} {
			id, err := tx.AddIntent(in)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if want := []int64{1, 2, 3}; !reflect.DeepEqual(ids, want) {
		t.Errorf("ids %v, want %v", ids, want)
	}
	want := []Intent{
		{ID: 1, Flow: "contacts", Side: Target, FromID: "s1", Data: json.RawMessage(`{"email":"a@example.com"}`), Created: created},
		{ID: 3, Flow: "contacts", Side: Target, FromID: "s2", Data: json.RawMessage(`{ "email" : "b@example.com" }`), Created: t0},
	}
	got, err := s.Intents(ctx, "contacts")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("intents of contacts:\n got %+v\nwant %+v", got, want)
	}
	got, _ = s.Intents(ctx, "deals")
	if w := []Intent{{ID: 2, Flow: "deals", Side: Source, FromID: "t7", Created: t0}}; !reflect.DeepEqual(got, w) {
		t.Errorf("intents of deals:\n got %+v\nwant %+v", got, w)
	}

	// A deleted id is never handed out again.
	write(t, s, func(tx Tx) error {
		if err := tx.DeleteIntent(3); err != nil {
			return err
		}
		if err := tx.DeleteIntent(99); err != nil {
			return err
		}
		id, err := tx.AddIntent(&Intent{Flow: "contacts", Side: Target, FromID: "s3"})
		if err == nil && id != 4 {
			err = fmt.Errorf("new intent got id %d after deleting 3, want 4", id)
		}
		return err
	})
	got, _ = s.Intents(ctx, "")
	var gotIDs []int64
	for _, in := range got {
		gotIDs = append(gotIDs, in.ID)
	}
	if want := []int64{1, 2, 4}; !reflect.DeepEqual(gotIDs, want) {
		t.Errorf("ids after delete %v, want %v", gotIDs, want)
	}

	// DeleteIntents deletes a batch, over several statements when it is large, and ignores
	// ids that are not there.
	var batch []int64
	write(t, s, func(tx Tx) error {
		for i := range 1203 {
			id, err := tx.AddIntent(&Intent{Flow: "bulk", Side: Target, FromID: fmt.Sprint(i)})
			if err != nil {
				return err
			}
			batch = append(batch, id)
		}
		return nil
	})
	write(t, s, func(tx Tx) error { return tx.DeleteIntents(append(batch[:1201:1201], 9999)) })
	got, _ = s.Intents(ctx, "bulk")
	if len(got) != 2 || got[0].ID != batch[1201] || got[1].ID != batch[1202] {
		t.Errorf("after DeleteIntents of all but the last two: %+v", got)
	}
	if got, _ := s.Intents(ctx, "contacts"); len(got) != 2 {
		t.Errorf("DeleteIntents touched other flows: %+v", got)
	}
}
