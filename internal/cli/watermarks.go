package cli

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
	dsync "github.com/dataflow-sync/dataflow/engine/sync"
)

// printReconciled says, for each flow whose run was a reconcile, how many linked pairs it
// found differing from their links: edits that runs from the watermarks did not read.
func printReconciled(w io.Writer, rep *dsync.Report) {
	for _, f := range rep.Flows {
		if f.Reconcile {
			fmt.Fprintf(w, "%s: reconciled: %s differed\n", f.Flow, diag.Plural(f.Reconciled, "record"))
		}
	}
}

// statusWatermarks is status's section of watermarks; a code >= 0 means stop with it.
func (e *env) statusWatermarks(st state.Store, flows []string, p *mapping.Project) int {
	if err := e.printWatermarks(st, flows, p); err != nil {
		fmt.Fprintf(e.stderr, "dataflow status: %v\n", err)
		return exitUsage
	}
	return -1
}

// printWatermarks lists the watermarks of the flows (for status and `watermarks`): where the
// next run's incremental reads start. The entities come from the project; a flow the project
// does not have (or no project: a state without its mappings) shows what the state holds.
func (e *env) printWatermarks(st state.Store, flows []string, p *mapping.Project) error {
	byID := map[string]*mapping.Flow{}
	if p != nil {
		for _, d := range p.Dataflows {
			for _, f := range d.Flows {
				byID[f.ID()] = f
			}
		}
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "flow\tside\tentity\twatermark\tlast reconcile")
	for _, id := range flows {
		at, ok, err := st.Reconciled(e.ctx, id)
		if err != nil {
			return err
		}
		last := "never"
		if ok {
			last = at.Local().Format("2006-01-02 15:04:05")
		}
		f := byID[id]
		for _, side := range []string{state.Source, state.Target} {
			var ent *mapping.Entity
			entity := "-"
			if f != nil {
				if ent = f.Source; side == state.Target {
					ent = f.Target
				}
				if ent == nil {
					continue
				}
				entity = ent.Name()
			}
			wm, err := st.Watermark(e.ctx, id, side)
			if err != nil {
				return err
			}
			switch {
			case !printable(wm):
				wm = strconv.Quote(wm) // a value from a system, shown escaped
			case ent != nil && ent.Config.Updated.Value == "":
				wm = "(no updated property: read whole)"
			case wm == "":
				wm = "(none: the next run reads everything)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", diag.Escape(id), side, diag.Escape(entity), wm, last)
		}
	}
	return tw.Flush()
}

// runWatermarks lists the flows' watermarks, or resets them so that the next run reads every
// record (`dataflow watermarks reset [--flow ID]`).
func runWatermarks(e *env, args []string) int {
	fs := e.flags("watermarks")
	statePath := fs.String("state", DefaultState, "the link state `file`")
	flow := fs.String("flow", "", "only this flow's watermarks")
	rest, code := e.parse(fs, args)
	if code >= 0 {
		return code
	}
	action := "list"
	if len(rest) > 0 && (rest[0] == "list" || rest[0] == "reset") {
		action, rest = rest[0], rest[1:]
	}
	res, ok := e.load(rest)
	if !ok {
		return exitUsage
	}
	var flows []string
	for _, d := range res.Project.Dataflows {
		for _, f := range d.Flows {
			if *flow == "" || f.ID() == *flow {
				flows = append(flows, f.ID())
			}
		}
	}
	if len(flows) == 0 {
		fmt.Fprintf(e.stderr, "dataflow watermarks: unknown flow %q\n", *flow)
		return exitUsage
	}
	if action == "list" {
		st, ok := e.openStateReadOnly("watermarks", *statePath)
		if !ok {
			return exitUsage
		}
		defer st.Close()
		if err := e.printWatermarks(st, flows, res.Project); err != nil {
			fmt.Fprintf(e.stderr, "dataflow watermarks: %v\n", err)
			return exitUsage
		}
		return exitOK
	}
	st, ok := e.openStateReadOnly("watermarks", *statePath) // a missing state is an error, not a new file
	if !ok {
		return exitUsage
	}
	st.Close()
	ws, err := openStore(e.ctx, *statePath, state.ReadWrite)
	if err != nil {
		fmt.Fprintf(e.stderr, "dataflow watermarks: %v\n", err)
		return exitUsage
	}
	defer ws.Close()
	tx, err := ws.Begin(e.ctx)
	if err != nil {
		fmt.Fprintf(e.stderr, "dataflow watermarks: %v\n", err)
		return exitUsage
	}
	for _, f := range flows {
		if err := tx.ClearWatermarks(f); err != nil {
			tx.Rollback()
			fmt.Fprintf(e.stderr, "dataflow watermarks: %v\n", err)
			return exitUsage
		}
	}
	if err := tx.Commit(); err != nil {
		fmt.Fprintf(e.stderr, "dataflow watermarks: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(e.stdout, "reset the watermarks of %s; the next run reads every record of them\n", diag.Plural(len(flows), "flow"))
	return exitOK
}

// printable reports whether s is valid UTF-8 without control characters, safe to print as it is.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
