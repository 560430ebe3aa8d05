package serve

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/state"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// seedProject lays out the quick start in a temporary directory, as the run script does
// (mappings/, schemas/, testdata/local/*.sql; the databases are made by the first run), and
// makes it the working directory, which the system files' paths are relative to.
func seedProject(t *testing.T) string {
	t.Helper()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, d := range []string{"mappings", "schemas"} {
		if err := os.CopyFS(filepath.Join(dir, d), os.DirFS(filepath.Join(repo, d))); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "testdata/local"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"custom-crm.sql", "squarespace.sql"} {
		data, err := os.ReadFile(filepath.Join(repo, "testdata/local", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "testdata/local", f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	return dir
}

// syncBuffer is a log sink that the test reads while the service writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// running is a service under test, serving on a loopback port.
type running struct {
	*Service
	base string
	log  *syncBuffer
	stop func() error
}

// startService opens and runs a service over the seed project with cfg's settings (the
// default interval an hour, so that only the runs on start and the triggered ones happen).
func startService(t *testing.T, cfg Config) *running {
	t.Helper()
	if cfg.Paths == nil {
		cfg.Paths = []string{"mappings"}
	}
	if cfg.StatePath == "" {
		cfg.StatePath = ".dataflow/state.db"
	}
	if cfg.Every == 0 {
		cfg.Every = time.Hour
	}
	logs := &syncBuffer{}
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	cfg.Worker = "test-worker"
	svc, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		svc.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx, ln) }()
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(30 * time.Second):
				stopErr = errors.New("the service did not stop within 30 s")
			}
		})
		return stopErr
	}
	t.Cleanup(func() { stop() })
	return &running{Service: svc, base: "http://" + ln.Addr().String(), log: logs, stop: stop}
}

// waitFor polls cond until it holds, failing the test after 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// finishedRuns counts the service's finished runs of flow.
func (r *running) finishedRuns(flow string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.runs[flow])
}

// idle reports whether no run is queued or in progress.
func (r *running) idle() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.inflight) == 0 && len(r.queued) == 0 && len(r.finishing) == 0
}

// runAndWait triggers a run of flow and waits until it finished.
func (r *running) runAndWait(t *testing.T, flow string) *RunInfo {
	t.Helper()
	waitFor(t, "the service to be idle", r.idle)
	before := r.finishedRuns(flow)
	queued, err := r.Trigger(context.Background(), flow, "test")
	if err != nil || !queued {
		t.Fatalf("Trigger(%s) = %v, %v", flow, queued, err)
	}
	waitFor(t, "a run of "+flow, func() bool { return r.finishedRuns(flow) > before })
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs[flow][0]
}

