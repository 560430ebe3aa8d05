package campaign

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ThroughputConfig is a measurement of how the work grows with `dataflow serve` workers
// sharing a PostgreSQL state: Dataflows dataflows of Flows flows each, every flow due every
// second and reading both its sides whole (no watermark), so that a run is work for the
// CPU however few records changed, and more flows are due than one worker can run.
type ThroughputConfig struct {
	Binary    string
	Dir       string
	StateDSN  string // an empty database
	Workers   int
	Dataflows int
	Flows     int
	Records   int           // per flow, on each side
	Window    time.Duration // measured, after every flow's first run
}

// ThroughputFigures are what the measurement found in its window.
type ThroughputFigures struct {
	Workers     int
	Runs        int     // runs that started and finished in the window
	RunsPerSec  float64 // of those
	RecordsRead int     // by those runs, both sides
	RecordsPerS float64
	MeanRunSec  float64 // the mean duration of those runs
	// CommitsPerRun and RowsWrittenPerRun are the state database's transactions and written
	// rows (links, runs, leases and River's jobs) in the window, per run: what the runs ask
	// of the one database they share.
	CommitsPerRun     float64
	RowsWrittenPerRun float64
	// CPUPerRun is the workers' CPU time (process_cpu_seconds_total) per run in the window:
	// unlike the rates, it does not depend on what else the machine runs.
	CPUPerRun float64
}

// workersCPU sums the CPU seconds the workers have used.
func workersCPU(ws []*worker) float64 {
	total := 0.0
	for _, w := range ws {
		if fams, err := scrape(w.listen); err == nil && fams["process_cpu_seconds_total"] != nil {
			for _, s := range fams["process_cpu_seconds_total"].samples {
				total += s.value
			}
		}
	}
	return total
}

func (f ThroughputFigures) String() string {
	return fmt.Sprintf("%d worker(s): %d runs, %.1f runs/s, %.0f records read/s, %.3f s per run, %.3f CPU s per run, %.1f state commits and %.1f rows written per run",
		f.Workers, f.Runs, f.RunsPerSec, f.RecordsPerS, f.MeanRunSec, f.CPUPerRun, f.CommitsPerRun, f.RowsWrittenPerRun)
}

// Throughput runs the measurement.
func Throughput(ctx context.Context, cfg ThroughputConfig) (*ThroughputFigures, error) {
	if err := throughputSetup(ctx, cfg); err != nil {
		return nil, err
	}
	c := &scaleCampaign{cfg: ScaleConfig{Binary: cfg.Binary, Dir: cfg.Dir, StateDSN: cfg.StateDSN, Lease: 10 * time.Second}}
	defer c.close()
	for i := 0; i < cfg.Workers; i++ {
		w, err := c.start(ctx, i, "")
		if err != nil {
			return nil, err
		}
		c.workers = append(c.workers, w)
	}
	conn, err := pgx.Connect(ctx, cfg.StateDSN)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	flows := cfg.Dataflows * cfg.Flows
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var done int
		if err := conn.QueryRow(ctx, `SELECT count(DISTINCT f) FROM dataflow_state.runs, unnest(flows) AS f WHERE status = 'ok'`).Scan(&done); err != nil {
			return nil, err
		}
		if done == flows {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d flows made their first run in 5 minutes", done, flows)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var from, to time.Time
	var commits0, commits1, rows0, rows1 float64
	stats := `SELECT xact_commit, tup_inserted + tup_updated + tup_deleted FROM pg_stat_database WHERE datname = current_database()`
	conn.Exec(ctx, "SELECT pg_stat_clear_snapshot()")
	conn.QueryRow(ctx, stats).Scan(&commits0, &rows0)
	cpu0 := workersCPU(c.workers)
	conn.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&from)
	time.Sleep(cfg.Window)
	conn.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&to)
	cpu1 := workersCPU(c.workers)
	time.Sleep(time.Second) // the servers' statistics are flushed about every second
	conn.Exec(ctx, "SELECT pg_stat_clear_snapshot()")
	conn.QueryRow(ctx, stats).Scan(&commits1, &rows1)
	fig := &ThroughputFigures{Workers: cfg.Workers}
	var seconds float64
	err = conn.QueryRow(ctx, `SELECT count(*), coalesce(sum(extract(epoch FROM finished - started)), 0),
			coalesce(sum((SELECT sum((e->>'read_source')::int + (e->>'read_target')::int) FROM json_array_elements(summary::json) e)), 0)
		FROM dataflow_state.runs WHERE started >= $1 AND finished <= $2 AND summary IS NOT NULL`, from, to).Scan(&fig.Runs, &seconds, &fig.RecordsRead)
	if err != nil {
		return nil, err
	}
	window := to.Sub(from).Seconds()
	fig.RunsPerSec = float64(fig.Runs) / window
	fig.RecordsPerS = float64(fig.RecordsRead) / window
	if fig.Runs > 0 {
		fig.MeanRunSec = seconds / float64(fig.Runs)
		// The statistics span the window and a second more.
		perRun := float64(fig.Runs) * (window + 1) / window
		fig.CommitsPerRun = (commits1 - commits0) / perRun
		fig.RowsWrittenPerRun = (rows1 - rows0) / perRun
		fig.CPUPerRun = (cpu1 - cpu0) / float64(fig.Runs)
	}
	for _, w := range c.workers {
		w.cmd.Process.Signal(syscall.SIGTERM)
		<-w.done
	}
	c.workers = nil
	return fig, nil
}

