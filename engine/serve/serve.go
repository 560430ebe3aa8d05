// Package serve runs dataflows as a service: every flow on its schedule, as jobs on River
// (github.com/riverqueue/river), with Prometheus metrics, health checks, a status page with
// admin actions on the dead letters, and webhook triggers. The embedded default keeps River's
// queue in a local SQLite file beside the link state (riversqlite over mattn/go-sqlite3), so
// that moving the queue to PostgreSQL (riverpgxv5) is a change of driver, not of job code.
package serve

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dataflow-sync/dataflow/engine"
	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/state"
	"github.com/dataflow-sync/dataflow/engine/state/pgstate"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	_ "github.com/mattn/go-sqlite3" // the queue's database/sql driver
)

// Config says what a Service runs and where.
type Config struct {
	// Paths are the mapping files and folders.
	Paths []string
	// StatePath is the link state file.
	StatePath string
	// QueuePath is the local job queue; "" puts it beside the state (queuePathFor).
	QueuePath string
	// Every is the interval of flows whose mappings set no every:.
	Every time.Duration
	// Lookup reads the ${VAR}s of the mappings.
	Lookup config.Lookup
	// Logger receives the service's log; every line about a run carries its run id.
	Logger *slog.Logger
	// AdminToken authorizes the mutating actions (retry, drop, run now); "" disables them.
	AdminToken string
	// HookSecret signs webhook triggers; "" disables POST /hooks/{flow}.
	HookSecret string
	// Worker names this process in the run records; "" for host:pid.
	Worker string
	// Lease is, with the state in PostgreSQL, how long a run holds its flows without renewing
	// (DefaultLease if 0): how long the flows of a worker that died wait for another.
	Lease time.Duration
	// Now gives the time, for tests.
	Now func() time.Time
}

// history is how many finished runs of each flow the service remembers.
const history = 20

// Service runs the flows of one set of mappings over one link state.
type Service struct {
	cfg    Config
	eng    *engine.Engine
	log    *slog.Logger
	store  state.Store
	shared *pgstate.Store // the store, when it is in PostgreSQL and shared by workers
	queue  *sql.DB
	river  jobQueue
	plan   atomic.Pointer[plan]
	reg    *metrics
	start  time.Time
	hooks  *replayGuard
	closed atomic.Bool

	mu sync.Mutex
	// refused is the text of the last reload that was refused, "" after a good one.
	refused  string
	runs     map[string][]*RunInfo // finished runs by flow, newest first
	inflight map[string]*RunInfo   // the run in progress, by flow
	next     map[string]time.Time  // the next scheduled run, by flow
	queued   map[string]bool       // a trigger queued a run that has not started, by flow
	again    map[string]bool       // a trigger arrived while the flow ran: run it once more
	// finishing holds the flows whose run returned and whose job River has not marked
	// completed yet (it completes jobs in batches): the job still makes the flow unique.
	finishing map[string]bool
}

// jobQueue is what the service asks of River's client. *river.Client[*sql.Tx] (SQLite) and
// *river.Client[pgx.Tx] (PostgreSQL, riverpgxv5) both have it: the queue's database is a
// choice made in openQueue alone.
type jobQueue interface {
	Start(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	JobList(ctx context.Context, params *river.JobListParams) (*river.JobListResult, error)
	PeriodicJobs() *river.PeriodicJobBundle
	Subscribe(kinds ...river.EventKind) (<-chan *river.Event, func())
}

// FlowArgs is the River job of one flow run. Only Flow takes part in uniqueness: a flow has
// at most one job queued or running, whatever triggered it.
type FlowArgs struct {
	Flow    string `json:"flow" river:"unique"`
	Trigger string `json:"trigger,omitempty"` // schedule, webhook, admin, again
}

// Kind implements river.JobArgs.
func (FlowArgs) Kind() string { return "dataflow_flow" }

// InsertOpts implements river.JobArgsWithInsertOpts: unique while queued, scheduled or
// running, and never retried by River, because a failed run's records are dead letters that
// the next scheduled run retries, and an unreachable system is tried again by that run too.
func (FlowArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		MaxAttempts: 1,
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
			rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
			rivertype.JobStateRetryable, rivertype.JobStateScheduled,
		}},
	}
}

