package campaign

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/mattn/go-sqlite3"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// ScaleConfig says what a scale-out campaign does: Workers `dataflow serve` processes share
// one link state in PostgreSQL and run Dataflows dataflows (one flow each, every second, each
// between two SQLite databases of its own) while the campaign edits both sides, SIGKILLs and
// restarts one worker every KillEvery, and SIGSTOPs another past its lease once.
type ScaleConfig struct {
	Binary    string
	Dir       string // an empty working directory
	StateDSN  string // an empty PostgreSQL database for the link state and the job queue
	Workers   int
	Dataflows int
	Records   int           // per dataflow, on the source before the start (a quarter more on the target)
	Duration  time.Duration // of the edits and the faults
	KillEvery time.Duration
	Lease     time.Duration
	Seed      int64
	Log       io.Writer
}

// ScaleFigures are what a scale-out campaign found.
type ScaleFigures struct {
	Kills, Stops int
	// StoppedMidRun says the SIGSTOP landed while the worker ran a flow: a run of its log
	// started before the stop and had not finished by then (judged after the campaign from
	// the lines' own times, not from the log as read at the stop, which a pipe may delay).
	StoppedMidRun bool
	// UnfencedStalledRuns are the runs that spanned the stall and ended with an error, but
	// not with a "run fenced" line: a run woken after its lease was lost either had committed
	// everything before the stall (it finishes without error) or is refused and says so.
	UnfencedStalledRuns []string
	Edits, Creates      int
	// LockedEdits are the edit turns a SQLite system refused as locked (by the stopped
	// worker's write transaction): not made, so not expected either.
	LockedEdits    int
	Records        int
	Duplicates     int
	Missing        int
	LostUpdates    int
	PendingIntents int
	Runs           int            // runs that finished
	RunsByWorker   map[string]int // finished runs by worker name
	Overlaps       []string       // two runs of one flow that overlapped, or shared a token
	// FencedRuns are the stalled worker's runs that its lease stopped (its log's "run fenced"
	// lines): their commits and writes after the lease was lost were refused.
	FencedRuns       int
	MetricMismatches []string // a surviving worker's metric that disagrees with its runs
	FinalWrites      int      // writes of a `dataflow run` after the workers stopped
}

// OK reports whether the campaign found nothing wrong.
func (f *ScaleFigures) OK() bool {
	return f.Duplicates == 0 && f.Missing == 0 && f.LostUpdates == 0 && f.PendingIntents == 0 &&
		len(f.Overlaps) == 0 && len(f.MetricMismatches) == 0 && f.FinalWrites == 0 &&
		len(f.UnfencedStalledRuns) == 0
}

func (f *ScaleFigures) String() string {
	b, _ := json.MarshalIndent(f, "  ", "  ")
	return string(b)
}

