package cli

import (
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/dataflow-sync/dataflow/engine"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// openStateReadOnly opens the link state for reading, beside a run that may be writing it.
func (e *env) openStateReadOnly(cmd, path string) (state.Store, bool) {
	if _, err := os.Stat(path); err != nil {
		fmt.Fprintf(e.stderr, "dataflow %s: no link state at %s; it is created by the first run (dataflow run)\n", cmd, diag.Escape(path))
		return nil, false
	}
	st, err := state.Open(e.ctx, path, state.ReadOnly)
	if err != nil {
		fmt.Fprintf(e.stderr, "dataflow %s: %s\n", cmd, errText(err))
		return nil, false
	}
	return st, true
}

// readState is the start of the commands that report on the link state: their flags, the
// mappings (for the flows), and the state opened for reading. A code >= 0 means stop with it.
func (e *env) readState(cmd string, fs *flag.FlagSet, statePath *string, args []string) (*engine.Result, state.Store, int) {
	rest, code := e.parse(fs, args)
	if code >= 0 {
		return nil, nil, code
	}
	res, ok := e.load(rest)
	if !ok {
		return nil, nil, exitUsage
	}
	st, ok := e.openStateReadOnly(cmd, *statePath)
	if !ok {
		return nil, nil, exitUsage
	}
	return res, st, -1
}

func runStatus(e *env, args []string) int {
	fs := e.flags("status")
	statePath := fs.String("state", DefaultState, "the link state `file`")
	res, st, code := e.readState("status", fs, statePath, args)
	if code >= 0 {
		return code
	}
	defer st.Close()
	waiting, err := st.Waiting(e.ctx, "")
	if err != nil {
		fmt.Fprintf(e.stderr, "dataflow status: %s\n", errText(err))
		return exitUsage
	}
	dead, err := st.DeadLetters(e.ctx, "")
	if err != nil {
		fmt.Fprintf(e.stderr, "dataflow status: %s\n", errText(err))
		return exitUsage
	}
	countBy := func(flow string, n int, list func(int) string) int {
		c := 0
		for i := 0; i < n; i++ {
			if list(i) == flow {
				c++
			}
		}
		return c
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "flow\tlinks\twaiting\tfailing")
	for _, d := range res.Project.Dataflows {
		for _, f := range d.Flows {
			n, err := st.CountLinks(e.ctx, f.ID())
			if err != nil {
				fmt.Fprintf(e.stderr, "dataflow status: %s\n", errText(err))
				return exitUsage
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", f.ID(), n,
				countBy(f.ID(), len(waiting), func(i int) string { return waiting[i].Flow }),
				countBy(f.ID(), len(dead), func(i int) string { return dead[i].Flow }))
		}
	}
	tw.Flush()
	runs, err := st.Runs(e.ctx, 1)
	if err == nil && len(runs) > 0 {
		r := runs[0]
		finished := "not finished (running, or killed)"
		if !r.Finished.IsZero() {
			finished = r.Finished.Local().Format(time.DateTime)
		}
		fmt.Fprintf(e.stdout, "last run: #%d started %s, %s, %s\n", r.ID, r.Started.Local().Format(time.DateTime), r.Status, finished)
	}
	return exitOK
}

func runLinks(e *env, args []string) int {
	fs := e.flags("links")
	statePath := fs.String("state", DefaultState, "the link state `file`")
	flow := fs.String("flow", "", "only this flow's links")
	res, st, code := e.readState("links", fs, statePath, args)
	if code >= 0 {
		return code
	}
	defer st.Close()
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "flow\tsource id\ttarget id\tsynced")
	found := *flow == ""
	for _, d := range res.Project.Dataflows {
		for _, f := range d.Flows {
			if *flow != "" && f.ID() != *flow {
				continue
			}
			found = true
			err := st.ScanLinks(e.ctx, f.ID(), func(links []*state.Link) error {
				for _, l := range links {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", diag.Escape(l.Flow), diag.Escape(l.SourceID), diag.Escape(l.TargetID), l.Updated.Local().Format(time.DateTime))
				}
				return nil
			})
			if err != nil {
				fmt.Fprintf(e.stderr, "dataflow links: %s\n", errText(err))
				return exitUsage
			}
		}
	}
	if !found {
		fmt.Fprintf(e.stderr, "dataflow links: unknown flow %q\n", *flow)
		return exitUsage
	}
	tw.Flush()
	return exitOK
}

