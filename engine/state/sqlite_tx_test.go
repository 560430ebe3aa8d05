package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

func TestTxRefusesBadInput(t *testing.T) {
	s, _ := newStore(t)
	tx, err := s.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	tests := []struct {
		name string
		do   func() error
		want string
	}{
		{"intent side", func() error { _, err := tx.AddIntent(&Intent{Flow: "f", Side: "left"}); return err },
			`add intent of flow "f": side is "left"; it must be "source" or "target"`},
		{"intent data", func() error {
			_, err := tx.AddIntent(&Intent{Flow: "f", Side: Target, Data: json.RawMessage(`{"a":`)})
			return err
		}, `add intent of flow "f": data: not valid JSON`},
		{"intent flow", func() error { _, err := tx.AddIntent(&Intent{Side: Target}); return err },
			`add intent: an intent needs a flow`},
		{"watermark side", func() error { return tx.SetWatermark("f", "", "1") },
			`set watermark of flow "f": side is ""; it must be "source" or "target"`},
		{"dead letter side", func() error { return tx.PutDeadLetter("f", "Source", "r", "x") },
			`put dead letter of flow "f": side is "Source"; it must be "source" or "target"`},
		{"waiting side", func() error { return tx.PutWaiting("f", "both", "r", "x") },
			`put waiting record of flow "f": side is "both"; it must be "source" or "target"`},
		{"unknown run", func() error { return tx.FinishRun(42, "ok", nil) },
			`finish run 42: there is no such run`},
		{"run summary", func() error {
			id, err := tx.StartRun()
			if err != nil {
				return err
			}
			return tx.FinishRun(id, "ok", json.RawMessage(`nope`))
		}, `finish run 1: summary: not valid JSON`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); err == nil || err.Error() != tc.want {
				t.Errorf("got %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestWatermarks(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	write(t, s, func(tx Tx) error {
		for _, w := range [][3]string{
			{"contacts", Source, "2024-03-01T00:00:00Z"},
			{"contacts", Target, "1709251200"},
			{"deals", Source, "cursor-1"},
			{"deals", Source, "cursor-2"}, // replaces
		} {
			if err := tx.SetWatermark(w[0], w[1], w[2]); err != nil {
				return err
			}
		}
		return nil
	})
	for _, tc := range []struct{ flow, side, want string }{
		{"contacts", Source, "2024-03-01T00:00:00Z"},
		{"contacts", Target, "1709251200"},
		{"deals", Source, "cursor-2"},
		{"deals", Target, ""},
		{"unknown", Source, ""},
	} {
		got, err := s.Watermark(ctx, tc.flow, tc.side)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("Watermark(%s, %s) = %q, want %q", tc.flow, tc.side, got, tc.want)
		}
	}
}

// Counts are kept per flow, replaced by the next SetCounts and forgotten by ClearCounts.
func TestCounts(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	write(t, s, func(tx Tx) error {
		if err := tx.SetCounts("contacts", Counts{Source: 10, Target: -1, Skipped: 3, SourceDeletions: -1, TargetDeletions: 7}); err != nil {
			return err
		}
		if err := tx.SetCounts("deals", Counts{Source: 1, Target: 2}); err != nil {
			return err
		}
		return tx.SetCounts("deals", Counts{Source: 100000, Target: 99999, Skipped: 1, SourceDeletions: 5, TargetDeletions: -1}) // replaces
	})
	for _, tc := range []struct {
		flow string
		want Counts
		ok   bool
	}{
		{"contacts", Counts{10, -1, 3, -1, 7}, true},
		{"deals", Counts{100000, 99999, 1, 5, -1}, true},
		{"unknown", Counts{}, false},
	} {
		got, ok, err := s.Counts(ctx, tc.flow)
		if err != nil || got != tc.want || ok != tc.ok {
			t.Errorf("Counts(%s) = %+v, %v, %v; want %+v, %v", tc.flow, got, ok, err, tc.want, tc.ok)
		}
	}
	write(t, s, func(tx Tx) error {
		if err := tx.ClearCounts("deals"); err != nil {
			return err
		}
		return tx.ClearCounts("unknown")
	})
	if _, ok, err := s.Counts(ctx, "deals"); ok || err != nil {
		t.Errorf("Counts(deals) after ClearCounts: %v, %v", ok, err)
	}
	if _, ok, _ := s.Counts(ctx, "contacts"); !ok {
		t.Error("ClearCounts(deals) forgot the counts of contacts")
	}
}

