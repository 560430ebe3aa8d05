package pgstate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dataflow-sync/dataflow/engine/state"
	"github.com/jackc/pgx/v5"
)

// ErrLeaseHeld is wrapped by Acquire's error when another worker's lease of a flow has not
// expired: the flow is running elsewhere.
var ErrLeaseHeld = errors.New("the flow is leased to another worker")

// ErrLeaseLost is wrapped by the errors of a leased run's commits and renewals after another
// worker took one of its flows over: the run must stop, having committed nothing since.
var ErrLeaseLost = errors.New("the lease of the flow was taken over by another worker")

// Lease is a worker's hold on the flows of one run: each flow's lease row carries the worker,
// an expiry and a fencing token that grows by one at every take-over. Every write transaction
// of the run checks, inside the database and under a row lock held until it commits, that the
// tokens are still the ones taken; a worker that stalled past the expiry and woke after
// another took a flow over fails that check and commits nothing.
type Lease struct {
	s      *Store
	flows  []string // sorted, so that leases are taken in one order everywhere
	tokens []int64  // by flows
	ttl    time.Duration
	writer chan struct{}
}

// Acquire leases flows to this store's worker for ttl. A flow whose lease has expired (its
// worker died or stalled, or released it) is taken over with the next token; a flow leased to
// a live run, of another worker or of this one, fails the whole acquisition (ErrLeaseHeld),
// leasing nothing. Expiry is by the database's clock, the one clock all workers share.
func (s *Store) Acquire(ctx context.Context, flows []string, ttl time.Duration) (*Lease, error) {
	if s.opts.Mode != state.ReadWrite {
		return nil, fmt.Errorf("the link state %s is open read-only; it cannot be written", s.name)
	}
	if ttl <= 0 {
		return nil, errors.New("a lease needs a positive duration")
	}
	sorted := slices.Clone(flows)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	l := &Lease{s: s, flows: sorted, ttl: ttl, writer: make(chan struct{}, 1)}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, flow := range sorted {
			var token int64
			var holder string
			// The row is locked (inserted or updated) until the commit, so that two workers
			// taking one flow over queue here and the second sees the first's lease.
			err := tx.QueryRow(ctx, `INSERT INTO `+schema+`.leases AS l (flow, token, worker, expires)
				VALUES ($1, 1, $2, clock_timestamp() + $3::interval)
				ON CONFLICT (flow) DO UPDATE SET token = l.token + 1, worker = excluded.worker, expires = excluded.expires
					WHERE l.expires < clock_timestamp()
				RETURNING token, worker`, flow, s.opts.Worker, ttl.String()).Scan(&token, &holder)
			if errors.Is(err, pgx.ErrNoRows) {
				if err := tx.QueryRow(ctx, "SELECT worker FROM "+schema+".leases WHERE flow = $1", flow).Scan(&holder); err != nil {
					return err
				}
				return fmt.Errorf("flow %s: %w (%s)", flow, ErrLeaseHeld, holder)
			}
			if err != nil {
				return err
			}
			l.tokens = append(l.tokens, token)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrLeaseHeld) {
			return nil, err
		}
		return nil, fmt.Errorf("lease flows %s: %w", strings.Join(sorted, ", "), err)
	}
	return l, nil
}

// Leased returns the flows whose leases are live (a run holds them, or held them and died
// less than a lease ago).
func (s *Store) Leased(ctx context.Context) (map[string]bool, error) {
	rows, err := s.pool.Query(ctx, "SELECT flow FROM "+schema+".leases WHERE expires > clock_timestamp()")
	if err != nil {
		return nil, fmt.Errorf("leases: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			return nil, fmt.Errorf("leases: %w", err)
		}
		out[f] = true
	}
	return out, rows.Err()
}

// Tokens returns the fencing token of each flow of the lease.
func (l *Lease) Tokens() map[string]int64 {
	out := make(map[string]int64, len(l.flows))
	for i, f := range l.flows {
		out[f] = l.tokens[i]
	}
	return out
}

// Renew extends the lease by its duration from now. An error wrapping ErrLeaseLost says that
// another worker took a flow over.
func (l *Lease) Renew(ctx context.Context) error {
	tag, err := l.s.pool.Exec(ctx, `UPDATE `+schema+`.leases AS l SET expires = clock_timestamp() + $3::interval
		FROM unnest($1::text[], $2::bigint[]) AS f(flow, token) WHERE l.flow = f.flow AND l.token = f.token`,
		l.flows, l.tokens, l.ttl.String())
	if err != nil {
		return fmt.Errorf("renew the lease of %s: %w", strings.Join(l.flows, ", "), err)
	}
	if int(tag.RowsAffected()) != len(l.flows) {
		return fmt.Errorf("renew the lease of %s: %w", strings.Join(l.flows, ", "), ErrLeaseLost)
	}
	return nil
}

// Release ends the lease at once, so that the next run of its flows, on any worker, need not
// wait for it to expire. A lease taken over since is left alone.
func (l *Lease) Release(ctx context.Context) error {
	_, err := l.s.pool.Exec(ctx, `UPDATE `+schema+`.leases AS l SET expires = '-infinity'
		FROM unnest($1::text[], $2::bigint[]) AS f(flow, token) WHERE l.flow = f.flow AND l.token = f.token`,
		l.flows, l.tokens)
	if err != nil {
		return fmt.Errorf("release the lease of %s: %w", strings.Join(l.flows, ", "), err)
	}
	return nil
}

// check is the fence: inside tx, it locks the lease rows (FOR SHARE, until tx ends) that still
// carry the lease's tokens. Fewer rows than flows means a take-over committed first; a
// take-over that comes later waits for tx to end, so what tx commits was written under the
// lease. The lease's expiry is not checked: until another worker takes the flow, nobody else
// writes it.
func (l *Lease) check(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT l.flow FROM `+schema+`.leases AS l
		JOIN unnest($1::text[], $2::bigint[]) AS f(flow, token) ON l.flow = f.flow AND l.token = f.token
		FOR SHARE OF l`, l.flows, l.tokens)
	if err != nil {
		return fmt.Errorf("commit the link state: checking the lease: %w", err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("commit the link state: checking the lease: %w", err)
	}
	if n != len(l.flows) {
		return fmt.Errorf("commit the link state of %s: nothing was committed: %w", strings.Join(l.flows, ", "), ErrLeaseLost)
	}
	return nil
}

// Store returns the state as the lease's run sees it: the store's reads, and write
// transactions that are fenced by the lease. Its Txs take turns (as one Store's do); Close
// does nothing (the service closes the store).
func (l *Lease) Store() state.Store { return &leasedStore{Store: l.s, lease: l} }

type leasedStore struct {
	*Store
	lease *Lease
}

func (ls *leasedStore) Begin(ctx context.Context) (state.Tx, error) {
	return ls.Store.begin(ctx, ls.lease.writer, ls.lease)
}

// BeginDeferred implements state.Deferring as the store does, through the lease.
func (ls *leasedStore) BeginDeferred(ctx context.Context) (state.Tx, error) {
	t, err := ls.Store.begin(ctx, ls.lease.writer, ls.lease)
	if err != nil {
		return nil, err
	}
	return deferCommit(t)
}

func (ls *leasedStore) Close() error { return nil }

// Overlaps implements state.Overlapping as the store does.
func (ls *leasedStore) Overlaps() bool { return ls.Store.Overlaps() }
