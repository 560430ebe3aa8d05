package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/dataflow-sync/dataflow/engine/state"
	"github.com/dataflow-sync/dataflow/engine/state/pgstate"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// Several workers: with the state in PostgreSQL (--state postgres://...), any number of
// services share it, and River's job queue lives in the same database (riverpgxv5), so that
// the flows' periodic jobs are inserted once (by River's elected leader) and each is worked
// by one of the services. What makes a run exclusive is the flow's lease in the state (see
// pgstate.Lease), not the queue: a run takes the lease of its flows, renews it while it runs,
// and writes through it, so that a worker that died, or stalled past the lease, is replaced
// by the next job of the flow on any worker, and a stalled one that wakes commits nothing.

// DefaultLease is how long a run holds its flows without renewing: a worker that died (or
// stopped) holds its flows this long at most.
const DefaultLease = 30 * time.Second

// riverMigrateKey serialises the River migrations of workers that start together.
const riverMigrateKey int64 = 0x64667269766572

// openShared opens the state in PostgreSQL for sharing and the job queue beside it.
func (s *Service) openShared(ctx context.Context) error {
	st, err := pgstate.Open(ctx, s.cfg.StatePath, pgstate.Options{
		Mode: state.ReadWrite, Shared: true, Worker: s.cfg.Worker,
		IdleInTransaction: max(s.cfg.Lease, 10*time.Second),
	})
	if err != nil {
		return err
	}
	driver := riverpgxv5.New(st.Pool())
	if err := migrateRiver(ctx, st, driver); err != nil {
		st.Close()
		return fmt.Errorf("job queue in %s: %w", st.Name(), err)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &flowWorker{s: s})
	client, err := river.NewClient(driver, &river.Config{
		// One run at a time per service, as embedded: more runs go to more services.
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1}},
		Workers: workers,
		// No periodic jobs: River inserts those on its elected leader alone, and a leader
		// that was killed leaves the schedule still until its leadership expires. Every
		// service schedules the flows instead (schedule), the queue's uniqueness making one
		// job of their inserts.
		JobTimeout:        -1,
		FetchCooldown:     50 * time.Millisecond,
		FetchPollInterval: 250 * time.Millisecond,
		// The job of a dead worker stays "running" until River's rescuer discards it; the flow
		// does not wait for that (see uniqueOpts), so it may as well be soon.
		RescueStuckJobsAfter: 2 * s.cfg.Lease,
		Logger:               slog.New(levelAtLeast{s.log.Handler(), slog.LevelWarn}),
		ID:                   s.cfg.Worker,
	})
	if err != nil {
		st.Close()
		return fmt.Errorf("job queue: %w", err)
	}
	s.store, s.shared, s.river = st, st, client
	return nil
}

// migrateRiver brings River's tables up to date under an advisory lock: workers that start
// together would otherwise race to create them.
func migrateRiver(ctx context.Context, st *pgstate.Store, driver *riverpgxv5.Driver) error {
	conn, err := st.Pool().Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", riverMigrateKey); err != nil {
		return err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", riverMigrateKey)
	migrator, err := rivermigrate.New[pgx.Tx](driver, nil)
	if err != nil {
		return err
	}
	_, err = migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	return err
}

// uniqueOpts is a flow job's uniqueness. Embedded, a flow has one job queued or running.
// Shared, the same within one interval of the flow: River keeps the job of a worker that was
// killed "running" until its rescuer runs, and the flow's next job must not wait for that; two
// jobs of a flow that overlap find its lease taken, and the second does not run.
func (s *Service) uniqueOpts(fp *flowPlan) river.UniqueOpts {
	u := FlowArgs{}.InsertOpts().UniqueOpts
	if s.shared != nil {
		u.ByPeriod = fp.every
	}
	return u
}