func runDeadLetters(e *env, args []string) int {
	fs := e.flags("deadletters")
	statePath := fs.String("state", DefaultState, "the link state `file`")
	flow := fs.String("flow", "", "only this flow's dead letters")
	rest, code := e.parse(fs, args)
	if code >= 0 {
		return code
	}
	action := "list"
	if len(rest) > 0 {
		action, rest = rest[0], rest[1:]
	}
	switch action {
	case "list":
		st, ok := e.openStateReadOnly("deadletters", *statePath)
		if !ok {
			return exitUsage
		}
		defer st.Close()
		dead, err := st.DeadLetters(e.ctx, *flow)
		if err != nil {
			fmt.Fprintf(e.stderr, "dataflow deadletters: %s\n", errText(err))
			return exitUsage
		}
		if len(dead) == 0 {
			fmt.Fprintln(e.stdout, "no dead letters")
			return exitOK
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "flow\tside\trecord\tattempts\tsince\treason")
		for _, d := range dead {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", diag.Escape(d.Flow), d.Side, diag.Escape(d.RecordID), d.Attempts, d.First.Local().Format(time.DateTime), diag.Escape(d.Reason))
		}
		tw.Flush()
		return exitOK
	case "drop":
		if len(rest) == 0 && *flow == "" {
			fmt.Fprintln(e.stderr, "dataflow deadletters drop: name the records (side:id or id) or a --flow; dropping every dead letter needs --flow for each flow")
			return exitUsage
		}
		st, err := state.Open(e.ctx, *statePath, state.ReadWrite)
		if err != nil {
			fmt.Fprintf(e.stderr, "dataflow deadletters: %s\n", errText(err))
			return exitUsage
		}
		defer st.Close()
		dead, err := st.DeadLetters(e.ctx, *flow)
		if err != nil {
			fmt.Fprintf(e.stderr, "dataflow deadletters: %s\n", errText(err))
			return exitUsage
		}
		want := map[string]bool{}
		for _, id := range rest {
			want[id] = true
		}
		tx, err := st.Begin(e.ctx)
		if err != nil {
			fmt.Fprintf(e.stderr, "dataflow deadletters: %s\n", errText(err))
			return exitUsage
		}
		dropped := 0
		for _, d := range dead {
			if len(want) > 0 && !want[d.RecordID] && !want[d.Side+":"+d.RecordID] {
				continue
			}
			if err := tx.ClearDeadLetter(d.Flow, d.Side, d.RecordID); err != nil {
				tx.Rollback()
				fmt.Fprintf(e.stderr, "dataflow deadletters: %s\n", errText(err))
				return exitUsage
			}
			dropped++
		}
		if err := tx.Commit(); err != nil {
			fmt.Fprintf(e.stderr, "dataflow deadletters: %s\n", errText(err))
			return exitUsage
		}
		fmt.Fprintf(e.stdout, "dropped %d dead letters; the records are not retried until they change\n", dropped)
		return exitOK
	case "retry":
		// Dead letters are retried by every run; retry runs the flows that have some now.
		st, ok := e.openStateReadOnly("deadletters", *statePath)
		if !ok {
			return exitUsage
		}
		dead, err := st.DeadLetters(e.ctx, *flow)
		st.Close()
		if err != nil {
			fmt.Fprintf(e.stderr, "dataflow deadletters: %s\n", errText(err))
			return exitUsage
		}
		if len(dead) == 0 {
			fmt.Fprintln(e.stdout, "no dead letters")
			return exitOK
		}
		runArgs := []string{"--state", *statePath}
		seen := map[string]bool{}
		for _, d := range dead {
			if !seen[d.Flow] {
				seen[d.Flow] = true
				runArgs = append(runArgs, "--flow", d.Flow)
			}
		}
		return runRun(e, append(runArgs, rest...))
	}
	fmt.Fprintf(e.stderr, "dataflow deadletters: unknown action %q; use list, retry or drop\n", action)
	return exitUsage
}
