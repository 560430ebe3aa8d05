package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dataflow-sync/dataflow/engine"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/schema"
	"github.com/dataflow-sync/dataflow/engine/state"
	"github.com/dataflow-sync/dataflow/engine/state/pgstate"
	dsync "github.com/dataflow-sync/dataflow/engine/sync"
	"github.com/dataflow-sync/dataflow/internal/gctune"
)

// DefaultState is where the link state lives unless --state says otherwise.
const DefaultState = ".dataflow/state.db"

// maxStableRounds bounds --until-stable: a mapping that never settles is reported, not looped.
const maxStableRounds = 10

type flowList []string

func (f *flowList) String() string     { return strings.Join(*f, ",") }
func (f *flowList) Set(v string) error { *f = append(*f, v); return nil }

func runRun(e *env, args []string) int {
	fs := e.flags("run")
	var flows flowList
	fs.Var(&flows, "flow", "run only this flow `id` (repeatable); the flows it refers to must have run before")
	dry := fs.Bool("dry-run", false, "compute the plan and print it, property by property; write nothing anywhere")
	untilStable := fs.Bool("until-stable", false, "run again until a run writes nothing (at most 10 runs)")
	every := fs.Duration("every", 0, "run every `interval` (e.g. 30s) until interrupted")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	reconcile := fs.Bool("reconcile", false, "read every record of both sides whatever the watermarks, and sync each linked pair that differs from its link (edits that did not change updated)")
	clockSkew := fs.Duration("clock-skew", dsync.DefaultClockSkew, "how far a system's clock may run ahead: a watermark stays this `long` before its read's start")
	statePath := fs.String("state", DefaultState, "the link state `file`")
	resync := fs.Bool("resync", false, "merge every linked pair again, changed or not, without linking anew")
	allowNewSystems := fs.Bool("allow-new-systems", false, "run against a system in another place than the one its links were made with, although it holds records with linked ids (a copy)")
	allowNewState := fs.Bool("allow-new-state", false, "run on a link state that never ran although both systems of a flow that creates records hold records (they were never synced)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the command to `file` (go tool pprof)")
	memProfile := fs.String("memprofile", "", "write an allocation profile to `file` when the command ends (go tool pprof)")
	paths, code := e.parse(fs, args)
	gctune.ForRun()
	if code >= 0 {
		return code
	}
	stopProfiles, err := startProfiles(*cpuProfile, *memProfile)
	if err != nil {
		fmt.Fprintf(e.stderr, "dataflow run: %s\n", errText(err))
		return exitUsage
	}
	defer func() {
		if err := stopProfiles(); err != nil {
			fmt.Fprintf(e.stderr, "dataflow run: %s\n", errText(err))
		}
	}()
	res, ok := e.load(paths)
	if !ok {
		return exitUsage
	}
	if res.Diagnostics.HasErrors() {
		diag.WriteText(e.stderr, res.Diagnostics, res.Sources)
		fmt.Fprintln(e.stderr, "dataflow run: the mappings are invalid; nothing was run")
		return exitUsage
	}
	selected, err := dsync.Order(res.Project, flows)
	if err != nil {
		fmt.Fprintf(e.stderr, "dataflow run: %s\n", errText(err))
		return exitUsage
	}
	if len(selected) == 0 {
		fmt.Fprintln(e.stderr, "dataflow run: no flows to run")
		return exitUsage
	}
	databases := runDatabases(*statePath, res.Project)
	st, cleanup, err := openState(e.ctx, *statePath, *dry)
	if err != nil {
		fmt.Fprintf(e.stderr, "dataflow run: %s\n", errText(explainReadOnly(err, databases)))
		return exitUsage
	}
	defer cleanup()
	conns, err := openConnections(e.ctx, res.Project, selected, *dry)
	if err != nil {
		fmt.Fprintf(e.stderr, "dataflow run: %s\n", errText(err))
		return exitUsage
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	runner := &dsync.Runner{Project: res.Project, Conns: conns, State: st, Opts: dsync.Options{DryRun: *dry, Flows: flows,
		Reconcile: *reconcile, ClockSkew: *clockSkew, Resync: *resync,
		AllowNewState: *allowNewState, AllowNewSystems: *allowNewSystems}}
	if isTerminal(e.stderr) && !*asJSON {
		runner.Opts.Progress = progress(e.stderr)
	}
	code = exitOK
	requests := requestCounter(conns)
	for round := 1; ; round++ {
		before := requests()
		rep, err := runner.Run(e.ctx)
		runner.Opts.Reconcile = false // --reconcile is for the first run only
		if err != nil {
			err = explainReadOnly(err, databases)
		}
		// A run the signal stopped says so, whatever error the stop surfaced as: a wrapper
		// must not take it for a run that did everything.
		interrupted := e.ctx.Err() != nil || (rep != nil && rep.Stopped)
		if rep != nil {
			rep.Stopped = rep.Stopped || interrupted
			e.printReport(rep, *asJSON, *dry, err != nil && !interrupted)
			if !*asJSON {
				if *dry {
					printDryRequests(e.stdout, rep.Changes, res.Project, conns)
				}
				printRequests(e.stdout, before, requests())
			}
		}
		if interrupted {
			if err != nil && !errors.Is(err, context.Canceled) {
				fmt.Fprintf(e.stderr, "dataflow run: %s\n", errText(err))
			}
			fmt.Fprintln(e.stderr, "dataflow run: interrupted; the finished batches are saved, the rest is synced by the next run")
			return exitInterrupted(e.ctx)
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "dataflow run: %s\n", errText(err))
			return exitInvalid
		}
		if rep.Failed() > 0 {
			code = exitInvalid
		}
		switch {
		case *untilStable && !*dry && rep.Writes() > 0:
			if round == maxStableRounds {
				fmt.Fprintf(e.stderr, "dataflow run: still writing after %d runs; the mappings may not settle (a value that changes on every write?)\n", round)
				return exitInvalid
			}
			continue
		case *every > 0:
			select {
			case <-e.ctx.Done():
				fmt.Fprintln(e.stderr, "dataflow run: interrupted between runs; every run before it finished")
				return exitInterrupted(e.ctx)
			case <-time.After(*every):
				continue
			}
		}
		return code
	}
}