// worker is one `dataflow serve` process, restarted under the same index.
type worker struct {
	idx    int
	listen string
	cmd    *exec.Cmd
	done   chan error
	log    *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type scaleCampaign struct {
	cfg     ScaleConfig
	rng     *rand.Rand
	sides   [][2]Side          // source, target per dataflow
	want    []map[string]*Item // per dataflow
	next    int
	fig     *ScaleFigures
	workers []*worker
	logs    []*lockedBuffer // every process's log, in start order
	// stoppedAt is when worker 1 was SIGSTOPped (zero: never).
	stoppedAt time.Time
	names     map[string]bool // the worker names of processes never killed (host:pid)
}

// ScaleOut runs a scale-out campaign.
func ScaleOut(ctx context.Context, cfg ScaleConfig) (*ScaleFigures, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	c := &scaleCampaign{cfg: cfg, rng: newRand(cfg.Seed), fig: &ScaleFigures{RunsByWorker: map[string]int{}}, names: map[string]bool{}}
	defer c.close()
	if err := c.setup(ctx); err != nil {
		return nil, err
	}
	for i := 0; i < cfg.Workers; i++ {
		w, err := c.start(ctx, i, "")
		if err != nil {
			return nil, err
		}
		c.workers = append(c.workers, w)
	}
	if err := c.chaos(ctx); err != nil {
		return nil, err
	}
	if err := c.settle(ctx); err != nil {
		return nil, err
	}
	if c.cfg.Workers > 1 {
		log := c.workers[1].log.String()
		c.fig.FencedRuns = strings.Count(log, `"msg":"run fenced`)
		if !c.stoppedAt.IsZero() {
			c.fig.StoppedMidRun, c.fig.UnfencedStalledRuns = stalledRuns(log, c.stoppedAt)
		}
	}
	if err := c.checkMetrics(ctx); err != nil {
		return nil, err
	}
	for _, w := range c.workers {
		w.cmd.Process.Signal(syscall.SIGTERM)
		if err := <-w.done; err != nil {
			return nil, fmt.Errorf("worker %d did not stop cleanly on SIGTERM: %v\n%s", w.idx, err, tail(w.log.String()))
		}
	}
	c.workers = nil
	if err := c.check(ctx); err != nil {
		return nil, err
	}
	return c.fig, nil
}

func (c *scaleCampaign) close() {
	for _, w := range c.workers {
		w.cmd.Process.Signal(syscall.SIGCONT)
		w.cmd.Process.Kill()
		<-w.done
	}
	for _, s := range c.sides {
		s[0].Close()
		s[1].Close()
	}
}

// The scale-out campaign's dataflow k: items of shop k to things of store k, every second.
// scaleEditBusyTimeout is how long the scale-out's editor waits for a SQLite system's lock. A
// worker stopped (SIGSTOP) inside a write transaction holds it for the whole stall, and the
// loop that edits also kills worker 0 every KillEvery: an edit that waited out the kill
// campaigns' 10 s would hold the kills up (7 instead of 10 in 40 s in one CI run). The edit
// is given up and counted as locked instead (LockedEdits).
const scaleEditBusyTimeout = 500 * time.Millisecond

const scaleDataflowYAML = `dataflow: campaign-%[1]d
source: shop-%[1]d
target: store-%[1]d
every: 1s
flows:
  - id: items-to-things-%[1]d
    source: Item
    target: Thing
    sync: both
    create: {target: always, source: always}
    merge:
      - [{source: code, target: sku}]
    conflict: newest
    delete: keep
    properties:
      - {source: code, target: sku}
      - {source: name, target: title}
      - {source: qty, target: amount}
      - {source: price, target: cost}
`

func (c *scaleCampaign) setup(ctx context.Context) error {
	dir := c.cfg.Dir
	if err := os.MkdirAll(filepath.Join(dir, "mappings", "systems"), 0o755); err != nil {
		return err
	}
	files := map[string]string{"shop.sql": shopSQL, "store.sql": storeSQL}
	for k := 0; k < c.cfg.Dataflows; k++ {
		files[fmt.Sprintf("mappings/campaign-%d.yaml", k)] = fmt.Sprintf(scaleDataflowYAML, k)
		files[fmt.Sprintf("mappings/systems/shop-%d.yaml", k)] = strings.NewReplacer("system: shop", fmt.Sprintf("system: shop-%d", k),
			"path: shop.db", fmt.Sprintf("path: shop-%d.db", k)).Replace(shopYAML)
		files[fmt.Sprintf("mappings/systems/store-%d.yaml", k)] = strings.NewReplacer("system: store", fmt.Sprintf("system: store-%d", k),
			"path: store.db", fmt.Sprintf("path: store-%d.db", k)).Replace(storeYAML)
	}
	if err := writeFiles(dir, files); err != nil {
		return err
	}
	for k := 0; k < c.cfg.Dataflows; k++ {
		src, err := openSQLiteSide(ctx, filepath.Join(dir, fmt.Sprintf("shop-%d.db", k)), shopSQL, shopColumns, scaleEditBusyTimeout)
		if err != nil {
			return err
		}
		dst, err := openSQLiteSide(ctx, filepath.Join(dir, fmt.Sprintf("store-%d.db", k)), storeSQL, storeColumns, scaleEditBusyTimeout)
		if err != nil {
			src.Close()
			return err
		}
		c.sides = append(c.sides, [2]Side{src, dst})
		c.want = append(c.want, map[string]*Item{})
		for i := 0; i < c.cfg.Records+c.cfg.Records/4; i++ {
			side, prefix := 0, "S"
			if i >= c.cfg.Records {
				side, prefix = 1, "T"
			}
			if err := c.sides[k][side].Create(ctx, c.newItem(k, prefix)); err != nil {
				return fmt.Errorf("seeding: %w", err)
			}
		}
	}
	return nil
}

func (c *scaleCampaign) newItem(k int, prefix string) Item {
	c.next++
	it := Item{
		Code:  fmt.Sprintf("%s-%06d", prefix, c.next),
		Name:  fmt.Sprintf("item %d", c.next),
		Qty:   int64(c.rng.Intn(1000)),
		Price: fmt.Sprintf("%d.%02d", c.rng.Intn(500), c.rng.Intn(100)),
	}
	w := it
	c.want[k][it.Code] = &w
	return it
}

func freeAddress() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// start starts worker i (listening on listen, a new port if "").
func (c *scaleCampaign) start(ctx context.Context, i int, listen string) (*worker, error) {
	if listen == "" {
		var err error
		if listen, err = freeAddress(); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(c.cfg.Binary, "serve", "--state", c.cfg.StateDSN, "--listen", listen, "--every", "1s",
		"--lease", c.cfg.Lease.String(), "--log-format", "json", "mappings")
	cmd.Dir = c.cfg.Dir
	cmd.Env = append(os.Environ(), "DATAFLOW_ADMIN_TOKEN=", "DATAFLOW_HOOK_SECRET=")
	log := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	w := &worker{idx: i, listen: listen, cmd: cmd, done: make(chan error, 1), log: log}
	go func() { w.done <- cmd.Wait() }()
	c.logs = append(c.logs, log)
	// Ready when it answers /healthz.
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + listen + "/healthz")
		if err == nil {
			res.Body.Close()
			return w, nil
		}
		select {
		case err := <-w.done:
			return nil, fmt.Errorf("worker %d exited at start: %v\n%s", i, err, tail(log.String()))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("worker %d did not answer within 30 s\n%s", i, tail(log.String()))
		}
	}
}

