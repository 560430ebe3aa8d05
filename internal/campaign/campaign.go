// Package campaign is the kill -9 campaign: the real dataflow binary syncs two systems both
// ways while it is SIGKILLed at random moments, with edits on both sides between the kills. A
// final run must then leave both sides agreeing on every record, with no duplicate, no lost
// edit and no pending intent, and one more run must write nothing. Run it with
// `go run ./cmd/campaign`; internal/campaign's test runs it at a small size in CI.
package campaign

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/mattn/go-sqlite3" // the state file is read with it
)

// Config says what a campaign does.
type Config struct {
	Binary  string // the dataflow binary under test
	Dir     string // an empty working directory: systems, mappings, link state, logs
	Records int    // records on the source side before the first run (a quarter more on the target)
	Kills   int    // SIGKILLs that must land while a run is going on
	Seed    int64
	Target  Target    // the target system; nil means a SQLite database
	Log     io.Writer // progress, one line per kill; nil for none
	// StateDSN puts the link state in PostgreSQL (an empty database); "" keeps it in state.db.
	StateDSN string
}

// Figures are what a campaign measured.
type Figures struct {
	Kills          int           // SIGKILLs that hit a running sync
	Immediate      int           // of those, restarts made at once, with no edit in between
	Finished       int           // runs that ended before their kill was due
	Records        int           // distinct records expected on both sides at the end
	Edits          int           // edits made on either side during the campaign
	Creates        int           // records created on either side during the campaign
	Duplicates     int           // records present more than once on a side
	Missing        int           // expected records absent from a side
	LostUpdates    int           // synced properties whose last edit is not on both sides
	PendingIntents int           // intents left in the link state after the final run
	FinalWrites    int           // writes made by the run after the final run
	FailedRecords  int           // records the final run reported as failed
	Duration       time.Duration // the whole campaign
	LongestRun     time.Duration // the slowest run that finished
	StatusReads    int           // `dataflow status` calls made beside a run (halfway to its kill)
	StatusFailures int           // of those, the ones that failed (e.g. "database is locked")
}

// OK reports whether the campaign found nothing wrong.
func (f *Figures) OK() bool {
	return f.Duplicates == 0 && f.Missing == 0 && f.LostUpdates == 0 && f.PendingIntents == 0 &&
		f.FinalWrites == 0 && f.FailedRecords == 0 && f.StatusFailures == 0
}

// String prints the figures as a small table.
func (f *Figures) String() string {
	var b strings.Builder
	row := func(name string, v any) { fmt.Fprintf(&b, "  %-26s %v\n", name, v) }
	row("kills (SIGKILL mid-run)", f.Kills)
	row("  of which immediate", f.Immediate)
	row("runs that finished", f.Finished)
	row("records at the end", f.Records)
	row("edits", f.Edits)
	row("creates", f.Creates)
	row("duplicates", f.Duplicates)
	row("missing records", f.Missing)
	row("lost updates", f.LostUpdates)
	row("pending intents", f.PendingIntents)
	row("writes of one more run", f.FinalWrites)
	row("failed records", f.FailedRecords)
	row("status reads beside runs", f.StatusReads)
	row("  of which failed", f.StatusFailures)
	row("duration", f.Duration.Round(time.Millisecond))
	return b.String()
}

// Item is a record as the campaign sees it on either side.
type Item struct {
	Code  string
	Name  string
	Qty   int64
	Price string // two decimals
}

// Side is one system as the campaign edits and inspects it, behind the engine's back.
type Side interface {
	// Create adds a record.
	Create(ctx context.Context, it Item) error
	// SetName and SetQty edit the record(s) with the code and report whether there was one.
	SetName(ctx context.Context, code, name string) (bool, error)
	SetQty(ctx context.Context, code string, qty int64) (bool, error)
	// Snapshot returns every record by code (more than one is a duplicate).
	Snapshot(ctx context.Context) (map[string][]Item, error)
	Close() error
}