func (r *running) get(t *testing.T, path string) (int, string) {
	t.Helper()
	res, err := http.Get(r.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// scrape reads /metrics over HTTP and parses it.
func (r *running) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := r.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	return families
}

// metricValues sums a family's samples by the labels named, joined with "|".
func metricValues(families map[string]*dto.MetricFamily, name string, labels ...string) map[string]float64 {
	out := map[string]float64{}
	fam := families[name]
	if fam == nil {
		return out
	}
	for _, m := range fam.Metric {
		var key []string
		for _, l := range labels {
			for _, lp := range m.Label {
				if lp.GetName() == l {
					key = append(key, lp.GetValue())
				}
			}
		}
		v := 0.0
		switch {
		case m.Counter != nil:
			v = m.Counter.GetValue()
		case m.Gauge != nil:
			v = m.Gauge.GetValue()
		case m.Histogram != nil:
			v = float64(m.Histogram.GetSampleCount())
		}
		out[strings.Join(key, "|")] += v
	}
	return out
}

// execSQL runs statements on a local SQLite system's database.
func execSQL(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// refuseNewProduct makes the web shop refuse the product NR-NEW-1 and adds it to the CRM: its
// create fails, and the record is a dead letter until the shop takes it (acceptNewProduct).
func refuseNewProduct(t *testing.T) {
	execSQL(t, "testdata/local/squarespace.db", `CREATE TRIGGER refuse_new BEFORE INSERT ON products
		WHEN json_extract(NEW.variants, '$[0].sku') = 'NR-NEW-1'
		BEGIN SELECT RAISE(ABORT, 'the shop refuses this product'); END`)
	execSQL(t, "testdata/local/custom-crm.db", `INSERT INTO products (sku, name, unit_price, units_in_stock, updated_at)
		VALUES ('NR-NEW-1', 'New blend', 9.5, 3, '2030-01-01T00:00:00Z')`)
}

func acceptNewProduct(t *testing.T) {
	execSQL(t, "testdata/local/squarespace.db", `DROP TRIGGER refuse_new`)
}

// settle runs the seed's flows until the service is up to date (the inventory items the shop
// makes for new products link on a later run, and orders wait for them).
func (r *running) settle(t *testing.T) {
	t.Helper()
	for _, f := range []string{"product-to-sesamproducts", "product-to-inventory", "order-to-order"} {
		waitFor(t, "the first run of "+f, func() bool { return r.finishedRuns(f) > 0 })
	}
	for _, f := range []string{"product-to-sesamproducts", "product-to-inventory", "order-to-order"} {
		if run := r.runAndWait(t, f); run.Result != ResultOK {
			t.Fatalf("run of %s: %s %s", f, run.Result, run.Error)
		}
	}
}

// TestMetricsAddUpToTheRunLog runs the seed's flows through the service, with a record that
// fails, scrapes /metrics from a real listener and checks every count against the link
// state's run log, dead letters and waiting records.
func TestMetricsAddUpToTheRunLog(t *testing.T) {
	seedProject(t)
	r := startService(t, Config{})
	r.settle(t)
	refuseNewProduct(t)
	run := r.runAndWait(t, "product-to-sesamproducts")
	if run.Result != ResultFailed || run.Counts.Failed != 1 {
		t.Fatalf("the run with a refused product: %s, %d failed; want failed, 1", run.Result, run.Counts.Failed)
	}
	waitFor(t, "the service to be idle", r.idle)
	families := r.scrape(t)

	ctx := context.Background()
	st, err := state.Open(ctx, ".dataflow/state.db", state.ReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log, err := st.Runs(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	wantRecords := map[string]float64{}
	wantRuns := map[string]float64{}
	wantDurations := map[string]float64{}
	for _, entry := range log {
		var flows []map[string]any
		if err := json.Unmarshal(entry.Summary, &flows); err != nil || len(flows) != 1 {
			t.Fatalf("run #%d: summary %s (%v); want one flow", entry.ID, entry.Summary, err)
		}
		flow := flows[0]["flow"].(string)
		wantRuns[flow+"|"+entry.Status]++
		wantDurations[flow]++
		for key, v := range flows[0] {
			if key == "flow" || v.(float64) == 0 {
				continue
			}
			labels, ok := summaryLabels[key]
			if !ok {
				t.Fatalf("run #%d: the summary's %q has no labels in this test", entry.ID, key)
			}
			wantRecords["custom-crm-to-squarespace|"+flow+"|"+labels] += v.(float64)
		}
	}
	if len(log) < 7 {
		t.Fatalf("the run log has %d runs; want at least 7", len(log))
	}
	compare(t, "dataflow_records_total", metricValues(families, "dataflow_records_total", "dataflow", "flow", "direction", "outcome"), wantRecords)
	compare(t, "dataflow_runs_total", metricValues(families, "dataflow_runs_total", "flow", "result"), wantRuns)
	compare(t, "dataflow_run_duration_seconds (count)", metricValues(families, "dataflow_run_duration_seconds", "flow"), wantDurations)

	dead, _ := st.DeadLetters(ctx, "")
	waiting, _ := st.Waiting(ctx, "")
	wantDead := map[string]float64{"product-to-sesamproducts": 0, "product-to-inventory": 0, "order-to-order": 0}
	wantWaiting := map[string]float64{"product-to-sesamproducts": 0, "product-to-inventory": 0, "order-to-order": 0}
	for _, d := range dead {
		wantDead[d.Flow]++
	}
	for _, w := range waiting {
		wantWaiting[w.Flow]++
	}
	if wantDead["product-to-sesamproducts"] != 1 {
		t.Fatalf("dead letters in the state: %v; want the refused product", dead)
	}
	compare(t, "dataflow_dead_letters", metricValues(families, "dataflow_dead_letters", "flow"), wantDead)
	compare(t, "dataflow_waiting_records", metricValues(families, "dataflow_waiting_records", "flow"), wantWaiting)

	// The last success of each flow is its last ok run; the sesamproducts run that failed a
	// record is not one.
	last := metricValues(families, "dataflow_last_success_timestamp_seconds", "flow")
	for _, f := range []string{"product-to-sesamproducts", "product-to-inventory", "order-to-order"} {
		var want float64
		r.mu.Lock()
		for _, run := range r.runs[f] {
			if run.Result == ResultOK {
				want = float64(run.Finished.UnixNano()) / 1e9
				break
			}
		}
		r.mu.Unlock()
		if got := last[f]; got == 0 || got < want-0.001 || got > want+0.001 {
			t.Errorf("dataflow_last_success_timestamp_seconds{flow=%q} = %f; want %f", f, got, want)
		}
	}
	// The CRM's products carry updated_at: the source watermark of sesamproducts is the newest
	// product's, and its lag is the time since.
	lag := metricValues(families, "dataflow_watermark_lag_seconds", "flow", "side")
	newest, _ := time.Parse(time.RFC3339, "2024-10-04T07:10:00Z")
	if got, want := lag["product-to-sesamproducts|source"], time.Since(newest).Seconds(); got < want-60 || got > want+60 {
		t.Errorf("dataflow_watermark_lag_seconds{product-to-sesamproducts,source} = %f; want about %f (all: %v)", got, want, lag)
	}
	// The dead letter's retry, once the shop takes the product, empties the gauge.
	acceptNewProduct(t)
	if run := r.runAndWait(t, "product-to-sesamproducts"); run.Result != ResultOK || run.Counts.CreatedTarget != 1 {
		t.Fatalf("the retry: %s with %d created; want ok, 1", run.Result, run.Counts.CreatedTarget)
	}
	if got := metricValues(r.scrape(t), "dataflow_dead_letters", "flow")["product-to-sesamproducts"]; got != 0 {
		t.Errorf("dataflow_dead_letters after the retry = %v; want 0", got)
	}
}

// summaryLabels gives the direction and outcome of dataflow_records_total that each count of
// a run's summary (dsync.FlowStats) is reported under.
var summaryLabels = map[string]string{
	"read_source": "source|read", "read_target": "target|read",
	"created_target": "target|created", "created_source": "source|created",
	"updated_target": "target|updated", "updated_source": "source|updated",
	"merged": "both|merged", "conflicts": "both|conflict", "unchanged": "both|unchanged",
	"waiting": "both|waiting", "failed": "both|failed", "deleted": "both|deleted",
	"unlinked": "both|unlinked", "recovered": "both|recovered",
}

func compare(t *testing.T, name string, got, want map[string]float64) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s{%s} = %v; want %v", name, k, got[k], w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s{%s} = %v; the run log has none", name, k, g)
		}
	}
}