// chaos edits both sides of every dataflow for the campaign's duration while worker 0 is
// SIGKILLed and restarted every KillEvery and worker 1 is SIGSTOPped once, for three leases,
// a third of the way in.
func (c *scaleCampaign) chaos(ctx context.Context) error {
	start := time.Now()
	end := start.Add(c.cfg.Duration)
	nextKill := start.Add(c.cfg.KillEvery)
	stopAt := start.Add(c.cfg.Duration / 3)
	var resumeAt time.Time
	for time.Now().Before(end) || !resumeAt.IsZero() {
		now := time.Now()
		if now.Before(end) {
			if err := c.edits(ctx); isLocked(err) {
				// A worker stopped (SIGSTOP) inside a write transaction of a SQLite system
				// holds its lock: the system's own users wait too. The edit was not made
				// (c.want is set only after one succeeds); the next turn tries another.
				c.fig.LockedEdits++
			} else if err != nil {
				return err
			}
		}
		if now.After(nextKill) && now.Before(end) {
			w := c.workers[0]
			w.cmd.Process.Signal(syscall.SIGKILL)
			<-w.done
			c.fig.Kills++
			restarted, err := c.start(ctx, 0, w.listen)
			if err != nil {
				return err
			}
			c.workers[0] = restarted
			fmt.Fprintf(c.cfg.Log, "%5.1fs: killed worker 0, restarted\n", time.Since(start).Seconds())
			nextKill = time.Now().Add(c.cfg.KillEvery)
		}
		// Worker 1 is stopped in the middle of a run (as soon as its log shows one in
		// progress), long enough for its lease to expire and the flow to go to another worker
		// (whose own leadership of the queue, if it had it, must expire too).
		if c.cfg.Workers > 1 && c.fig.Stops == 0 && now.After(stopAt) && (midRun(c.workers[1].log.String()) || now.After(end.Add(-c.cfg.Duration/3))) {
			c.workers[1].cmd.Process.Signal(syscall.SIGSTOP)
			c.stoppedAt = time.Now()
			c.fig.Stops++
			resumeAt = now.Add(5 * c.cfg.Lease)
			fmt.Fprintf(c.cfg.Log, "%5.1fs: stopped worker 1 (mid-run by its log as read: %v)\n", time.Since(start).Seconds(), midRun(c.workers[1].log.String()))
		}
		if !resumeAt.IsZero() && now.After(resumeAt) {
			c.workers[1].cmd.Process.Signal(syscall.SIGCONT)
			resumeAt = time.Time{}
			fmt.Fprintf(c.cfg.Log, "%5.1fs: resumed worker 1\n", time.Since(start).Seconds())
		}
		time.Sleep(time.Duration(100+c.rng.Intn(200)) * time.Millisecond)
	}
	return nil
}

// isLocked reports whether err is SQLite's "database is locked" (or busy): another process
// holds the database's write lock past the busy timeout.
func isLocked(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked
	}
	return err != nil && strings.Contains(err.Error(), "database is locked")
}