// Target is a kind of target system: it writes its system file and opens its Side.
type Target interface {
	// Setup writes the target's system file (system id "store", entity Thing) into
	// dir/mappings/systems, starts the system if it is a server, and returns the environment
	// the dataflow binary needs.
	Setup(ctx context.Context, dir string) (env []string, err error)
	// Props names the Thing properties that hold an Item's code, name, qty and price.
	Props() [4]string
	Side(ctx context.Context, dir string) (Side, error)
	// Stop stops what Setup started.
	Stop() error
}

// Run runs a campaign.
func Run(ctx context.Context, cfg Config) (*Figures, error) {
	start := time.Now()
	if cfg.Target == nil {
		cfg.Target = SQLiteTarget{}
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	c := &campaign{cfg: cfg, rng: newRand(cfg.Seed), want: map[string]*Item{}, fig: &Figures{}}
	defer c.stop()
	if err := c.setup(ctx); err != nil {
		return nil, err
	}
	if err := c.seed(ctx); err != nil {
		return nil, err
	}
	if err := c.kills(ctx); err != nil {
		return nil, err
	}
	if err := c.finish(ctx); err != nil {
		return nil, err
	}
	c.fig.Duration = time.Since(start)
	return c.fig, nil
}

type campaign struct {
	cfg            Config
	rng            *rand.Rand
	env            []string
	source, target Side
	want           map[string]*Item // code → what both sides must hold at the end
	next           int              // serial of the next created code
	fig            *Figures
	stops          []func() error
}

func (c *campaign) setup(ctx context.Context) error {
	dir := c.cfg.Dir
	if err := os.MkdirAll(filepath.Join(dir, "mappings", "systems"), 0o755); err != nil {
		return err
	}
	props := c.cfg.Target.Props()
	if err := writeFiles(dir, map[string]string{
		"mappings/items-to-things.yaml": fmt.Sprintf(dataflowYAML, props[0], props[0], props[1], props[2], props[3]),
		"mappings/systems/shop.yaml":    shopYAML,
		"shop.sql":                      shopSQL,
	}); err != nil {
		return err
	}
	env, err := c.cfg.Target.Setup(ctx, dir)
	if err != nil {
		return err
	}
	c.stops = append(c.stops, c.cfg.Target.Stop)
	c.env = append(os.Environ(), env...)
	if c.source, err = openSQLiteSide(ctx, filepath.Join(dir, "shop.db"), shopSQL, shopColumns, editBusyTimeout); err != nil {
		return err
	}
	c.stops = append(c.stops, c.source.Close)
	if c.target, err = c.cfg.Target.Side(ctx, dir); err != nil {
		return err
	}
	c.stops = append(c.stops, c.target.Close)
	return nil
}

// stop closes the sides and stops the target, in the reverse order of setup.
func (c *campaign) stop() {
	for i := len(c.stops) - 1; i >= 0; i-- {
		c.stops[i]()
	}
}

// seed puts Records items on the source and a quarter as many others on the target.
func (c *campaign) seed(ctx context.Context) error {
	for i := 0; i < c.cfg.Records+c.cfg.Records/4; i++ {
		side, prefix := c.source, "S"
		if i >= c.cfg.Records {
			side, prefix = c.target, "T"
		}
		it := c.newItem(prefix)
		if err := side.Create(ctx, it); err != nil {
			return fmt.Errorf("seeding: %w", err)
		}
	}
	return nil
}

func (c *campaign) newItem(prefix string) Item {
	c.next++
	it := Item{
		Code:  fmt.Sprintf("%s-%06d", prefix, c.next),
		Name:  fmt.Sprintf("item %d", c.next),
		Qty:   int64(c.rng.Intn(1000)),
		Price: fmt.Sprintf("%d.%02d", c.rng.Intn(500), c.rng.Intn(100)),
	}
	w := it
	c.want[it.Code] = &w
	return it
}

// kills starts runs and kills them until Kills have landed mid-run. A kill is due at a random
// moment within the expected length of a run, learnt from the runs that finished; every other
// restart is immediate, the others follow a round of edits on both sides.
func (c *campaign) kills(ctx context.Context) error {
	expected := 2 * time.Second
	for attempt := 0; c.fig.Kills < c.cfg.Kills; attempt++ {
		if attempt > 20*c.cfg.Kills+100 {
			return fmt.Errorf("only %d of %d kills landed mid-run in %d runs", c.fig.Kills, c.cfg.Kills, attempt)
		}
		immediate := attempt%2 == 1
		if !immediate {
			if err := c.edits(ctx); err != nil {
				return err
			}
		}
		delay := time.Duration(c.rng.Int63n(int64(expected) + 1))
		killed, took, err := c.runKilled(ctx, delay)
		if err != nil {
			return err
		}
		if killed {
			if c.fig.Finished == 0 {
				// No run has finished yet: the first sync is longer than thought. Let later
				// kills come later, so that runs also finish and edits meet linked records.
				expected += expected / 4
			}
			c.fig.Kills++
			if immediate {
				c.fig.Immediate++
			}
			fmt.Fprintf(c.cfg.Log, "kill %d: after %v%s\n", c.fig.Kills, delay.Round(time.Millisecond), map[bool]string{true: ", restarted at once"}[immediate])
			continue
		}
		c.fig.Finished++
		c.fig.LongestRun = max(c.fig.LongestRun, took)
		expected = took + took/4
	}
	return nil
}

// runKilled starts a run and SIGKILLs it after delay unless it ends first.
func (c *campaign) runKilled(ctx context.Context, delay time.Duration) (killed bool, took time.Duration, err error) {
	cmd := c.command(ctx, "run")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return false, 0, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// A reader beside the writer: `status` must answer while the run holds the link state.
	status := make(chan error, 1)
	go func() {
		time.Sleep(delay / 2)
		out, err := c.command(ctx, "status").CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%v: %s", err, out)
		}
		status <- err
	}()
	defer func() {
		if err := <-status; err != nil {
			c.fig.StatusFailures++
			fmt.Fprintf(c.cfg.Log, "status beside a run failed: %v\n", err)
		}
		c.fig.StatusReads++
	}()
	select {
	case err := <-done:
		took = time.Since(start)
		if err != nil {
			return false, took, fmt.Errorf("a run failed on its own: %v\n%s", err, stderr.String())
		}
		return false, took, nil
	case <-time.After(delay):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		err := <-done
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				return true, time.Since(start), nil
			}
		}
		if err != nil {
			return false, 0, fmt.Errorf("a run failed on its own: %v\n%s", err, stderr.String())
		}
		return false, time.Since(start), nil // it ended just before the signal
	}
}