// throughputSetup writes the dataflows and fills their databases: dataflow k has the systems
// bshop-k and bstore-k (SQLite files), with a table per flow on each side.
func throughputSetup(ctx context.Context, cfg ThroughputConfig) error {
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "mappings", "systems"), 0o755); err != nil {
		return err
	}
	files := map[string]string{}
	for k := 0; k < cfg.Dataflows; k++ {
		var df, shop, store, shopSQL, storeSQL strings.Builder
		fmt.Fprintf(&df, "dataflow: bench-%d\nsource: bshop-%d\ntarget: bstore-%d\nevery: 1s\nflows:\n", k, k, k)
		fmt.Fprintf(&shop, "system: bshop-%d\nname: Bench Shop %d\nconnector: sqlite\npath: bshop-%d.db\ninit: bshop-%d.sql\nentities:\n", k, k, k, k)
		fmt.Fprintf(&store, "system: bstore-%d\nname: Bench Store %d\nconnector: sqlite\npath: bstore-%d.db\ninit: bstore-%d.sql\nentities:\n", k, k, k, k)
		for f := 0; f < cfg.Flows; f++ {
			fmt.Fprintf(&df, `  - id: bench-%d-%d
    source: Item%d
    target: Thing%d
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
`, k, f, f, f)
			fmt.Fprintf(&shop, "  Item%d:\n    table: items_%d\n    id: id\n", f, f)
			fmt.Fprintf(&store, "  Thing%d:\n    table: things_%d\n    id: id\n", f, f)
			fmt.Fprintf(&shopSQL, "CREATE TABLE items_%d (id INTEGER PRIMARY KEY AUTOINCREMENT, code TEXT NOT NULL, name TEXT, qty INTEGER, price NUMERIC(10,2));\n", f)
			fmt.Fprintf(&storeSQL, "CREATE TABLE things_%d (id TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(8)))), sku TEXT, title TEXT, amount INTEGER, cost NUMERIC(10,2));\n", f)
			// The same records on both sides, merged by code on the first run.
			for i := 0; i < cfg.Records; i++ {
				fmt.Fprintf(&shopSQL, "INSERT INTO items_%d (code, name, qty, price) VALUES ('C%d', 'item %d', %d, %d.50);\n", f, i, i, i%1000, i%300)
				fmt.Fprintf(&storeSQL, "INSERT INTO things_%d (sku, title, amount, cost) VALUES ('C%d', 'item %d', %d, %d.50);\n", f, i, i, i%1000, i%300)
			}
		}
		files[fmt.Sprintf("mappings/bench-%d.yaml", k)] = df.String()
		files[fmt.Sprintf("mappings/systems/bshop-%d.yaml", k)] = shop.String()
		files[fmt.Sprintf("mappings/systems/bstore-%d.yaml", k)] = store.String()
		files[fmt.Sprintf("bshop-%d.sql", k)] = "BEGIN;\n" + shopSQL.String() + "COMMIT;\n"
		files[fmt.Sprintf("bstore-%d.sql", k)] = "BEGIN;\n" + storeSQL.String() + "COMMIT;\n"
	}
	if err := writeFiles(cfg.Dir, files); err != nil {
		return err
	}
	for k := 0; k < cfg.Dataflows; k++ {
		for _, name := range []string{"bshop", "bstore"} {
			script := files[fmt.Sprintf("%s-%d.sql", name, k)]
			side, err := openSQLiteSide(ctx, filepath.Join(cfg.Dir, fmt.Sprintf("%s-%d.db", name, k)), script, columns{}, editBusyTimeout)
			if err != nil {
				return err
			}
			side.Close()
		}
	}
	return nil
}