func TestRuns(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	var ids []int64
	for i := 0; i < 3; i++ {
		start := t0.Add(time.Duration(i) * time.Hour)
		s.now = func() time.Time { return start }
		write(t, s, func(tx Tx) error {
			id, err := tx.StartRun()
			ids = append(ids, id)
			return err
		})
	}
	s.now = func() time.Time { return t0.Add(10 * time.Minute) }
	write(t, s, func(tx Tx) error {
		return tx.FinishRun(ids[0], "ok", json.RawMessage(`{"created":3,"updated":1}`))
	})
	s.now = func() time.Time { return t0.Add(70 * time.Minute) }
	write(t, s, func(tx Tx) error { return tx.FinishRun(ids[1], "failed", json.RawMessage(`{"failed":2}`)) })

	want := []Run{
		{ID: 3, Started: t0.Add(2 * time.Hour), Status: "running"},
		{ID: 2, Started: t0.Add(time.Hour), Finished: t0.Add(70 * time.Minute), Status: "failed", Summary: json.RawMessage(`{"failed":2}`)},
		{ID: 1, Started: t0, Finished: t0.Add(10 * time.Minute), Status: "ok", Summary: json.RawMessage(`{"created":3,"updated":1}`)},
	}
	for _, tc := range []struct {
		limit int
		want  []Run
	}{{0, want}, {-1, want}, {10, want}, {2, want[:2]}, {1, want[:1]}} {
		got, err := s.Runs(ctx, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Runs(%d):\n got %+v\nwant %+v", tc.limit, got, tc.want)
		}
	}
}

func TestTxEnd(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)

	// Rollback discards, and a second Rollback is a no-op.
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.PutLink(testLink("f", 1)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Errorf("second Rollback: %v", err)
	}
	if err := tx.Commit(); err == nil || err.Error() != "the link state transaction has already been committed or rolled back" {
		t.Errorf("Commit after Rollback: %v", err)
	}
	if err := tx.PutLink(testLink("f", 2)); err == nil || err.Error() != `put link of flow "f", source "s000002": the link state transaction has already been committed or rolled back` {
		t.Errorf("PutLink after Rollback: %v", err)
	}
	if n, _ := s.CountLinks(ctx, ""); n != 0 {
		t.Errorf("%d links after Rollback, want 0", n)
	}

	// Rollback after Commit is a no-op, as in the deferred Rollback pattern.
	tx, err = s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.PutLink(testLink("f", 1)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Errorf("Rollback after Commit: %v", err)
	}
	if n, _ := s.CountLinks(ctx, ""); n != 1 {
		t.Errorf("%d links after Commit, want 1", n)
	}

	// One Tx at a time: Begin waits for the open one, or for its context.
	tx, err = s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.Begin(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Begin beside an open Tx: %v, want context.DeadlineExceeded", err)
	}
	began := make(chan error)
	go func() {
		tx2, err := s.Begin(ctx)
		if err == nil {
			err = tx2.Rollback()
		}
		began <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-began; err != nil {
		t.Errorf("Begin after the open Tx ended: %v", err)
	}
}

// Clearing where a flow's side has nothing to clear costs no statement after the first look
// in a Tx; a dead letter or waiting record put in the same Tx, or in an earlier one, is still
// cleared.
func TestClearWhereNothingIs(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	write(t, s, func(tx Tx) error {
		for i := range 3 {
			if err := tx.ClearDeadLetter("f", Source, fmt.Sprint("a", i)); err != nil {
				return err
			}
			if err := tx.ClearWaiting("f", Source, fmt.Sprint("a", i)); err != nil {
				return err
			}
		}
		if n := len(tx.(*sqliteTx).none); n != 2 {
			t.Errorf("%d empty tables known, want 2", n)
		}
		// Put in this Tx after the side was seen empty: cleared by the next call.
		if err := tx.PutDeadLetter("f", Source, "b", "x"); err != nil {
			return err
		}
		if err := tx.PutWaiting("f", Source, "b", "x"); err != nil {
			return err
		}
		if err := tx.ClearDeadLetter("f", Source, "b"); err != nil {
			return err
		}
		if err := tx.ClearWaiting("f", Source, "b"); err != nil {
			return err
		}
		// Kept: put after the others were cleared.
		if err := tx.PutDeadLetter("f", Source, "c", "y"); err != nil {
			return err
		}
		return tx.PutWaiting("f", Target, "c", "y")
	})
	dl, _ := s.DeadLetters(ctx, "f")
	w, _ := s.Waiting(ctx, "f")
	if len(dl) != 1 || dl[0].RecordID != "c" || len(w) != 1 || w[0].RecordID != "c" {
		t.Fatalf("after the first Tx: dead letters %+v, waiting %+v", dl, w)
	}
	// A later Tx looks again.
	write(t, s, func(tx Tx) error {
		if err := tx.ClearDeadLetter("f", Target, "c"); err != nil {
			return err
		}
		if err := tx.ClearDeadLetter("f", Source, "c"); err != nil {
			return err
		}
		return tx.ClearWaiting("f", Target, "c")
	})
	dl, _ = s.DeadLetters(ctx, "")
	w, _ = s.Waiting(ctx, "")
	if len(dl) != 0 || len(w) != 0 {
		t.Fatalf("after the second Tx: dead letters %+v, waiting %+v", dl, w)
	}
}