// statePath is the campaign's --state: a file, or the PostgreSQL state's URL.
func (c *campaign) statePath() string {
	if c.cfg.StateDSN != "" {
		return c.cfg.StateDSN
	}
	return "state.db"
}

func (c *campaign) command(ctx context.Context, args ...string) *exec.Cmd {
	args = append(args, "--state", c.statePath(), "mappings")
	cmd := exec.CommandContext(ctx, c.cfg.Binary, args...)
	cmd.Dir, cmd.Env = c.cfg.Dir, c.env
	return cmd
}

// edits makes a round of edits: names on the source, quantities on the target (so that no
// two edits of one property compete and every edit's outcome is known), sometimes both on one
// record, and a few new records on each side.
func (c *campaign) edits(ctx context.Context) error {
	codes := c.codes()
	for i := 0; i < 1+c.rng.Intn(5); i++ {
		code := codes[c.rng.Intn(len(codes))]
		name := fmt.Sprintf("renamed %d", c.rng.Int63())
		if ok, err := c.source.SetName(ctx, code, name); err != nil {
			return err
		} else if ok {
			c.want[code].Name = name
			c.fig.Edits++
		}
	}
	for i := 0; i < 1+c.rng.Intn(5); i++ {
		code := codes[c.rng.Intn(len(codes))]
		qty := int64(c.rng.Intn(100000))
		if ok, err := c.target.SetQty(ctx, code, qty); err != nil {
			return err
		} else if ok {
			c.want[code].Qty = qty
			c.fig.Edits++
		}
	}
	for i := 0; i < c.rng.Intn(3); i++ {
		side, prefix := c.source, "S"
		if c.rng.Intn(2) == 0 {
			side, prefix = c.target, "T"
		}
		if err := side.Create(ctx, c.newItem(prefix)); err != nil {
			return err
		}
		c.fig.Creates++
	}
	return nil
}