// flowWorker is the River worker of FlowArgs: the same code whatever the queue's database.
type flowWorker struct {
	river.WorkerDefaults[FlowArgs]
	s *Service
}

func (w *flowWorker) Work(ctx context.Context, job *river.Job[FlowArgs]) error {
	return w.s.runFlow(ctx, job.Args, job.ID)
}

// Open loads the mappings (an invalid set is an *InvalidMappingsError), opens the link state
// for writing (which keeps any other run out) and the job queue, and schedules the flows. Run
// starts them.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Lookup == nil {
		cfg.Lookup = func(string) (string, bool) { return "", false }
	}
	if cfg.Worker == "" {
		host, _ := os.Hostname()
		cfg.Worker = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if cfg.Every <= 0 {
		return nil, errors.New("the default interval (--every) must be positive")
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.QueuePath == "" && !pgstate.IsURL(cfg.StatePath) {
		cfg.QueuePath = queuePathFor(cfg.StatePath)
	}
	eng, err := engine.New(cfg.Lookup)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, eng: eng, log: cfg.Logger, start: cfg.Now(), hooks: newReplayGuard(),
		runs: map[string][]*RunInfo{}, inflight: map[string]*RunInfo{}, next: map[string]time.Time{},
		queued: map[string]bool{}, again: map[string]bool{}, finishing: map[string]bool{},
	}
	p, err := loadPlan(ctx, eng, cfg.Paths, cfg.Every, cfg.Now())
	if err != nil {
		return nil, err
	}
	s.plan.Store(p)
	if pgstate.IsURL(cfg.StatePath) {
		if err := s.openShared(ctx); err != nil {
			return nil, err
		}
		s.reg = newMetrics(s)
		return s, nil
	}
	if err := os.MkdirAll(filepath.Dir(cfg.StatePath), 0o755); err != nil {
		return nil, err
	}
	if s.store, err = state.Open(ctx, cfg.StatePath, state.ReadWrite); err != nil {
		return nil, err
	}
	if err := s.openQueue(ctx); err != nil {
		s.store.Close()
		return nil, err
	}
	s.reg = newMetrics(s)
	return s, nil
}

// queuePathFor is the local queue of a state: queue.db beside the default state.db, else
// <name>.queue.db, so that two states in one directory (each locked by its own service) never
// share a queue, which each service makes anew when it starts.
func queuePathFor(statePath string) string {
	dir, base := filepath.Split(statePath)
	if base == "state.db" {
		return filepath.Join(dir, "queue.db")
	}
	return filepath.Join(dir, strings.TrimSuffix(base, filepath.Ext(base))+".queue.db")
}

// sqliteURIPath escapes what a file: URI would read as its query or fragment.
var sqliteURIPath = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

// openQueue makes a fresh local queue and the River client over it. The queue is made anew
// on every start: this process holds the state's lock, so no other process uses the queue,
// and a job left "running" by a process that was killed would otherwise keep its flow
// unique (blocked) until River's rescuer frees it an hour later. Nothing queued is lost that
// matters: every flow runs as soon as the service starts.
func (s *Service) openQueue(ctx context.Context) error {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(s.cfg.QueuePath + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("job queue: %w", err)
		}
	}
	db, err := sql.Open("sqlite3", "file:"+sqliteURIPath.Replace(s.cfg.QueuePath)+"?_journal_mode=WAL&_busy_timeout=10000&_txlock=immediate")
	if err != nil {
		return fmt.Errorf("job queue: %w", err)
	}
	// River runs several maintenance goroutines; SQLite takes one writer at a time, and one
	// connection turns their overlaps into waits instead of "database is locked".
	db.SetMaxOpenConns(1)
	driver := riversqlite.New(db)
	migrator, err := rivermigrate.New(driver, nil)
	if err == nil {
		_, err = migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	}
	if err != nil {
		db.Close()
		return fmt.Errorf("job queue %s: %w", s.cfg.QueuePath, err)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &flowWorker{s: s})
	client, err := river.NewClient(driver, &river.Config{
		// One run at a time: the SQLite link state has one writer, and flows that refer to
		// each other must not run side by side.
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1}},
		Workers:           workers,
		PeriodicJobs:      s.periodicJobs(s.plan.Load()),
		JobTimeout:        -1, // a first sync of a million records takes minutes
		FetchCooldown:     50 * time.Millisecond,
		FetchPollInterval: 250 * time.Millisecond,
		Logger:            slog.New(levelAtLeast{s.log.Handler(), slog.LevelWarn}),
		ID:                s.cfg.Worker,
	})
	if err != nil {
		db.Close()
		return fmt.Errorf("job queue: %w", err)
	}
	s.queue, s.river = db, client
	return nil
}

