package cli

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// openStateReadOnly opens the link state for reading, beside a run that may be writing it.
func (e *env) openStateReadOnly(cmd, path string) (state.Store, bool) {
	if msg := missingState(cmd, path); msg != "" {
		io.WriteString(e.stderr, msg)
		return nil, false
	}
	st, err := openStore(e.ctx, path, state.ReadOnly)
	if err != nil {
		fmt.Fprintf(e.stderr, "dataflow %s: %s\n", cmd, errText(err))
		return nil, false
	}
	return st, true
}

// readState is the start of the commands that report on the link state: their flags, the
// flows to report on, and the state opened for reading. A code >= 0 means stop with it.
//
// The flows are those of the mappings (in their order), when paths are given or ./mappings
// exists, followed by any other flow the state holds (a flow renamed or removed since); without
// mappings, the flows the state holds. These commands need the mappings for nothing else, so
// that they work on a machine that has only the state (a server, a copy for support).
//
// The project is nil when there are no mappings.
func (e *env) readState(cmd string, fs *flag.FlagSet, statePath *string, args []string) ([]string, *mapping.Project, state.Store, int) {
	rest, code := e.parse(fs, args)
	if code >= 0 {
		return nil, nil, nil, code
	}
	var flows []string
	var project *mapping.Project
	if len(rest) > 0 || dirExists(DefaultMappings) {
		res, ok := e.load(rest)
		if !ok {
			return nil, nil, nil, exitUsage
		}
		project = res.Project
		for _, d := range res.Project.Dataflows {
			for _, f := range d.Flows {
				flows = append(flows, f.ID())
			}
		}
	}
	st, ok := e.openStateReadOnly(cmd, *statePath)
	if !ok {
		return nil, nil, nil, exitUsage
	}
	if lister, ok := st.(state.FlowLister); ok {
		held, err := lister.Flows(e.ctx)
		if err != nil {
			st.Close()
			fmt.Fprintf(e.stderr, "dataflow %s: %s\n", cmd, errText(err))
			return nil, nil, nil, exitUsage
		}
		known := map[string]bool{}
		for _, f := range flows {
			known[f] = true
		}
		for _, f := range held {
			if !known[f] {
				flows = append(flows, f)
			}
		}
	}
	return flows, project, st, -1
}

func dirExists(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.IsDir()
}