// codes lists every code made so far, sorted for a reproducible pick. A record may not have
// reached the side an edit picks yet (its create was killed); that edit then changes nothing
// and is not counted.
func (c *campaign) codes() []string {
	codes := make([]string, 0, len(c.want))
	for code := range c.want {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	return codes
}

// finish runs until stable, checks the invariants, then runs once more.
func (c *campaign) finish(ctx context.Context) error {
	out, err := c.command(ctx, "run", "--until-stable", "--json").CombinedOutput()
	if err != nil {
		return fmt.Errorf("the final run failed: %v\n%s", err, out)
	}
	if c.fig.FailedRecords, _, err = reportOf(out); err != nil {
		return err
	}
	if err := c.check(ctx); err != nil {
		return err
	}
	out, err = c.command(ctx, "run", "--json").CombinedOutput()
	if err != nil {
		return fmt.Errorf("the run after the final run failed: %v\n%s", err, out)
	}
	_, c.fig.FinalWrites, err = reportOf(out)
	return err
}

// reportOf reads the failed records and the writes of the last report in run --json output.
func reportOf(out []byte) (failed, writes int, err error) {
	dec := json.NewDecoder(strings.NewReader(string(out)))
	found := false
	for {
		var rep struct {
			Flows []map[string]any `json:"flows"`
		}
		if err := dec.Decode(&rep); err == io.EOF {
			break
		} else if err != nil {
			return 0, 0, fmt.Errorf("reading the run's report: %v\n%s", err, out)
		}
		found = true
		failed, writes = 0, 0
		for _, f := range rep.Flows {
			num := func(k string) int { v, _ := f[k].(float64); return int(v) }
			failed += num("failed")
			writes += num("created_target") + num("created_source") + num("updated_target") + num("updated_source") + num("deleted")
		}
	}
	if !found {
		return 0, 0, fmt.Errorf("the run printed no report:\n%s", out)
	}
	return failed, writes, nil
}

// check compares both sides with what the campaign expects and counts intents left over.
func (c *campaign) check(ctx context.Context) error {
	c.fig.Records = len(c.want)
	for _, side := range []Side{c.source, c.target} {
		snap, err := side.Snapshot(ctx)
		if err != nil {
			return err
		}
		for code, items := range snap {
			c.fig.Duplicates += len(items) - 1
			want := c.want[code]
			if want == nil {
				c.fig.Duplicates += len(items) // a record nobody made
				continue
			}
			for _, got := range items {
				if got.Name != want.Name {
					c.fig.LostUpdates++
				}
				if got.Qty != want.Qty {
					c.fig.LostUpdates++
				}
				if got.Price != want.Price {
					c.fig.LostUpdates++
				}
			}
		}
		for code := range c.want {
			if len(snap[code]) == 0 {
				c.fig.Missing++
			}
		}
	}
	if c.cfg.StateDSN != "" {
		conn, err := pgx.Connect(ctx, c.cfg.StateDSN)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		return conn.QueryRow(ctx, pgPendingIntents).Scan(&c.fig.PendingIntents)
	}
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(c.cfg.Dir, "state.db")+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	return db.QueryRowContext(ctx, "SELECT coalesce(sum(remaining), 0) FROM intent_batches").Scan(&c.fig.PendingIntents)
}

// pgPendingIntents counts the intents of a PostgreSQL state: those of schema 1, a row each,
// and those of the rows of batches.
const pgPendingIntents = "SELECT (SELECT count(*) FROM dataflow_state.intents) + " +
	"(SELECT coalesce(sum(cardinality(ids)), 0) FROM dataflow_state.intent_batches)"

func newRand(seed int64) *rand.Rand { return rand.New(rand.NewSource(seed)) }

func writeFiles(dir string, files map[string]string) error {
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}