// startProfiles starts a CPU profile into cpuFile (when not empty) and returns the function
// that stops it and writes the allocation profile into memFile (when not empty): what the
// command allocated since it started, sampled as Go does (go tool pprof -sample_index=alloc_space).
func startProfiles(cpuFile, memFile string) (func() error, error) {
	var cpu *os.File
	if cpuFile != "" {
		var err error
		if cpu, err = os.Create(cpuFile); err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			cpu.Close()
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
	}
	return func() error {
		var errs []error
		if cpu != nil {
			pprof.StopCPUProfile()
			if err := cpu.Close(); err != nil {
				errs = append(errs, fmt.Errorf("cpu profile: %w", err))
			}
		}
		if memFile != "" {
			runtime.GC() // the in-use figures as of the end
			f, err := os.Create(memFile)
			if err == nil {
				err = pprof.Lookup("allocs").WriteTo(f, 0)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("memory profile: %w", err))
			}
		}
		return errors.Join(errs...)
	}, nil
}

// openState opens the link state for a run. A dry run works on a copy in a temporary
// directory (or on an empty state when there is none yet): even a read-only SQLite connection
// may create -wal and -shm files beside the state, and a dry run must change no file at all.
func openState(ctx context.Context, path string, dry bool) (state.Store, func(), error) {
	if pgstate.IsURL(path) {
		// A dry run writes nothing, and a database is not copied: it reads the state as it is.
		mode := state.ReadWrite
		if dry {
			mode = state.ReadOnly
		}
		st, err := openStore(ctx, path, mode)
		switch {
		case dry && errors.Is(err, fs.ErrNotExist):
			// No run has written it yet: the dry run plans against an empty state, as it
			// does where a state file does not exist yet, and creates nothing in the
			// database.
			return openDryCopy(ctx, "")
		case err != nil:
			return nil, nil, err
		}
		return st, func() { st.Close() }, nil
	}
	if !dry {
		st, err := state.Open(ctx, path, state.ReadWrite)
		if err != nil {
			return nil, nil, err
		}
		return st, func() { st.Close() }, nil
	}
	return openDryCopy(ctx, path)
}

// openDryCopy opens a copy of the state file at path in a temporary directory, or an empty
// state there when path is "" or does not exist; closing it removes the directory.
func openDryCopy(ctx context.Context, path string) (state.Store, func(), error) {
	dir, err := os.MkdirTemp("", "dataflow-dry-run-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	copyPath := filepath.Join(dir, "state.db")
	for _, suffix := range []string{"", "-wal"} {
		if path == "" {
			break
		}
		if err := copyFile(path+suffix, copyPath+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			cleanup()
			return nil, nil, err
		}
	}
	st, err := state.Open(ctx, copyPath, state.ReadWrite)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return st, func() { st.Close(); cleanup() }, nil
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o600)
}

// openConnections opens a connection to every system the flows use.
func openConnections(ctx context.Context, p *mapping.Project, flows []*mapping.Flow, readOnly bool) (map[string]connector.Conn, error) {
	registry := engine.Connectors()
	conns := map[string]connector.Conn{}
	for _, f := range flows {
		for _, sys := range []*mapping.System{f.Dataflow.Source, f.Dataflow.Target} {
			id := sys.Config.ID.Value
			if conns[id] != nil {
				continue
			}
			driver, _ := registry.Driver(sys.Config.Connector.Value)
			opener, ok := driver.(connector.Opener)
			if !ok {
				return nil, fmt.Errorf("the %s connector of %s cannot run", sys.Config.Connector.Value, sys.Name())
			}
			entities := map[string]*schema.Entity{}
			for name, ent := range sys.Entities {
				entities[name] = ent.Schema
			}
			c, err := opener.Open(ctx, sys.Config, entities, connector.OpenOptions{ReadOnly: readOnly})
			if err != nil {
				for _, open := range conns {
					open.Close()
				}
				return nil, fmt.Errorf("%s: %w", sys.Name(), err)
			}
			conns[id] = c
		}
	}
	return conns, nil
}