func runStatus(e *env, args []string) int {
	fs := e.flags("status")
	statePath := fs.String("state", DefaultState, "the link state `file`")
	listWaiting := fs.Bool("waiting", false, "list every waiting record with its reason")
	flows, project, st, code := e.readState("status", fs, statePath, args)
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
	waitingBy, deadBy := map[string]int{}, map[string]int{}
	for _, w := range waiting {
		waitingBy[w.Flow]++
	}
	for _, d := range dead {
		deadBy[d.Flow]++
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "flow\tlinks\twaiting\tfailing")
	for _, f := range flows {
		n, err := st.CountLinks(e.ctx, f)
		if err != nil {
			fmt.Fprintf(e.stderr, "dataflow status: %s\n", errText(err))
			return exitUsage
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", diag.Escape(f), n, waitingBy[f], deadBy[f])
	}
	tw.Flush()
	if len(waiting) > 0 {
		printWaiting(e.stdout, waiting, *listWaiting)
	}
	if len(dead) > 0 {
		fmt.Fprintf(e.stdout, "%s failing: dataflow deadletters lists them with their reasons\n", diag.Plural(len(dead), "record"))
	}
	if code := e.statusWatermarks(st, flows, project); code >= 0 {
		return code
	}
	e.printServers(st, project)
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

// printWaiting says why records wait: a count per flow and reason, or with all, every waiting
// record. A record waits for something a later run may bring (a referenced record linked, a
// partner created); one whose reason no run changes waits until the data or the mapping do.
func printWaiting(w io.Writer, waiting []state.Waiting, all bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if all {
		fmt.Fprintln(w, "\nwaiting records:")
		fmt.Fprintln(tw, "flow\tside\trecord\tsince\treason")
		for _, r := range waiting {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", diag.Escape(r.Flow), r.Side, diag.Escape(r.RecordID), r.Since.Local().Format(time.DateTime), diag.Escape(r.Reason))
		}
		tw.Flush()
		fmt.Fprintln(w)
		return
	}
	type key struct{ flow, reason string }
	count := map[key]int{}
	var order []key
	for _, r := range waiting {
		k := key{r.Flow, r.Reason}
		if count[k] == 0 {
			order = append(order, k)
		}
		count[k]++
	}
	fmt.Fprintln(w, "\nwaiting, by reason (dataflow status --waiting lists the records):")
	fmt.Fprintln(tw, "flow\trecords\treason")
	for _, k := range order {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", diag.Escape(k.flow), count[k], diag.Escape(k.reason))
	}
	tw.Flush()
	fmt.Fprintln(w)
}

func runLinks(e *env, args []string) int {
	fs := e.flags("links")
	statePath := fs.String("state", DefaultState, "the link state `file`")
	flow := fs.String("flow", "", "only this flow's links")
	flows, _, st, code := e.readState("links", fs, statePath, args)
	if code >= 0 {
		return code
	}
	defer st.Close()
	if *flow != "" {
		found := false
		for _, f := range flows {
			found = found || f == *flow
		}
		if !found {
			fmt.Fprintf(e.stderr, "dataflow links: unknown flow %q%s\n", *flow, didYouMean(*flow, flows))
			return exitUsage
		}
		flows = []string{*flow}
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "flow\tsource id\ttarget id\tsynced")
	for _, f := range flows {
		err := st.ScanLinks(e.ctx, f, func(links []*state.Link) error {
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
	// Mapping paths may come first (dataflow deadletters mappings/crm.yaml retry): list and
	// drop read only the state, retry runs the flows of those mappings. Anything else that is
	// not an action is refused with the command's form.
	var paths []string
	for len(rest) > 0 && !isDeadLetterAction(rest[0]) && looksLikeMappingPath(rest[0]) {
		paths, rest = append(paths, rest[0]), rest[1:]
	}
	action := "list"
	if len(rest) > 0 {
		action, rest = rest[0], rest[1:]
	}
	if action == "retry" {
		rest = append(paths, rest...)
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
		stateFile := []dbFile{{"the link state", *statePath}}
		st, err := openStore(e.ctx, *statePath, state.ReadWrite)
		if err != nil {
			fmt.Fprintf(e.stderr, "dataflow deadletters: %s\n", errText(explainReadOnly(err, stateFile)))
			return exitUsage
		}
		defer st.Close()
		dead, err := st.DeadLetters(e.ctx, *flow)
		if err != nil {
			fmt.Fprintf(e.stderr, "dataflow deadletters: %s\n", errText(explainReadOnly(err, stateFile)))
			return exitUsage
		}
		want := map[string]bool{}
		for _, id := range rest {
			want[id] = true
		}
		tx, err := st.Begin(e.ctx)
		if err != nil {
			fmt.Fprintf(e.stderr, "dataflow deadletters: %s\n", errText(explainReadOnly(err, stateFile)))
			return exitUsage
		}
		dropped := 0
		for _, d := range dead {
			if len(want) > 0 && !want[d.RecordID] && !want[d.Side+":"+d.RecordID] {
				continue
			}
			if err := tx.ClearDeadLetter(d.Flow, d.Side, d.RecordID); err != nil {
				tx.Rollback()
				fmt.Fprintf(e.stderr, "dataflow deadletters: %s\n", errText(explainReadOnly(err, stateFile)))
				return exitUsage
			}
			dropped++
		}
		if err := tx.Commit(); err != nil {
			fmt.Fprintf(e.stderr, "dataflow deadletters: %s\n", errText(explainReadOnly(err, stateFile)))
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
	fmt.Fprintf(e.stderr, "dataflow deadletters: unknown action %q%s\nThe actions are list, retry and drop; mapping paths end in .yaml or are directories.\nUsage: dataflow %s\n", action, didYouMean(action, deadLetterActions), find("deadletters").usage)
	return exitUsage
}

var deadLetterActions = []string{"list", "retry", "drop"}

func isDeadLetterAction(s string) bool {
	for _, a := range deadLetterActions {
		if s == a {
			return true
		}
	}
	return false
}

// looksLikeMappingPath tells a mapping path among deadletters' arguments: a YAML file name or
// an existing directory.
func looksLikeMappingPath(s string) bool {
	if strings.HasSuffix(s, ".yaml") || strings.HasSuffix(s, ".yml") {
		return true
	}
	return dirExists(s)
}