// periodicJobs schedules every flow of p at its interval, the first run at once.
func (s *Service) periodicJobs(p *plan) []*river.PeriodicJob {
	var jobs []*river.PeriodicJob
	for _, fp := range p.flows {
		fp := fp
		jobs = append(jobs, river.NewPeriodicJob(river.PeriodicInterval(fp.every), func() (river.JobArgs, *river.InsertOpts) {
			s.mu.Lock()
			s.next[fp.flow.ID()] = s.cfg.Now().Add(fp.every)
			s.mu.Unlock()
			return FlowArgs{Flow: fp.flow.ID(), Trigger: "schedule"}, &river.InsertOpts{Priority: fp.priority, UniqueOpts: s.uniqueOpts(fp)}
		}, &river.PeriodicJobOpts{RunOnStart: true, ID: fp.flow.ID()}))
	}
	return jobs
}

// Run runs the flows and serves ln (nil: no HTTP) until ctx is cancelled. Then the runs in
// progress finish the batch in hand and commit it, and Run closes the state and returns.
func (s *Service) Run(ctx context.Context, ln net.Listener) error {
	defer s.close()
	events, unsubscribe := s.river.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled)
	defer unsubscribe()
	go s.followJobs(ctx, events)
	if s.shared != nil {
		go s.schedule(ctx)
	}
	if err := s.river.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("job queue: %w", err)
	}
	var srv *http.Server
	serveErr := make(chan error, 1)
	if ln != nil {
		srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { serveErr <- srv.Serve(ln) }()
		s.log.Info("serving", "address", ln.Addr().String(), "flows", len(s.plan.Load().flows))
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("http: %w", err)
	}
	s.log.Info("stopping: the runs in progress finish their batch")
	// StopAndCancel cancels the runs' contexts; a run stops after the batch in hand, commits
	// it, and returns. Stop alone would wait for whole runs.
	if stopErr := s.river.StopAndCancel(context.Background()); stopErr != nil && err == nil {
		err = fmt.Errorf("job queue: %w", stopErr)
	}
	if srv != nil {
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		srv.Shutdown(shutdown)
		cancel()
	}
	s.log.Info("stopped")
	return err
}

func (s *Service) close() {
	if s.closed.Swap(true) {
		return
	}
	if s.queue != nil {
		s.queue.Close()
	}
	s.store.Close()
}

// Close releases the state and the queue of a Service that was opened but not run.
func (s *Service) Close() { s.close() }

// Reload reads the mappings again. An invalid set is refused (the error is an
// *InvalidMappingsError) and the service keeps running the set it has; a valid one replaces
// it, and every flow runs once now on its new schedule.
func (s *Service) Reload(ctx context.Context) error {
	p, err := loadPlan(ctx, s.eng, s.cfg.Paths, s.cfg.Every, s.cfg.Now())
	if err != nil {
		var invalid *InvalidMappingsError
		text := err.Error()
		if errors.As(err, &invalid) {
			text = invalid.Error() + "\n" + invalid.Text()
		}
		// Refused before it is logged: whoever reads the log and then asks /readyz sees it.
		s.mu.Lock()
		s.refused = text
		s.mu.Unlock()
		if invalid != nil {
			for _, d := range invalid.Diagnostics {
				if d.Severity == diag.Error {
					s.log.Error("reload refused", "at", d.Subject.String(), "error", d.Summary, "fix", d.Detail)
				}
			}
		}
		s.log.Error("reload refused: the service keeps running the mappings it had", "error", err)
		return err
	}
	s.plan.Store(p)
	s.mu.Lock()
	s.refused = ""
	for flow := range s.next {
		if p.byID[flow] == nil {
			delete(s.next, flow)
		}
	}
	s.mu.Unlock()
	if s.shared != nil {
		s.log.Info("mappings reloaded", "flows", len(p.flows))
		return nil // the schedule loop follows the plan
	}
	s.river.PeriodicJobs().Clear()
	if _, err := s.river.PeriodicJobs().AddManySafely(s.periodicJobs(p)); err != nil {
		return fmt.Errorf("scheduling the reloaded flows: %w", err)
	}
	s.log.Info("mappings reloaded", "flows", len(p.flows))
	return nil
}