// TestReload: a reload with invalid mappings is refused with the validation errors (logged,
// and shown by /readyz), and the service keeps running the set it had; a valid reload takes
// the new schedules and makes the service ready again.
func TestReload(t *testing.T) {
	seedProject(t)
	r := startService(t, Config{})
	if code, body := r.get(t, "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("GET /healthz: %d %q", code, body)
	}
	if code, body := r.get(t, "/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("GET /readyz: %d %q", code, body)
	}
	waitFor(t, "the first runs", func() bool { return r.finishedRuns("order-to-order") > 0 })

	editFile(t, seedDataflow, "  - id: order-to-order\n", "  - id: order-to-order\n    every: often\n")
	err := r.Reload(context.Background())
	var invalid *InvalidMappingsError
	if !errors.As(err, &invalid) {
		t.Fatalf("Reload: %v; want the mappings refused", err)
	}
	at := fmt.Sprintf("mappings/custom-crm-to-squarespace.yaml:%d:12", lineOf(t, seedDataflow, "    every: often"))
	diagnostic := at + `: error: invalid every "often": write a number and a unit (ms, s, m or h), like "30s", "5m" or "1h30m"`
	code, body := r.get(t, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "mappings: the last reload was refused; the service runs the mappings it had:\nthe mappings are invalid (1 error)\n") || !strings.Contains(body, "\n"+diagnostic+"\n") {
		t.Errorf("GET /readyz after a refused reload: %d\n%s", code, body)
	}
	if !strings.Contains(r.log.String(), `"msg":"reload refused","at":"`+at+`","error":"invalid every \"often\": write a number`) {
		t.Errorf("the log does not name the error:\n%s", r.log.String())
	}
	// The old set runs on.
	if run := r.runAndWait(t, "order-to-order"); run.Result != ResultOK {
		t.Errorf("a run after the refused reload: %s %s", run.Result, run.Error)
	}

	editFile(t, seedDataflow, "every: often\n", "every: 2s\n")
	if err := r.Reload(context.Background()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if code, body := r.get(t, "/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("GET /readyz after a good reload: %d %q", code, body)
	}
	// Every 2 s, order-to-order runs on its own now (the others every hour).
	before := r.finishedRuns("order-to-order")
	waitFor(t, "two scheduled runs of order-to-order", func() bool { return r.finishedRuns("order-to-order") >= before+2 })
	st, err := r.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range st.Flows {
		want := "1h0m0s"
		if f.Flow == "order-to-order" {
			want = "2s"
		}
		if f.Every != want || f.NextRun == nil {
			t.Errorf("%s: every %q, next run %v; want %s and a next run", f.Flow, f.Every, f.NextRun, want)
		}
	}
}

// lineOf is the 1-based number of the line of path that is line.
func lineOf(t *testing.T, path, line string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(data), "\n") {
		if l == line {
			return i + 1
		}
	}
	t.Fatalf("%s has no line %q", path, line)
	return 0
}

