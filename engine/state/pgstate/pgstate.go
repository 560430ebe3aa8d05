// Package pgstate keeps the link state in PostgreSQL (pgx v5), for several `dataflow serve`
// processes, on one machine or many, that share the work: the same state.Store as the SQLite
// file, in a schema of its own (dataflow_state) with its own migrations, durable commits
// (synchronous_commit = on), and two ways to write:
//
//   - Exclusive (`dataflow run`, the admin commands): the store holds a session advisory lock
//     for its lifetime, so that a second run refuses (state.ErrLocked) while one writes.
//   - Shared (`dataflow serve` workers): the store holds the same advisory lock shared, which
//     keeps `dataflow run` out while workers run, and each flow run writes through a Lease: a
//     per-flow row with an increasing fencing token, checked inside every write transaction
//     of the run, so that a worker that stalled past its lease and woke after another took the
//     flow over commits nothing.
//
// The DSN's password never appears in a message: errors name the state by Redact(dsn).
package pgstate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/dataflow-sync/dataflow/engine/state"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// IsURL reports whether a --state value names a PostgreSQL state rather than a file.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Redact returns the DSN without its password, to name the state in messages and logs.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "a PostgreSQL state (unreadable URL)"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// Options say how Open opens the state.
type Options struct {
	// Mode is state.ReadOnly (look at it, beside writers) or state.ReadWrite.
	Mode state.Mode
	// Shared opens a ReadWrite state for several processes (dataflow serve): writes go
	// through Leases; Begin on the store itself is refused.
	Shared bool
	// Worker names this process in the runs it records.
	Worker string
	// IdleInTransaction, for a shared store, is how long the server lets a session sit in a
	// transaction without a statement before it ends it (10 s if 0): a worker stopped (SIGSTOP)
	// inside a transaction would otherwise hold its row locks, and with them its flows.
	IdleInTransaction time.Duration
}

// lockKey is the advisory lock that keeps a `dataflow run` and the serve workers apart (the
// first 8 bytes of "dataflow").
const lockKey int64 = 0x64617461666c6f77

// Store is the link state in a PostgreSQL database. It is safe for concurrent use; Begin
// waits while another Tx of the same Store is open, as SQLite's does.
type Store struct {
	name   string // Redact(dsn)
	opts   Options
	pool   *pgxpool.Pool
	lock   *pgx.Conn // holds the advisory lock; nil for ReadOnly
	writer chan struct{}
	now    func() time.Time

	closeOnce sync.Once
	closeErr  error
}

var (
	_ state.Store       = (*Store)(nil)
	_ state.FlowLister  = (*Store)(nil)
	_ state.Overlapping = (*Store)(nil)
	_ state.Deferring   = (*Store)(nil)
	_ state.Deferring   = (*leasedStore)(nil)
)

// Open opens the state at dsn (a postgres:// URL). ReadWrite creates the schema if missing and
// migrates it, under an advisory lock so that workers starting together migrate once; it
// then takes the advisory lock exclusive (or shared, with Options.Shared): an error wrapping
// state.ErrLocked says another process holds it. ReadOnly needs a state a run has written
// (the error wraps fs.ErrNotExist otherwise) of this dataflow's schema version.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	name := Redact(dsn)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open the link state %s: %s", name, redactErr(err, dsn))
	}
	// Durable commits whatever the server's default; times in UTC.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	cfg.ConnConfig.RuntimeParams["application_name"] = "dataflow"
	if opts.Shared {
		idle := opts.IdleInTransaction
		if idle <= 0 {
			idle = 10 * time.Second
		}
		cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = fmt.Sprint(idle.Milliseconds())
	}
	cfg.MaxConns = 8
	s := &Store{name: name, opts: opts, writer: make(chan struct{}, 1), now: time.Now}
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("open the link state %s: %s", name, redactErr(err, dsn))
	}
	if err := s.pool.Ping(ctx); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("open the link state %s: %s", name, redactErr(err, dsn))
	}
	switch opts.Mode {
	case state.ReadOnly:
		err = s.checkReadable(ctx)
	case state.ReadWrite:
		err = s.openWritable(ctx, cfg.ConnConfig)
	default:
		err = fmt.Errorf("open the link state %s: unknown mode %d", name, opts.Mode)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// redactErr is err's text with the DSN's password taken out (pgx names the DSN in some).
func redactErr(err error, dsn string) string {
	text := err.Error()
	if u, perr := url.Parse(dsn); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			text = strings.ReplaceAll(text, pw, "xxxxx")
		}
	}
	if u, perr := url.Parse(dsn); perr == nil {
		if pw := u.Query().Get("password"); pw != "" {
			text = strings.ReplaceAll(text, pw, "xxxxx")
		}
	}
	return text
}

// notFound wraps fs.ErrNotExist with a message of its own.
type notFound struct{ msg string }