// schedule queues, shared, a job of every flow at its interval, the first at once, until ctx
// ends. Each service does, and the queue keeps one job of a flow per interval; a flow that
// has a job waiting, or is leased to a run (in progress, or of a worker that died less than a
// lease ago), gets no other: a queue that workers cannot keep up with does not grow, and no
// worker takes a job only to find its flow running elsewhere.
func (s *Service) schedule(ctx context.Context) {
	due := map[string]time.Time{}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		p := s.plan.Load()
		now := s.cfg.Now()
		var todo []*flowPlan
		for _, fp := range p.flows {
			if at, ok := due[fp.flow.ID()]; !ok || !now.Before(at) {
				todo = append(todo, fp)
			}
		}
		if len(todo) > 0 {
			queued, err := s.queuedFlows(ctx)
			if err == nil {
				var leased map[string]bool
				if leased, err = s.shared.Leased(ctx); err == nil {
					for f := range leased {
						queued[f] = true
					}
				}
			}
			if err != nil && ctx.Err() == nil {
				s.log.Warn("scheduling the flows", "error", err)
			}
			for _, fp := range todo {
				id := fp.flow.ID()
				due[id] = now.Add(fp.every)
				s.mu.Lock()
				s.next[id] = due[id]
				s.mu.Unlock()
				if err != nil || queued[id] {
					continue
				}
				_, ierr := s.river.Insert(ctx, FlowArgs{Flow: id, Trigger: "schedule"}, &river.InsertOpts{Priority: fp.priority, UniqueOpts: s.uniqueOpts(fp)})
				if ierr != nil && ctx.Err() == nil {
					s.log.Warn("scheduling a run", "flow", id, "error", ierr)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// errLeaseExpired ends a run whose lease this worker could not renew in time: another worker
// may have taken its flows over, and the run must stop writing to the systems too.
var errLeaseExpired = fmt.Errorf("%w: not renewed in time", pgstate.ErrLeaseLost)

// runStore is the state a run of fp writes: the service's store, or, shared, the store of a
// lease of fp's flows, renewed while ctx lasts. A lease held by a run elsewhere is
// pgstate.ErrLeaseHeld.
//
// The run's context ends when the lease is lost, and also, by a local watchdog, shortly before
// the lease would expire unrenewed: the fence keeps a stalled run's commits out of the state,
// but its writes to the systems (a plan made from what it read before it stalled) are only
// stopped by its context, which ends its calls and rolls back their open transactions. The
// watchdog measures time as the machine's monotonic clock does, which runs on while the
// process is stopped, so a worker woken from SIGSTOP finds its context ended at once.
func (s *Service) runStore(ctx context.Context, fp *flowPlan) (state.Store, context.Context, alive, func(), error) {
	if s.shared == nil {
		return s.store, ctx, nil, func() {}, nil
	}
	// The lease is good until at least start + Lease in the database; the watchdog fires a
	// fifth of it earlier.
	safe := s.cfg.Lease * 4 / 5
	start := time.Now()
	lease, err := s.shared.Acquire(ctx, fp.with, s.cfg.Lease)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	var validUntil atomic.Pointer[time.Time]
	until := start.Add(safe)
	validUntil.Store(&until)
	watchdog := time.AfterFunc(time.Until(until), func() { cancel(errLeaseExpired) })
	isAlive := func() error {
		if cause := context.Cause(runCtx); errors.Is(cause, pgstate.ErrLeaseLost) {
			return cause
		}
		if time.Now().After(*validUntil.Load()) {
			return errLeaseExpired
		}
		return nil
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.cfg.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if runCtx.Err() != nil {
					return
				}
				start := time.Now()
				if err := lease.Renew(context.WithoutCancel(ctx)); errors.Is(err, pgstate.ErrLeaseLost) {
					cancel(err)
					return
				} else if err != nil {
					s.log.Warn("renewing the lease of a run", "flows", fp.with, "error", err)
				} else {
					until := start.Add(safe)
					validUntil.Store(&until)
					watchdog.Reset(time.Until(until))
				}
			}
		}
	}()
	release := func() {
		close(stop)
		<-done
		watchdog.Stop()
		cancel(nil)
		if err := lease.Release(context.WithoutCancel(ctx)); err != nil {
			s.log.Warn("releasing the lease of a run", "flows", fp.with, "error", err)
		}
	}
	return lease.Store(), runCtx, isAlive, release, nil
}

// adminTx begins a transaction for an admin action on flow's state: shared, under a short
// lease of the flow (refused while a run of it is in progress).
func (s *Service) adminTx(ctx context.Context, flow string) (state.Tx, func(), error) {
	if s.shared == nil {
		tx, err := s.store.Begin(ctx)
		return tx, func() {}, err
	}
	lease, err := s.shared.Acquire(ctx, []string{flow}, 10*time.Second)
	if err != nil {
		return nil, nil, err
	}
	tx, err := lease.Store().Begin(ctx)
	release := func() { lease.Release(context.WithoutCancel(ctx)) }
	if err != nil {
		release()
		return nil, nil, err
	}
	return tx, release, nil
}