// TestStop: cancelling the service's context ends it cleanly and lets the link state go, so
// that the next run can take it.
func TestStop(t *testing.T) {
	seedProject(t)
	r := startService(t, Config{})
	waitFor(t, "the first runs", func() bool { return r.finishedRuns("order-to-order") > 0 })
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.log.String(), `"msg":"stopped"`) {
		t.Errorf("no stopped line in the log:\n%s", r.log.String())
	}
	// Every line about a run carries its run id: its start and its end.
	lines := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(r.log.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a log line that is not JSON: %s", line)
		}
		if msg := rec["msg"].(string); strings.HasPrefix(msg, "run ") {
			id, _ := rec["run"].(string)
			if id == "" {
				t.Errorf("a log line about a run without its id: %s", line)
			}
			lines[id] = append(lines[id], msg)
		}
	}
	for _, f := range []string{"product-to-sesamproducts", "product-to-inventory", "order-to-order"} {
		for _, run := range r.runs[f] {
			if got := strings.Join(lines[run.ID], ", "); got != "run started, run finished" {
				t.Errorf("run %s of %s: log lines %q; want its start and end", run.ID, f, got)
			}
		}
	}
	st, err := state.Open(context.Background(), ".dataflow/state.db", state.ReadWrite)
	if err != nil {
		t.Fatalf("the state after the service stopped: %v", err)
	}
	st.Close()
}

// TestStateInUse: a second service on the same state is refused, naming the holder.
func TestStateInUse(t *testing.T) {
	seedProject(t)
	startService(t, Config{})
	_, err := Open(context.Background(), Config{Paths: []string{"mappings"}, StatePath: ".dataflow/state.db", Every: time.Minute})
	if !errors.Is(err, state.ErrLocked) {
		t.Fatalf("a second service: %v; want %v", err, state.ErrLocked)
	}
}