func (e *notFound) Error() string { return e.msg }
func (e *notFound) Unwrap() error { return fs.ErrNotExist }

func (s *Store) checkReadable(ctx context.Context) error {
	v, err := schemaVersionOf(ctx, s.pool)
	switch {
	case err != nil:
		return fmt.Errorf("open the link state %s: %w", s.name, err)
	case v == 0:
		return &notFound{fmt.Sprintf("the link state %s is empty: no run has written it yet", s.name)}
	case v < schemaVersion:
		return fmt.Errorf("the link state %s was written by an older dataflow (schema %d, this one knows %d); a run of this one upgrades it",
			s.name, v, schemaVersion)
	case v > schemaVersion:
		return fmt.Errorf("the link state %s was written by a newer dataflow (schema %d, this one knows %d); run that dataflow or a newer one",
			s.name, v, schemaVersion)
	}
	return nil
}

func (s *Store) openWritable(ctx context.Context, cc *pgx.ConnConfig) error {
	if err := migrate(ctx, s.pool); err != nil {
		return fmt.Errorf("open the link state %s: %w", s.name, err)
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return fmt.Errorf("open the link state %s: %s", s.name, redactErr(err, cc.ConnString()))
	}
	fn := "pg_try_advisory_lock"
	if s.opts.Shared {
		fn = "pg_try_advisory_lock_shared"
	}
	var got bool
	if err := conn.QueryRow(ctx, "SELECT "+fn+"($1)", lockKey).Scan(&got); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return fmt.Errorf("open the link state %s: %w", s.name, err)
	}
	if !got {
		conn.Close(context.WithoutCancel(ctx))
		holder := "another run"
		if !s.opts.Shared {
			holder = "another run or dataflow serve"
		}
		return &lockedError{msg: fmt.Sprintf("the link state %s is in use by %s; wait for it to finish", s.name, holder)}
	}
	s.lock = conn
	return nil
}

// lockedError matches state.ErrLocked.
type lockedError struct{ msg string }

func (e *lockedError) Error() string { return e.msg }
func (e *lockedError) Unwrap() error { return state.ErrLocked }

// Pool is the store's connection pool: the service puts River's job queue in the same
// database.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Name is the state's DSN without its password.
func (s *Store) Name() string { return s.name }

// SetWorker names the process in the runs it starts from now on.
func (s *Store) SetWorker(name string) { s.opts.Worker = name }

// SetClock replaces the store's clock, for tests that compare the times it records.
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// Overlaps implements state.Overlapping: reads take connections of their own from the pool.
func (s *Store) Overlaps() bool { return s.opts.Mode == state.ReadWrite }

// Close closes the pool, then releases the lock: never the other way round, or another run
// could start while this one still writes. The lock is released by a statement before its
// session is closed: a session that ends releases its locks only when the server has noticed
// the closed connection, a moment later, and a run started at once would be refused.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.pool.Close()
		if s.lock != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, unlockErr := s.lock.Exec(ctx, "SELECT pg_advisory_unlock_all()")
			s.closeErr = errors.Join(unlockErr, s.lock.Close(ctx))
		}
	})
	return s.closeErr
}

// Begin starts a write transaction. A shared store writes through a Lease only.
func (s *Store) Begin(ctx context.Context) (state.Tx, error) {
	if s.opts.Mode != state.ReadWrite {
		return nil, fmt.Errorf("the link state %s is open read-only; it cannot be written", s.name)
	}
	if s.opts.Shared {
		return nil, fmt.Errorf("the link state %s is shared by workers: a run writes it through the lease of its flows", s.name)
	}
	return s.begin(ctx, s.writer, nil)
}

// BeginDeferred implements state.Deferring: the Tx commits with synchronous_commit off, so
// that its commit does not wait for the WAL flush; PostgreSQL flushes the WAL in order, so
// the next ordinary commit's flush makes it durable too.
func (s *Store) BeginDeferred(ctx context.Context) (state.Tx, error) {
	tx, err := s.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return deferCommit(tx.(*pgTx))
}

// deferCommit turns synchronous_commit off for the rest of t.
func deferCommit(t *pgTx) (state.Tx, error) {
	if _, err := t.tx.Exec(t.ctx, "SET LOCAL synchronous_commit TO OFF"); err != nil {
		t.Rollback()
		return nil, fmt.Errorf("begin a link state transaction: %w", err)
	}
	return t, nil
}

// begin waits for writer's token and opens a transaction; fence, if any, is checked before
// the commit.
func (s *Store) begin(ctx context.Context, writer chan struct{}, fence *Lease) (*pgTx, error) {
	select {
	case writer <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		<-writer
		return nil, fmt.Errorf("begin a link state transaction: %w", err)
	}
	return &pgTx{s: s, ctx: ctx, tx: tx, writer: writer, fence: fence}, nil
}

// isUnique reports a unique violation.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