// The connection of the Txs has the page cache and the checkpoint interval a first sync needs,
// kept between Txs; reads keep SQLite's default cache on theirs.
func TestWriterPageCache(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	putLinks(t, s, "f", 0, 10)
	first := s.wconn
	putLinks(t, s, "f", 10, 20)
	if s.wconn == nil || s.wconn != first {
		t.Fatalf("the Txs had connections %p and %p, want one kept", first, s.wconn)
	}
	var writer, reader int
	if err := s.wconn.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&writer); err != nil {
		t.Fatal(err)
	}
	if err := s.db.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&reader); err != nil {
		t.Fatal(err)
	}
	if writer != -writerCacheKiB || reader != -2000 {
		t.Errorf("cache_size of the writer %d, of a reader %d; want %d and -2000", writer, reader, -writerCacheKiB)
	}
	if err := s.wconn.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&writer); err != nil {
		t.Fatal(err)
	}
	if writer != writerCheckpointPages {
		t.Errorf("wal_autocheckpoint of the writer %d, want %d", writer, writerCheckpointPages)
	}
}

// The statements of the Txs are prepared once for the store, not once per Tx, and are a few
// whatever the sizes of the batches written.
func TestTxStatementsKept(t *testing.T) {
	s, _ := newStore(t)
	var first *sql.Stmt
	for round := range 3 {
		for n := 1; n <= 130; n += 7 {
			write(t, s, func(tx Tx) error {
				links := make([]*Link, n)
				ins := make([]Intent, n)
				for i := range links {
					links[i] = testLink("f", i)
					links[i].SourceID = fmt.Sprintf("r%d-%d-%d", round, n, i)
					links[i].TargetID = links[i].SourceID
					ins[i] = Intent{Flow: "f", Side: Target, FromID: links[i].SourceID}
				}
				if err := tx.PutLinks(links); err != nil {
					return err
				}
				ids, err := tx.AddIntents(ins)
				if err != nil {
					return err
				}
				return tx.DeleteIntents(ids)
			})
			st := s.wstmts[sqlAddIntents]
			if first == nil {
				first = st
			}
			if st == nil || st != first {
				t.Fatalf("round %d, %d intents: the statement of AddIntents was prepared again", round, n)
			}
		}
	}
	if len(s.wstmts) > 10 {
		t.Errorf("%d statements kept, want at most 10", len(s.wstmts))
	}
	if n, _ := s.CountLinks(context.Background(), "f"); n != 3*(1+8+15+22+29+36+43+50+57+64+71+78+85+92+99+106+113+120+127) {
		t.Errorf("%d links", n)
	}
}

