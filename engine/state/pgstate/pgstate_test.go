package pgstate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/state"
	"github.com/dataflow-sync/dataflow/engine/state/storetest"
	"github.com/dataflow-sync/dataflow/internal/pgtest"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// openFresh opens a new database's state for writing, closed when the test ends.
func openFresh(t *testing.T, opts Options) (*Store, string) {
	t.Helper()
	dsn := pgtest.New(t).DSN()
	st, err := Open(context.Background(), dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, dsn
}

// TestStoreContract runs the Store contract that the SQLite store passes.
func TestStoreContract(t *testing.T) {
	storetest.Run(t, storetest.OpenerFunc(func(t *testing.T) (state.Store, func(state.Mode) (state.Store, error)) {
		st, dsn := openFresh(t, Options{Mode: state.ReadWrite})
		return st, func(mode state.Mode) (state.Store, error) {
			return Open(context.Background(), dsn, Options{Mode: mode})
		}
	}))
}

var ctx = context.Background()

// A worker whose lease expired and was taken over commits nothing, not even a transaction it
// began before the take-over; the new holder commits.
func TestLeaseFencesAStalledWorker(t *testing.T) {
	dsn := pgtest.New(t).DSN()
	open := func(worker string) *Store {
		st, err := Open(ctx, dsn, Options{Mode: state.ReadWrite, Shared: true, Worker: worker})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	a, b := open("a"), open("b")
	leaseA, err := a.Acquire(ctx, []string{"f", "ref"}, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Acquire(ctx, []string{"ref"}, time.Minute); !errors.Is(err, ErrLeaseHeld) || err.Error() != "flow ref: the flow is leased to another worker (a)" {
		t.Fatalf("taking a live lease: %v", err)
	}
	stale, err := leaseA.Store().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stale.SetWatermark("f", state.Source, "from-a"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // a stalls past its lease
	leaseB, err := b.Acquire(ctx, []string{"f", "ref"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := leaseB.Tokens(), map[string]int64{"f": 2, "ref": 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("tokens after the take-over = %v, want %v", got, want)
	}
	err = stale.Commit()
	if !errors.Is(err, ErrLeaseLost) || err.Error() != "commit the link state of f, ref: nothing was committed: the lease of the flow was taken over by another worker" {
		t.Fatalf("the stalled worker's commit: %v", err)
	}
	if err := leaseA.Renew(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("renewing a lost lease: %v", err)
	}
	write := func(l *Lease, value string) error {
		tx, err := l.Store().Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if err := tx.SetWatermark("f", state.Source, value); err != nil {
			return err
		}
		return tx.Commit()
	}
	if err := write(leaseA, "from-a-again"); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("a later commit of the stalled worker: %v", err)
	}
	// A deferred commit (the links of a batch of creates) is fenced as well.
	deferred, err := leaseA.Store().(state.Deferring).BeginDeferred(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := deferred.SetWatermark("f", state.Source, "from-a-deferred"); err != nil {
		t.Fatal(err)
	}
	if err := deferred.Commit(); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("a deferred commit of the stalled worker: %v", err)
	}
	if err := write(leaseB, "from-b"); err != nil {
		t.Fatal(err)
	}
	if w, _ := b.Watermark(ctx, "f", state.Source); w != "from-b" {
		t.Errorf("watermark = %q, want from-b", w)
	}
	// Released, the flow is free at once; a leased run records its worker, flows and tokens.
	if err := leaseB.Release(ctx); err != nil {
		t.Fatal(err)
	}
	leaseC, err := a.Acquire(ctx, []string{"f"}, time.Minute)
	if err != nil {
		t.Fatalf("taking a released lease: %v", err)
	}
	tx, err := leaseC.Store().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id, err := tx.StartRun()
	if err != nil || tx.Commit() != nil {
		t.Fatal(err)
	}
	var worker string
	var flows []string
	var tokens []int64
	if err := a.Pool().QueryRow(ctx, "SELECT worker, flows, tokens FROM dataflow_state.runs WHERE id = $1", id).Scan(&worker, &flows, &tokens); err != nil {
		t.Fatal(err)
	}
	if worker != "a" || !reflect.DeepEqual(flows, []string{"f"}) || !reflect.DeepEqual(tokens, []int64{3}) {
		t.Errorf("run recorded %q %v %v", worker, flows, tokens)
	}
	// A shared store writes through leases only.
	if _, err := a.Begin(ctx); err == nil {
		t.Error("a shared store began a transaction without a lease")
	}
	if _, err := a.BeginDeferred(ctx); err == nil {
		t.Error("a shared store began a deferred transaction without a lease")
	}
}

// A deferred Tx commits without waiting for the WAL flush (synchronous_commit off), for its
// own commit only: the next Tx waits for it again, and what the deferred one wrote is there.
func TestBeginDeferred(t *testing.T) {
	st, dsn := openFresh(t, Options{Mode: state.ReadWrite})
	level := func(tx state.Tx) string {
		t.Helper()
		var v string
		if err := tx.(*pgTx).tx.QueryRow(ctx, "SHOW synchronous_commit").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, deferred := range []bool{true, false, true, false} {
		begin := st.Begin
		if deferred {
			begin = st.BeginDeferred
		}
		tx, err := begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := "on"
		if deferred {
			want = "off"
		}
		if got := level(tx); got != want {
			t.Errorf("synchronous_commit in a Tx (deferred %v) = %s, want %s", deferred, got, want)
		}
		if err := tx.PutLink(&state.Link{Flow: "f", SourceID: fmt.Sprint("s-", deferred), TargetID: fmt.Sprint("t-", deferred)}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	other, err := Open(ctx, dsn, Options{Mode: state.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if n, err := other.CountLinks(ctx, "f"); err != nil || n != 2 {
		t.Errorf("links seen by another connection: %d, %v; want 2", n, err)
	}
}

// Workers share the state; a `dataflow run` (exclusive) is kept out while they hold it, and
// keeps them out while it runs.
func TestSharedAndExclusive(t *testing.T) {
	dsn := pgtest.New(t).DSN()
	w1, err := Open(ctx, dsn, Options{Mode: state.ReadWrite, Shared: true})
	if err != nil {
		t.Fatal(err)
	}
	w2, err := Open(ctx, dsn, Options{Mode: state.ReadWrite, Shared: true})
	if err != nil {
		t.Fatalf("a second worker: %v", err)
	}
	_, err = Open(ctx, dsn, Options{Mode: state.ReadWrite})
	if !errors.Is(err, state.ErrLocked) || strings.Contains(err.Error(), pgtest.Password) {
		t.Fatalf("a run beside workers: %v", err)
	}
	if want := "the link state " + Redact(dsn) + " is in use by another run or dataflow serve; wait for it to finish"; err.Error() != want {
		t.Errorf("error = %q\nwant    %q", err, want)
	}
	w1.Close()
	w2.Close()
	run, err := Open(ctx, dsn, Options{Mode: state.ReadWrite})
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	if _, err := Open(ctx, dsn, Options{Mode: state.ReadWrite, Shared: true}); !errors.Is(err, state.ErrLocked) {
		t.Errorf("a worker beside a run: %v", err)
	}
}

// No message names the password: not a refused login, not an unreachable server, not a
// state that no run has written.
func TestPasswordNeverShown(t *testing.T) {
	db := pgtest.New(t)
	wrong := db.Server.DSN("postgres", "s3cret-Pa55", db.Name)
	_, err := Open(ctx, wrong, Options{Mode: state.ReadWrite})
	if err == nil || strings.Contains(err.Error(), "s3cret-Pa55") || !strings.Contains(err.Error(), "postgres:xxxxx@") {
		t.Errorf("a refused login: %v", err)
	}
	_, err = Open(ctx, "postgres://u:s3cret-Pa55@127.0.0.1:1/x?connect_timeout=2", Options{Mode: state.ReadOnly})
	if err == nil || strings.Contains(err.Error(), "s3cret-Pa55") {
		t.Errorf("an unreachable server: %v", err)
	}
	_, err = Open(ctx, db.DSN(), Options{Mode: state.ReadOnly})
	if !errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), pgtest.Password) {
		t.Errorf("reading an empty database: %v", err)
	}
	if want := "the link state " + Redact(db.DSN()) + " is empty: no run has written it yet"; err.Error() != want {
		t.Errorf("error = %q\nwant    %q", err, want)
	}
	if got := Redact("postgres://u@h/db?password=pw&sslmode=disable"); strings.Contains(got, "pw&") || !strings.Contains(got, "password=xxxxx") {
		t.Errorf("Redact of a password parameter = %q", got)
	}
}

// A run that has closed its state has let go of it: the next run, started at once, opens it.
// A session that ends releases its advisory locks only when the server has noticed the closed
// connection, a moment later; before Close unlocked first, one run in about a hundred started
// right after another was refused as "in use by another run", and a look at pg_locks right
// after Close found the lock still held almost every time.
func TestCloseReleasesTheLockAtOnce(t *testing.T) {
	dsn := pgtest.New(t).DSN()
	look, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer look.Close(ctx)
	for i := range 20 {
		for _, shared := range []bool{false, true} {
			st, err := Open(ctx, dsn, Options{Mode: state.ReadWrite, Shared: shared})
			if err != nil {
				t.Fatalf("open %d (shared %v) right after a close: %v", i+1, shared, err)
			}
			if err := st.Close(); err != nil {
				t.Fatalf("close %d: %v", i+1, err)
			}
			var held int
			if err := look.QueryRow(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())").Scan(&held); err != nil {
				t.Fatal(err)
			}
			if held > 0 {
				t.Fatalf("close %d (shared %v) returned with the state's lock still held", i+1, shared)
			}
		}
	}
}

// TestMigrateIntentsOfSchema1: the intents a dataflow of schema 1 recorded, a row each, are
// read after the migration to rows of batches beside the new ones, in the order of their
// ids (an intent's id and time make the idempotency key of its create); a delete of old and
// new ids together removes both, and no id is handed out twice.
func TestMigrateIntentsOfSchema1(t *testing.T) {
	dsn := pgtest.New(t).DSN()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	stmts := append([]string{"CREATE SCHEMA " + schema}, migrations[0]...)
	stmts = append(stmts,
		"INSERT INTO "+schema+".meta (key, value) VALUES ('version', '1')",
		"INSERT INTO "+schema+".intents (flow, side, from_id, data, created) VALUES ('f', 'target', 's1', '{\"name\":\"A\"}', '2024-03-01T12:30:45.123456Z')",
		"INSERT INTO "+schema+".intents (flow, side, from_id, data, created) VALUES ('f', 'source', 't2', NULL, '2024-03-01T12:30:46Z')",
		"INSERT INTO "+schema+".intents (flow, side, from_id, data, created) VALUES ('f', 'target', 's3', NULL, '2024-03-01T12:30:47Z')",
		"DELETE FROM "+schema+".intents WHERE id = 3",
	)
	for _, stmt := range stmts {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	st, err := Open(ctx, dsn, Options{Mode: state.ReadWrite})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var ids []int64
	created := time.Date(2024, 3, 2, 0, 0, 0, 0, time.UTC)
	storetest.Write(t, st, func(tx state.Tx) error {
		ids, err = tx.AddIntents([]state.Intent{
			{Flow: "f", Side: state.Target, FromID: "s4", Created: created},
			{Flow: "f", Side: state.Target, FromID: "s5", Created: created},
		})
		return err
	})
	if ids[0] <= 3 {
		t.Fatalf("ids %v after the migration; 3 was handed out before it", ids)
	}
	got, err := st.Intents(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	var show []string
	for _, in := range got {
		show = append(show, fmt.Sprintf("%d %s %s %s %s", in.ID, in.Side, in.FromID, in.Data, in.Created.Format(time.RFC3339Nano)))
	}
	want := []string{
		"1 target s1 {\"name\":\"A\"} 2024-03-01T12:30:45.123456Z",
		"2 source t2  2024-03-01T12:30:46Z",
		fmt.Sprintf("%d target s4  2024-03-02T00:00:00Z", ids[0]),
		fmt.Sprintf("%d target s5  2024-03-02T00:00:00Z", ids[1]),
	}
	if !slices.Equal(show, want) {
		t.Errorf("intents after the migration:\n%s\nwant\n%s", strings.Join(show, "\n"), strings.Join(want, "\n"))
	}
	storetest.Write(t, st, func(tx state.Tx) error { return tx.DeleteIntents([]int64{1, ids[0]}) })
	var pending int // as internal/campaign counts them
	if err := conn.QueryRow(ctx, "SELECT (SELECT count(*) FROM "+schema+".intents) + "+
		"(SELECT coalesce(sum(cardinality(ids)), 0) FROM "+schema+".intent_batches)").Scan(&pending); err != nil || pending != 2 {
		t.Errorf("%d intents counted in the tables, %v; want 2", pending, err)
	}
	if got, err := st.Intents(ctx, "f"); err != nil || len(got) != 2 || got[0].ID != 2 || got[1].ID != ids[1] {
		t.Errorf("intents after deleting an old and a new one: %+v, %v; want those of ids 2 and %d", got, err, ids[1])
	}
}
