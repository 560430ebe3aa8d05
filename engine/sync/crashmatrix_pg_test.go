package sync_test

import (
	"context"
	"fmt"
	"os"
	gosync "sync"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/state"
	"github.com/dataflow-sync/dataflow/engine/state/pgstate"
	"github.com/dataflow-sync/dataflow/internal/pgtest"
	"github.com/jackc/pgx/v5"
)

// TestCrashMatrixPostgres runs the crash-point matrix with the link state in PostgreSQL
// (pgstate, as `--state postgres://...` opens it for `dataflow run`) instead of a SQLite file:
// the recovery must not depend on the store. By default a subset: every scenario, the first
// run killed at every crash point (with none, part and all of a batch applied), then the
// recovery and settling runs unkilled (about 200 cases). DATAFLOW_CRASH_MATRIX_PG=full adds
// the recovery runs killed at each of their writes and commits: the whole matrix, some 980
// cases, 8 to 9 minutes on the loaded 2-core CI machine (making a database from the template
// costs 30 to 370 ms a case, opening the state 15 to 150 ms a run). Each case starts from a
// copy of its scenario's checkpoint, a database made from the checkpoint's as a template
// (CREATE DATABASE ... TEMPLATE). Without PostgreSQL it skips (DATAFLOW_REQUIRE_POSTGRES=1
// fails).
func TestCrashMatrixPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash-point matrix over PostgreSQL runs for a minute or more")
	}
	srv := pgtest.Start(t)
	states := newPGCrashStates(t, srv)
	start := time.Now()
	runCrashMatrix(t, states, crashScenarios(), os.Getenv("DATAFLOW_CRASH_MATRIX_PG") != "full")
	t.Logf("the matrix over PostgreSQL took %s (%d databases made; time in %v)", time.Since(start).Round(time.Millisecond), states.made, states.spent)
}

// pgCrashStates keep each world's link state in a database of its own on one server.
type pgCrashStates struct {
	srv   *pgtest.Server
	mu    gosync.Mutex
	admin *pgx.Conn         // to the server's postgres database: creates and drops the others
	names map[string]string // world directory → database
	made  int
	// spent is the time taken by each kind of call, for the log: where the matrix's time goes.
	spent map[string]time.Duration
}

func (s *pgCrashStates) took(what string, since time.Time) {
	s.mu.Lock()
	s.spent[what] += time.Since(since)
	s.mu.Unlock()
}

func newPGCrashStates(t *testing.T, srv *pgtest.Server) *pgCrashStates {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, srv.AdminDSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	return &pgCrashStates{srv: srv, admin: admin, names: map[string]string{}, spent: map[string]time.Duration{}}
}

// create makes a new database, empty or a copy of template, for the world at dir.
func (s *pgCrashStates) create(ctx context.Context, dir, template string) (string, error) {
	defer s.took("create", time.Now())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.made++
	name := fmt.Sprintf("crash_%d", s.made)
	q := "CREATE DATABASE " + name
	if template != "" {
		// PostgreSQL 15's default strategy, WAL_LOG, copies a small database in some 30 ms;
		// FILE_COPY checkpoints twice and takes 200.
		q += " TEMPLATE " + template
	}
	if _, err := s.admin.Exec(ctx, q); err != nil {
		return "", fmt.Errorf("%s: %w", q, err)
	}
	s.names[dir] = name
	return name, nil
}

func (s *pgCrashStates) name(w *crashWorld) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.names[w.dir]
}

func (s *pgCrashStates) open(ctx context.Context, w *crashWorld, mode state.Mode) (state.Store, error) {
	name := s.name(w)
	if name == "" {
		if mode != state.ReadWrite {
			return nil, fmt.Errorf("no link state for %s", w.dir)
		}
		var err error
		if name, err = s.create(ctx, w.dir, ""); err != nil {
			return nil, err
		}
	}
	defer s.took("open", time.Now())
	st, err := pgstate.Open(ctx, s.srv.AdminDSN(name), pgstate.Options{Mode: mode})
	if err != nil {
		return nil, err
	}
	return &timedStore{Store: st, s: s}, nil
}

func (s *pgCrashStates) copy(t *testing.T, from, to *crashWorld) {
	t.Helper()
	template := s.name(from)
	if template == "" {
		t.Fatalf("no link state for %s to copy", from.dir)
	}
	if _, err := s.create(context.Background(), to.dir, template); err != nil {
		t.Fatal(err)
	}
}

func (s *pgCrashStates) remove(t *testing.T, w *crashWorld) {
	t.Helper()
	defer s.took("drop", time.Now())
	s.mu.Lock()
	defer s.mu.Unlock()
	name := s.names[w.dir]
	if name == "" {
		return
	}
	delete(s.names, w.dir)
	if _, err := s.admin.Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
		t.Errorf("drop the link state of %s: %v", w.dir, err)
	}
}

// timedStore counts the time of its Close.
type timedStore struct {
	*pgstate.Store
	s *pgCrashStates
}

func (ts *timedStore) Close() error {
	defer ts.s.took("close", time.Now())
	return ts.Store.Close()
}