// midRun reports whether a worker's log shows a run in progress.
// stalledRuns reads a worker's JSON log after the campaign: whether a run was in progress at
// stopped (started before it, not finished before it), and which of those runs ended with an
// error without a "run fenced" line.
func stalledRuns(log string, stopped time.Time) (midRun bool, unfenced []string) {
	type line struct {
		Time  time.Time `json:"time"`
		Msg   string    `json:"msg"`
		Run   string    `json:"run"`
		Error string    `json:"error"`
	}
	started := map[string]time.Time{}
	finished := map[string]line{}
	fenced := map[string]bool{}
	for _, text := range strings.Split(log, "\n") {
		var l line
		if json.Unmarshal([]byte(text), &l) != nil || l.Run == "" {
			continue
		}
		switch {
		case l.Msg == "run started":
			started[l.Run] = l.Time
		case l.Msg == "run finished":
			finished[l.Run] = l
		case strings.HasPrefix(l.Msg, "run fenced"):
			fenced[l.Run] = true
		}
	}
	for run, at := range started {
		end, ok := finished[run]
		if at.After(stopped) || ok && end.Time.Before(stopped) {
			continue
		}
		midRun = true
		if ok && end.Error != "" && !fenced[run] {
			unfenced = append(unfenced, run+": "+end.Error)
		}
	}
	sort.Strings(unfenced)
	return midRun, unfenced
}

func midRun(log string) bool {
	return strings.Count(log, `"msg":"run started"`) > strings.Count(log, `"msg":"run finished"`)
}