// printReport prints a run's report; stopped tells that the run ended on an error (printed
// after it), so that its summary does not read as a run that did everything.
func (e *env) printReport(rep *dsync.Report, asJSON, dry, stopped bool) {
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		enc.Encode(rep)
		return
	}
	if dry {
		printPlan(e.stdout, rep.Changes)
	}
	printSummary(e.stdout, rep, stopped)
	for _, w := range rep.Warnings {
		fmt.Fprintf(e.stderr, "dataflow run: warning: %s\n", diag.Escape(w))
	}
}

// requestCounter returns a function that gives the requests each connection that counts them
// (the http connector) has sent so far, by system id.
func requestCounter(conns map[string]connector.Conn) func() map[string]int64 {
	return func() map[string]int64 {
		out := map[string]int64{}
		for id, c := range conns {
			if rc := c.Capabilities().RequestCounter; rc != nil {
				out[id] = rc.Requests()
			}
		}
		return out
	}
}

// printRequests says how many requests a run sent to each system that counts them, retries and
// logins included: what a rate budget or an API quota is spent on.
func printRequests(w io.Writer, before, after map[string]int64) {
	if len(after) == 0 {
		return
	}
	ids := make([]string, 0, len(after))
	for id := range after {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("%s %d", diag.Escape(id), after[id]-before[id])
	}
	fmt.Fprintf(w, "requests: %s\n", strings.Join(parts, ", "))
}

// printPlan lists a dry run's changes, property by property. Ids, values and reasons come
// from the systems' records: each is escaped (diag.Escape), so that a record cannot drive the
// terminal, and a value's line break cannot pass for another change.
func printPlan(w io.Writer, changes []dsync.Change) {
	if len(changes) == 0 {
		fmt.Fprintln(w, "dry run: nothing would change")
		return
	}
	fmt.Fprintln(w, "dry run: these changes would be made")
	q := diag.Escape
	for _, c := range changes {
		switch c.Action {
		case "update":
			fmt.Fprintf(w, "  %s: update %s %s: %s: %s → %s\n", q(c.Flow), q(c.Side), q(c.RecordID), q(c.Property), q(c.Old), q(c.New))
		case "create":
			fmt.Fprintf(w, "  %s: create in %s from %s: %s\n", q(c.Flow), q(c.Side), q(c.FromID), q(c.New))
		case "link":
			fmt.Fprintf(w, "  %s: link %s %s with %s (%s)\n", q(c.Flow), q(c.Side), q(c.RecordID), q(c.FromID), q(c.Reason))
		default:
			fmt.Fprintf(w, "  %s: %s %s %s: %s\n", q(c.Flow), q(c.Action), q(c.Side), q(c.RecordID), q(c.Reason))
		}
	}
}

// printSummary prints one row per flow: what was read and what was done.
func printSummary(w io.Writer, rep *dsync.Report, stoppedOnError bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "flow\tread\tcreated\tmerged\tupdated→target\tupdated→source\tconflicts\tunchanged\twaiting\tfailed\tdeleted\t")
	for _, f := range rep.Flows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", diag.Escape(f.Flow), f.ReadSource+f.ReadTarget,
			f.CreatedTarget+f.CreatedSource, f.Merged, f.UpdatedTarget, f.UpdatedSource, f.Conflicts,
			f.Unchanged, f.Waiting, f.Failed, f.Deleted)
	}
	tw.Flush()
	printReconciled(w, rep)
	undone := func() {
		if n := rep.Undone(); n > 0 {
			fmt.Fprintf(w, "%s left undone, for the next run\n", diag.Plural(n, "write"))
		}
	}
	if stoppedOnError {
		// Records not reached were neither synced nor failed: "0 records failed" would say
		// the run did everything.
		fmt.Fprintf(w, "%s, then the run stopped on an error; what it did not reach is synced by the next run\n", diag.Plural(rep.Writes(), "write"))
		undone()
		return
	}
	stopped := ""
	if rep.Stopped {
		stopped = "; interrupted before the end"
	}
	fmt.Fprintf(w, "%s, %s failed%s\n", diag.Plural(rep.Writes(), "write"), diag.Plural(rep.Failed(), "record"), stopped)
	undone()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// progress shows, on a terminal, how far a long run is.
func progress(w io.Writer) func(string, *dsync.FlowStats) {
	last := time.Time{}
	return func(flow string, s *dsync.FlowStats) {
		if time.Since(last) < 200*time.Millisecond {
			return
		}
		last = time.Now()
		fmt.Fprintf(w, "\r%s: %d read, %d written   ", diag.Escape(flow), s.ReadSource+s.ReadTarget, s.Writes())
	}
}

// errText is an error's message, escaped for the terminal: errors quote files, records and
// responses (diag.EscapeLines keeps the line breaks of a joined error).
func errText(err error) string { return diag.EscapeLines(err.Error()) }