// TestStopFinishesTheBatch: a stop during a long first sync lets the run finish the batch in
// hand and commit it: every product the shop has is linked, none twice, and the next start
// syncs the rest without a duplicate.
func TestStopFinishesTheBatch(t *testing.T) {
	seedProject(t)
	r := startService(t, Config{})
	r.settle(t)
	const more = 30000
	execSQL(t, "testdata/local/custom-crm.db", `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < `+strconv.Itoa(more)+`)
		INSERT INTO products (sku, name, unit_price, units_in_stock, updated_at)
		SELECT 'BULK-' || i, 'Bulk ' || i, 1.5, 1, '2030-01-01T00:00:00Z' FROM n`)
	if _, err := r.Trigger(context.Background(), "product-to-sesamproducts", "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first batch of creates", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		run := r.inflight["product-to-sesamproducts"]
		return run != nil && run.Counts.CreatedTarget > 0
	})
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	run := r.runs["product-to-sesamproducts"][0]
	if run.Result != ResultStopped {
		t.Fatalf("the interrupted run: %s (%d created); want stopped", run.Result, run.Counts.CreatedTarget)
	}
	links, products := sesamCounts(t)
	if links != products || links <= 11 || links >= 11+more {
		t.Fatalf("after the stop: %d links, %d products in the shop; want the same number, some of the new ones", links, products)
	}
	t.Logf("stopped after %d of %d creates", links-11, more)

	r = startService(t, Config{})
	waitFor(t, "the run on start", func() bool { return r.finishedRuns("product-to-sesamproducts") > 0 })
	waitFor(t, "the service to be idle", r.idle)
	if run := r.runs["product-to-sesamproducts"][0]; run.Result != ResultOK {
		t.Fatalf("the run after the restart: %s %s", run.Result, run.Error)
	}
	r.stop()
	if links, products := sesamCounts(t); links != 11+more || products != 11+more {
		t.Errorf("after the restart: %d links, %d products; want %d of each", links, products, 11+more)
	}
}

// sesamCounts counts product-to-sesamproducts's links and the shop's products.
func sesamCounts(t *testing.T) (links, products int) {
	t.Helper()
	st, err := state.Open(context.Background(), ".dataflow/state.db", state.ReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if links, err = st.CountLinks(context.Background(), "product-to-sesamproducts"); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", "testdata/local/squarespace.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT count(*) FROM products`).Scan(&products); err != nil {
		t.Fatal(err)
	}
	return links, products
}

// TestReloadDropsAQueuedFlow: a flow queued and then removed from the mappings by a reload is
// not run (its job is cancelled with a warning), and the status no longer lists it.
func TestReloadDropsAQueuedFlow(t *testing.T) {
	seedProject(t)
	r := startService(t, Config{})
	r.settle(t)
	waitFor(t, "the service to be idle", r.idle)
	execSQL(t, "testdata/local/custom-crm.db", `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000)
		INSERT INTO products (sku, name, unit_price, units_in_stock, updated_at)
		SELECT 'BULK-' || i, 'Bulk ' || i, 1.5, 1, '2030-01-01T00:00:00Z' FROM n`)
	r.Trigger(context.Background(), "product-to-sesamproducts", "test")
	waitFor(t, "the long run to start", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.inflight["product-to-sesamproducts"] != nil
	})
	before := r.finishedRuns("order-to-order")
	if queued, err := r.Trigger(context.Background(), "order-to-order", "test"); err != nil || !queued {
		t.Fatalf("queueing order-to-order: %v %v", queued, err)
	}
	data, _ := os.ReadFile(seedDataflow)
	text := string(data)
	from, to := strings.Index(text, "  - id: order-to-order\n"), strings.Index(text, "  - id: product-to-sesamproducts\n")
	if err := os.WriteFile(seedDataflow, []byte(text[:from]+text[to:]), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the queued job to be dropped", func() bool {
		return strings.Contains(r.log.String(), `"msg":"a queued flow is no longer in the mappings; not run","flow":"order-to-order"`)
	})
	waitFor(t, "the service to be idle", r.idle)
	if n := r.finishedRuns("order-to-order"); n != before {
		t.Errorf("order-to-order ran %d times after it was removed", n-before)
	}
	st, err := r.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range st.Flows {
		if f.Flow == "order-to-order" {
			t.Errorf("the status still lists order-to-order")
		}
	}
}