// edits makes a few edits on one dataflow's sides: a name on the source, a quantity on the
// target (so that no two edits of a property compete), sometimes a new record.
func (c *scaleCampaign) edits(ctx context.Context) error {
	k := c.rng.Intn(len(c.sides))
	codes := make([]string, 0, len(c.want[k]))
	for code := range c.want[k] {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	code := codes[c.rng.Intn(len(codes))]
	name := fmt.Sprintf("renamed %d", c.rng.Int63())
	if ok, err := c.sides[k][0].SetName(ctx, code, name); err != nil {
		return err
	} else if ok {
		c.want[k][code].Name = name
		c.fig.Edits++
	}
	code = codes[c.rng.Intn(len(codes))]
	qty := int64(c.rng.Intn(100000))
	if ok, err := c.sides[k][1].SetQty(ctx, code, qty); err != nil {
		return err
	} else if ok {
		c.want[k][code].Qty = qty
		c.fig.Edits++
	}
	if c.rng.Intn(4) == 0 {
		side, prefix := 0, "S"
		if c.rng.Intn(2) == 0 {
			side, prefix = 1, "T"
		}
		it := c.newItem(k, prefix)
		if err := c.sides[k][side].Create(ctx, it); err != nil {
			delete(c.want[k], it.Code) // not made (a locked database makes nothing)
			return err
		}
		c.fig.Creates++
	}
	return nil
}

// settle waits until every flow has had two runs that finished ok and began after the last
// edit: the second found nothing new to write back and forth.
func (c *scaleCampaign) settle(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, c.cfg.StateDSN)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var since time.Time
	if err := conn.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&since); err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var settled int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM (
			SELECT f FROM dataflow_state.runs, unnest(flows) AS f
			WHERE started > $1 AND status = 'ok' GROUP BY f HAVING count(*) >= 2) s`, since).Scan(&settled)
		if err != nil {
			return err
		}
		if settled == c.cfg.Dataflows {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d flows ran twice ok within 60 s of the last edit\n%s", settled, c.cfg.Dataflows, tail(c.workers[len(c.workers)-1].log.String()))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkMetrics compares what each worker that was never killed counted in its metrics with
// the runs the state recorded for it: runs by flow and result, and records by flow.
func (c *scaleCampaign) checkMetrics(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, c.cfg.StateDSN)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	host, _ := os.Hostname()
	// No run may be in progress while the metrics and the runs are compared: wait until each
	// worker's runs in the state are all finished.
	for _, w := range c.workers[1:] {
		name := fmt.Sprintf("%s:%d", host, w.cmd.Process.Pid)
		var families map[string]*modelFamily
		var runs map[string]map[string]float64
		var records map[string]float64
		for attempt := 0; ; attempt++ {
			before, err := scrape(w.listen)
			if err != nil {
				return err
			}
			runs, records, err = stateCounts(ctx, conn, name)
			if err != nil {
				return err
			}
			after, err := scrape(w.listen)
			if err != nil {
				return err
			}
			if sameRuns(before, after) {
				families = after
				break
			}
			if attempt > 50 {
				return fmt.Errorf("worker %d never stood still between two scrapes", w.idx)
			}
			time.Sleep(100 * time.Millisecond)
		}
		gotRuns := map[string]map[string]float64{}
		for _, s := range families["dataflow_runs_total"].samples {
			flow, result := s.labels["flow"], s.labels["result"]
			if result == "stopped" {
				continue // a run stopped by SIGTERM, not in this comparison
			}
			if gotRuns[flow] == nil {
				gotRuns[flow] = map[string]float64{}
			}
			gotRuns[flow][result] += s.value
		}
		gotRecords := map[string]float64{}
		for _, s := range families["dataflow_records_total"].samples {
			gotRecords[s.labels["flow"]] += s.value
		}
		// Runs the fence refused also counted their records: only the steady worker's records
		// must add up exactly.
		stalled := w.idx == 1
		// A run the fence stopped counts as an error in the metrics but has no finished record
		// (its FinishRun was refused): errors may be more in the metrics, never fewer.
		for flow, byResult := range runs {
			for result, n := range byResult {
				if gotRuns[flow][result] != n && !(result == "error" && gotRuns[flow][result] > n) {
					c.fig.MetricMismatches = append(c.fig.MetricMismatches, fmt.Sprintf("worker %d: dataflow_runs_total{flow=%q,result=%q} = %v, the state has %v", w.idx, flow, result, gotRuns[flow][result], n))
				}
			}
		}
		for flow, byResult := range gotRuns {
			for result, n := range byResult {
				if runs[flow][result] != n && !(result == "error" && n > runs[flow][result]) {
					c.fig.MetricMismatches = append(c.fig.MetricMismatches, fmt.Sprintf("worker %d: dataflow_runs_total{flow=%q,result=%q} = %v, the state has %v", w.idx, flow, result, n, runs[flow][result]))
				}
			}
		}
		if !stalled {
			for flow, n := range records {
				if gotRecords[flow] != n {
					c.fig.MetricMismatches = append(c.fig.MetricMismatches, fmt.Sprintf("worker %d: dataflow_records_total{flow=%q} sum to %v, its runs' summaries to %v", w.idx, flow, gotRecords[flow], n))
				}
			}
		}
		c.names[name] = true
	}
	return nil
}

// stateCounts reads worker's finished runs from the state: runs by flow and status, and the
// sum of the records counted in their summaries by flow.
func stateCounts(ctx context.Context, conn *pgx.Conn, worker string) (map[string]map[string]float64, map[string]float64, error) {
	rows, err := conn.Query(ctx, "SELECT flows, status, summary FROM dataflow_state.runs WHERE worker = $1 AND finished IS NOT NULL", worker)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	runs := map[string]map[string]float64{}
	records := map[string]float64{}
	for rows.Next() {
		var flows []string
		var status string
		var summary *string
		if err := rows.Scan(&flows, &status, &summary); err != nil {
			return nil, nil, err
		}
		job := flows[len(flows)-1] // the job's flow comes last (with: referenced flows first)
		if status == "stopped" {
			continue // a run its lease's watchdog stopped (or SIGTERM): not compared
		}
		if runs[job] == nil {
			runs[job] = map[string]float64{}
		}
		runs[job][status]++
		if summary == nil {
			continue
		}
		var stats []map[string]any
		if err := json.Unmarshal([]byte(*summary), &stats); err != nil {
			return nil, nil, err
		}
		for _, fs := range stats {
			flow, _ := fs["flow"].(string)
			for _, k := range []string{"read_source", "read_target", "created_target", "created_source", "updated_target", "updated_source",
				"merged", "conflicts", "unchanged", "waiting", "failed", "deleted", "unlinked", "recovered"} {
				v, _ := fs[k].(float64)
				records[flow] += v
			}
		}
	}
	return runs, records, rows.Err()
}

type modelSample struct {
	labels map[string]string
	value  float64
}

type modelFamily struct{ samples []modelSample }

func scrape(listen string) (map[string]*modelFamily, error) {
	res, err := http.Get("http://" + listen + "/metrics")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bufio.NewReader(res.Body))
	if err != nil {
		return nil, err
	}
	out := map[string]*modelFamily{}
	for name, f := range families {
		mf := &modelFamily{}
		for _, m := range f.Metric {
			s := modelSample{labels: map[string]string{}}
			for _, l := range m.Label {
				s.labels[l.GetName()] = l.GetValue()
			}
			if m.Counter != nil {
				s.value = m.Counter.GetValue()
			} else if m.Gauge != nil {
				s.value = m.Gauge.GetValue()
			}
			mf.samples = append(mf.samples, s)
		}
		out[name] = mf
	}
	if out["dataflow_runs_total"] == nil {
		out["dataflow_runs_total"] = &modelFamily{}
	}
	if out["dataflow_records_total"] == nil {
		out["dataflow_records_total"] = &modelFamily{}
	}
	return out, nil
}

func sameRuns(a, b map[string]*modelFamily) bool {
	sum := func(m map[string]*modelFamily) float64 {
		t := 0.0
		for _, s := range m["dataflow_runs_total"].samples {
			t += s.value
		}
		return t
	}
	return sum(a) == sum(b)
}

// check compares both sides of every dataflow with what the campaign expects, counts the
// intents left over, checks from the runs' records that no two runs of a flow overlapped, and
// runs once more to see that nothing is left to write.
func (c *scaleCampaign) check(ctx context.Context) error {
	for k, sides := range c.sides {
		c.fig.Records += len(c.want[k])
		for _, side := range sides {
			snap, err := side.Snapshot(ctx)
			if err != nil {
				return err
			}
			for code, items := range snap {
				c.fig.Duplicates += len(items) - 1
				want := c.want[k][code]
				if want == nil {
					c.fig.Duplicates += len(items)
					continue
				}
				for _, got := range items {
					if got.Name != want.Name || got.Qty != want.Qty || got.Price != want.Price {
						c.fig.LostUpdates++
						fmt.Fprintf(c.cfg.Log, "dataflow %d: %+v, want %+v\n", k, got, *want)
					}
				}
			}
			for code := range c.want[k] {
				if len(snap[code]) == 0 {
					c.fig.Missing++
				}
			}
		}
	}
	conn, err := pgx.Connect(ctx, c.cfg.StateDSN)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, pgPendingIntents).Scan(&c.fig.PendingIntents); err != nil {
		return err
	}
	if err := c.checkOverlaps(ctx, conn); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, c.cfg.Binary, "run", "--json", "--state", c.cfg.StateDSN, "mappings")
	cmd.Dir = c.cfg.Dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("the run after the workers stopped failed: %v\n%s", err, out)
	}
	_, c.fig.FinalWrites, err = reportOf(out)
	return err
}

// checkOverlaps reads every run of every flow: the tokens of a flow's runs are distinct, and
// ordered by token the runs that finished end before the next one starts.
func (c *scaleCampaign) checkOverlaps(ctx context.Context, conn *pgx.Conn) error {
	rows, err := conn.Query(ctx, `SELECT f.flow, f.token, r.id, r.started, r.finished, r.worker
		FROM dataflow_state.runs r, unnest(r.flows, r.tokens) AS f(flow, token) ORDER BY f.flow, f.token, r.id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	type run struct {
		flow     string
		token    int64
		id       int64
		started  time.Time
		finished *time.Time
		worker   string
	}
	var prev *run
	for rows.Next() {
		var r run
		if err := rows.Scan(&r.flow, &r.token, &r.id, &r.started, &r.finished, &r.worker); err != nil {
			return err
		}
		if r.finished != nil {
			c.fig.Runs++
			c.fig.RunsByWorker[r.worker]++
		}
		if prev != nil && prev.flow == r.flow {
			switch {
			case prev.token == r.token:
				c.fig.Overlaps = append(c.fig.Overlaps, fmt.Sprintf("flow %s: runs #%d and #%d share token %d", r.flow, prev.id, r.id, r.token))
			case prev.finished != nil && prev.finished.After(r.started):
				c.fig.Overlaps = append(c.fig.Overlaps, fmt.Sprintf("flow %s: run #%d (%s, token %d) finished at %s, after run #%d (%s, token %d) started at %s",
					r.flow, prev.id, prev.worker, prev.token, prev.finished.Format(time.RFC3339Nano), r.id, r.worker, r.token, r.started.Format(time.RFC3339Nano)))
			case prev.started.After(r.started):
				c.fig.Overlaps = append(c.fig.Overlaps, fmt.Sprintf("flow %s: run #%d with token %d started before run #%d with token %d", r.flow, r.id, r.token, prev.id, prev.token))
			}
		}
		p := r
		prev = &p
	}
	return rows.Err()
}

func tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}