// Trigger queues a run of flow now. queued is false when a run of it was already queued; when
// one is running, the flow runs once more after it, so that a change pushed during a run is
// not left for the next scheduled one.
func (s *Service) Trigger(ctx context.Context, flow, trigger string) (queued bool, err error) {
	fp := s.plan.Load().byID[flow]
	if fp == nil {
		return false, &UnknownFlowError{Flow: flow}
	}
	res, err := s.river.Insert(ctx, FlowArgs{Flow: flow, Trigger: trigger}, &river.InsertOpts{Priority: fp.priority, UniqueOpts: s.uniqueOpts(fp)})
	if err != nil {
		return false, fmt.Errorf("queueing a run of %s: %w", flow, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if res.UniqueSkippedAsDuplicate {
		if (s.inflight[flow] != nil || s.finishing[flow]) && !s.queued[flow] {
			s.again[flow] = true
			return true, nil
		}
		return false, nil
	}
	s.queued[flow] = true
	return true, nil
}

// followJobs learns from River when a flow's job is done with: then a trigger that arrived
// during its run queues the run it asked for.
func (s *Service) followJobs(ctx context.Context, events <-chan *river.Event) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			var args FlowArgs
			if ev.Job == nil || json.Unmarshal(ev.Job.EncodedArgs, &args) != nil {
				continue
			}
			s.mu.Lock()
			again := s.again[args.Flow]
			delete(s.again, args.Flow)
			delete(s.finishing, args.Flow)
			s.mu.Unlock()
			if again {
				// A webhook arrived while the run read the systems: what it announced may have
				// come after the read.
				var unknown *UnknownFlowError
				if _, err := s.Trigger(ctx, args.Flow, "again"); errors.As(err, &unknown) {
					s.log.Info("a trigger asked for a run of a flow that a reload removed; not run", "flow", args.Flow)
				} else if err != nil {
					s.log.Error("queueing the run a trigger asked for", "flow", args.Flow, "error", err)
				}
			}
		}
	}
}

// queuedFlows lists the flows that have a job waiting in the queue, whatever queued it.
func (s *Service) queuedFlows(ctx context.Context) (map[string]bool, error) {
	res, err := s.river.JobList(ctx, river.NewJobListParams().Kinds(FlowArgs{}.Kind()).
		States(rivertype.JobStateAvailable, rivertype.JobStateScheduled, rivertype.JobStatePending).First(1000))
	if err != nil {
		return nil, fmt.Errorf("job queue: %w", err)
	}
	out := map[string]bool{}
	for _, j := range res.Jobs {
		var args FlowArgs
		if json.Unmarshal(j.EncodedArgs, &args) == nil {
			out[args.Flow] = true
		}
	}
	return out, nil
}

// UnknownFlowError names a flow the mappings do not have.
type UnknownFlowError struct{ Flow string }

func (e *UnknownFlowError) Error() string {
	return fmt.Sprintf("unknown flow %q", e.Flow)
}

// newRunID makes the id that every log line of a run carries.
func newRunID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// levelAtLeast drops River's records below a level: its debug and info lines are about its
// own machinery, not about runs.
type levelAtLeast struct {
	slog.Handler
	min slog.Level
}

func (h levelAtLeast) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelAtLeast) WithAttrs(as []slog.Attr) slog.Handler {
	return levelAtLeast{h.Handler.WithAttrs(as), h.min}
}

func (h levelAtLeast) WithGroup(name string) slog.Handler {
	return levelAtLeast{h.Handler.WithGroup(name), h.min}
}