// TestAddIntentsOneRow: the intents of an AddIntents are one row, which a partial delete
// rewrites and the delete of its last intents removes; one of a flow after another, two.
func TestAddIntentsOneRow(t *testing.T) {
	s, _ := newStore(t)
	rows := func() int {
		t.Helper()
		var n int
		if err := s.db.QueryRow("SELECT count(*) FROM intent_batches").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	ins := make([]Intent, 500)
	for i := range ins {
		ins[i] = Intent{Flow: "f", Side: Target, FromID: fmt.Sprint(i), Data: json.RawMessage(`{"a":1}`)}
	}
	var ids []int64
	write(t, s, func(tx Tx) error {
		var err error
		ids, err = tx.AddIntents(ins)
		return err
	})
	if n := rows(); n != 1 {
		t.Fatalf("%d rows for the 500 intents of an AddIntents, want 1", n)
	}
	pending := func() int { // what a person or a script counts in the sqlite3 shell
		t.Helper()
		var n int
		if err := s.db.QueryRow("SELECT coalesce(sum(remaining), 0) FROM intent_batches").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := pending(); n != 500 {
		t.Fatalf("sum(remaining) = %d after an AddIntents of 500", n)
	}
	write(t, s, func(tx Tx) error { return tx.DeleteIntents(ids[:499]) })
	if n := rows(); n != 1 {
		t.Fatalf("%d rows after deleting all intents but one, want 1", n)
	}
	if n := pending(); n != 1 {
		t.Fatalf("sum(remaining) = %d after deleting all intents but one", n)
	}
	write(t, s, func(tx Tx) error { return tx.DeleteIntent(ids[499]) })
	if n := rows(); n != 0 {
		t.Fatalf("%d rows after deleting all intents, want 0", n)
	}
	write(t, s, func(tx Tx) error {
		_, err := tx.AddIntents([]Intent{ins[0], {Flow: "g", Side: Source, FromID: "x"}, ins[1]})
		return err
	})
	if n := rows(); n != 3 {
		t.Fatalf("%d rows for intents of flows f, g and f, want 3", n)
	}
}

// TestPutLinkAllocations: a link of the benchmark's shape is written straight on the driver's
// statement (execLink), without database/sql's copy of the arguments and wrap of the result
// per statement: bench i writes one per record.
func TestPutLinkAllocations(t *testing.T) {
	s, _ := newStore(t)
	rng := rand.New(rand.NewPCG(1, 2))
	links := make([]*Link, 202)
	for i := range links {
		links[i] = benchProductLink(rng, i)
	}
	write(t, s, func(tx Tx) error { return tx.PutLink(links[0]) }) // numbers the flow and the keys
	write(t, s, func(tx Tx) error {
		next := 1
		allocs := testing.AllocsPerRun(200, func() {
			if err := tx.PutLink(links[next]); err != nil {
				t.Fatal(err)
			}
			next++
		})
		// 5: the boxes of the base, the source id and the time, the driver's
		// result and its step's (through database/sql: 13).
		if allocs > 5 {
			t.Errorf("%.1f allocations per link put, want at most 5", allocs)
		}
		return nil
	})
}

// TestPutLinkCancelled: a link put in a Tx whose context has ended is refused with the
// context's error, the Tx still rolls back, and the next Tx writes.
func TestPutLinkCancelled(t *testing.T) {
	s, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := tx.PutLinks([]*Link{testLink("f", 1)}); !errors.Is(err, context.Canceled) {
		t.Errorf("PutLinks after the end of the context: %v, want context.Canceled", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	write(t, s, func(tx Tx) error { return tx.PutLink(testLink("f", 2)) })
	if n, err := s.CountLinks(context.Background(), "f"); err != nil || n != 1 {
		t.Errorf("%d links, %v; want the one of the second Tx", n, err)
	}
}

// TestTargetIDsOfOneTx: the target ids of a Tx's links, stored through one buffer and its box,
// are each its own, whatever their lengths and forms.
func TestTargetIDsOfOneTx(t *testing.T) {
	s, _ := newStore(t)
	targets := []string{"aa11", "bb22", "ccc333", "dd44", "Tx-1", "ee55", "ff"}
	write(t, s, func(tx Tx) error {
		for i, target := range targets {
			l := testLink("f", i)
			l.TargetID = target
			if err := tx.PutLink(l); err != nil {
				return err
			}
		}
		return nil
	})
	got, err := s.LinksByTarget(context.Background(), "f", targets)
	if err != nil {
		t.Fatal(err)
	}
	for i, target := range targets {
		if l := got[target]; l == nil || l.SourceID != testLink("f", i).SourceID {
			t.Errorf("the link of target %q: %+v, want that of source %q", target, l, testLink("f", i).SourceID)
		}
	}
}

// A deferred Tx commits with synchronous=NORMAL (in WAL mode: without syncing the log), for its
// own commit only: the next Tx syncs again (FULL), also after a deferred Tx rolled back; and
// what the deferred ones wrote is there for readers and after a reopen.
func TestBeginDeferred(t *testing.T) {
	s, path := newStore(t)
	ctx := context.Background()
	level := func(tx Tx) int {
		t.Helper()
		var v int
		if err := tx.(*sqliteTx).conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	const normal, full = 1, 2
	for i, step := range []struct {
		deferred bool
		end      string // commit, rollback
	}{{true, "commit"}, {false, "commit"}, {true, "rollback"}, {false, "commit"}, {true, "commit"}, {true, "commit"}, {false, "rollback"}} {
		begin, want := s.Begin, full
		if step.deferred {
			begin, want = s.BeginDeferred, normal
		}
		tx, err := begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := level(tx); got != want {
			t.Errorf("step %d: PRAGMA synchronous in a Tx (deferred %v) = %d, want %d", i, step.deferred, got, want)
		}
		if err := tx.PutLink(testLink("f", i)); err != nil {
			t.Fatal(err)
		}
		if step.end == "rollback" {
			err = tx.Rollback()
		} else {
			err = tx.Commit()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.CountLinks(ctx, "f"); err != nil || n != 5 {
		t.Errorf("links of the committed Txs: %d, %v; want 5", n, err)
	}
	s.Close()
	again, err := Open(ctx, path, ReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if n, err := again.CountLinks(ctx, "f"); err != nil || n != 5 {
		t.Errorf("links after a reopen: %d, %v; want 5", n, err)
	}
}
