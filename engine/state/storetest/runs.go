package storetest

// The contract of the run log, the list of flows, the lock and the errors.

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/state"
)

func testRuns(t *testing.T, o Opener) {
	st, now, _ := open(t, o)
	w, ok := st.(worked)
	if !ok {
		t.Fatalf("%T has no SetWorker", st)
	}
	var ids []int64
	for i := range 3 {
		if i == 2 {
			w.SetWorker("host-b:42")
		}
		Write(t, st, func(tx state.Tx) error {
			id, err := tx.StartRun()
			ids = append(ids, id)
			return err
		})
		*now = now.Add(time.Second)
	}
	Write(t, st, func(tx state.Tx) error {
		return tx.FinishRun(ids[0], "ok", json.RawMessage(`[{"flow":"f"}]`))
	})
	runs, err := st.Runs(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 3 || runs[0].ID != ids[2] || runs[2].ID != ids[0] {
		t.Fatalf("Runs = %+v, want newest first", runs)
	}
	if r := runs[2]; r.Status != "ok" || string(r.Summary) != `[{"flow":"f"}]` || !r.Started.Equal(T0) || !r.Finished.Equal(T0.Add(3*time.Second)) || r.Worker != "" {
		t.Errorf("finished run = %+v", r)
	}
	if r := runs[1]; r.Status != "running" || !r.Finished.IsZero() || r.Summary != nil {
		t.Errorf("running run = %+v", r)
	}
	if r := runs[0]; r.Worker != "host-b:42" {
		t.Errorf("the worker of a run = %q, want host-b:42", r.Worker)
	}
	if last, _ := st.Runs(ctx, 1); len(last) != 1 || last[0].ID != ids[2] {
		t.Errorf("Runs(1) = %+v", last)
	}
	tx, err := st.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := tx.FinishRun(123456, "ok", nil); err == nil || err.Error() != "finish run 123456: there is no such run" {
		t.Errorf("finishing a missing run: %v", err)
	}
}

func testFlows(t *testing.T, o Opener) {
	st, _, _ := open(t, o)
	lister, ok := st.(state.FlowLister)
	if !ok {
		t.Fatalf("%T is no FlowLister", st)
	}
	Write(t, st, func(tx state.Tx) error {
		for _, err := range []error{
			tx.PutLink(testLink("links-b", 1)),
			tx.PutLink(testLink("links-b", 2)),
			tx.PutLink(testLink("links-a", 1)),
			tx.PutWaiting("waits", state.Source, "r", "x"),
			tx.PutDeadLetter("fails", state.Target, "r", "x"),
			tx.PutDeadLetter("links-a", state.Target, "r", "x"),
			tx.SetWatermark("marks-only", state.Source, "w"),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	flows, err := lister.Flows(ctx)
	if want := []string{"fails", "links-a", "links-b", "waits"}; err != nil || !reflect.DeepEqual(flows, want) {
		t.Errorf("Flows = %q, %v; want %q", flows, err, want)
	}
}

func testLock(t *testing.T, o Opener) {
	st, _, reopen := open(t, o)
	Write(t, st, func(tx state.Tx) error { return tx.PutLink(testLink("f", 1)) })
	second, err := reopen(state.ReadWrite)
	if err == nil {
		second.Close()
		t.Fatal("a second writer opened the state while the first holds it")
	}
	if !errors.Is(err, state.ErrLocked) {
		t.Fatalf("second writer: %v, want ErrLocked", err)
	}
	// A reader opens beside the writer, sees what it committed, and cannot write.
	ro, err := reopen(state.ReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if n, err := ro.CountLinks(ctx, "f"); err != nil || n != 1 {
		t.Errorf("a reader counts %d links, %v", n, err)
	}
	if tx, err := ro.Begin(ctx); err == nil {
		tx.Rollback()
		t.Error("a read-only store began a write transaction")
	}
	// Once the writer closes, the next one gets in.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	next, err := reopen(state.ReadWrite)
	if err != nil {
		t.Fatalf("a writer after the first closed: %v", err)
	}
	next.Close()
}

func testErrors(t *testing.T, o Opener) {
	st, _, _ := open(t, o)
	tx, err := st.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, c := range []struct {
		err  error
		want string
	}{
		{tx.PutLink(&state.Link{Flow: "f", SourceID: "s"}), "put link: a link needs a flow, a source id and a target id"},
		{func() error { _, err := tx.AddIntent(&state.Intent{Flow: "f", Side: "left"}); return err }(), `add intent of flow "f": side is "left"; it must be "source" or "target"`},
		{func() error {
			_, err := tx.AddIntent(&state.Intent{Flow: "f", Side: state.Target, Data: json.RawMessage(`{nope`)})
			return err
		}(), `add intent of flow "f": data: not valid JSON`},
		{tx.SetWatermark("f", "up", "x"), `set watermark of flow "f": side is "up"; it must be "source" or "target"`},
		{tx.PutDeadLetter("f", "", "r", "x"), `put dead letter of flow "f": side is ""; it must be "source" or "target"`},
		{tx.SetReconciled("f", time.Time{}), `set the last reconcile of flow "f": no time`},
		{tx.PutSystem("", state.SystemIdentity{}), "put system: it needs an id"},
		{func() error { _, err := tx.PutPending(&state.Pending{}); return err }(), "put pending change: it needs a flow"},
	} {
		if c.err == nil || c.err.Error() != c.want {
			t.Errorf("error = %v\nwant    %s", c.err, c.want)
		}
	}
	// None of these reached the database: the Tx commits.
	if err := tx.PutLink(testLink("f", 1)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("commit after refused calls: %v", err)
	}
}
