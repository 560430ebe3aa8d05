package cli

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/dataflow-sync/dataflow/engine/state"
)

// runPending lists the changes the circuit breaker refused, which wait for a person.
func runPending(e *env, args []string) int {
	fs := e.flags("pending")
	statePath := fs.String("state", DefaultState, "the link state `file`")
	flow := fs.String("flow", "", "only this flow's pending changes")
	rest, code := e.parse(fs, args)
	if code >= 0 {
		return code
	}
	if len(rest) > 0 {
		fmt.Fprintf(e.stderr, "dataflow pending: unexpected argument %q; approve or reject a change with dataflow approve ID or dataflow reject ID\n", rest[0])
		return exitUsage
	}
	st, ok := e.openStateReadOnly("pending", *statePath)
	if !ok {
		return exitUsage
	}
	defer st.Close()
	pending, err := st.Pending(e.ctx, *flow)
	if err != nil {
		fmt.Fprintf(e.stderr, "dataflow pending: %v\n", err)
		return exitUsage
	}
	if len(pending) == 0 {
		fmt.Fprintln(e.stdout, "no pending changes")
		return exitOK
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "id\tflow\tstatus\tsince\tlinks\tchange")
	for _, p := range pending {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", p.ID, p.Flow, p.Status, p.Created.Local().Format(time.DateTime), len(p.Links), p.Summary)
	}
	tw.Flush()
	fmt.Fprintln(e.stdout, "Approve a change with dataflow approve ID (the next run makes it), or drop it with dataflow reject ID (the links stay).")
	return exitOK
}

func runApprove(e *env, args []string) int {
	return e.decidePending("approve", args, func(tx state.Tx, id int64) error { return tx.ApprovePending(id) },
		"approved pending change %d: the next run of flow %s makes it\n")
}

func runReject(e *env, args []string) int {
	return e.decidePending("reject", args, func(tx state.Tx, id int64) error { return tx.DeletePending(id) },
		"rejected pending change %d: flow %s keeps its links; a run that finds the records missing again stops again\n")
}

// decidePending approves or rejects the pending change whose id args name.
func (e *env) decidePending(cmd string, args []string, decide func(tx state.Tx, id int64) error, done string) int {
	fs := e.flags(cmd)
	statePath := fs.String("state", DefaultState, "the link state `file`")
	rest, code := e.parse(fs, args)
	if code >= 0 {
		return code
	}
	if len(rest) != 1 {
		fmt.Fprintf(e.stderr, "dataflow %s: name one pending change by its id (dataflow pending lists them)\n", cmd)
		return exitUsage
	}
	id, err := strconv.ParseInt(rest[0], 10, 64)
	if err != nil || id <= 0 {
		fmt.Fprintf(e.stderr, "dataflow %s: %q is not the id of a pending change (a number; dataflow pending lists them)\n", cmd, rest[0])
		return exitUsage
	}
	if msg := missingState(cmd, *statePath); msg != "" {
		// Opening for writing would create a state file just to hold the decision.
		io.WriteString(e.stderr, msg)
		return exitUsage
	}
	st, err := openStore(e.ctx, *statePath, state.ReadWrite)
	if err != nil {
		fmt.Fprintf(e.stderr, "dataflow %s: %v\n", cmd, err)
		return exitUsage
	}
	defer st.Close()
	pending, err := st.Pending(e.ctx, "")
	if err != nil {
		fmt.Fprintf(e.stderr, "dataflow %s: %v\n", cmd, err)
		return exitUsage
	}
	flow := ""
	for _, p := range pending {
		if p.ID == id {
			flow = p.Flow
		}
	}
	tx, err := st.Begin(e.ctx)
	if err != nil {
		fmt.Fprintf(e.stderr, "dataflow %s: %v\n", cmd, err)
		return exitUsage
	}
	if err := decide(tx, id); err != nil {
		tx.Rollback()
		if errors.Is(err, state.ErrNoPending) {
			fmt.Fprintf(e.stderr, "dataflow %s: there is no pending change %d (dataflow pending lists them)\n", cmd, id)
		} else {
			fmt.Fprintf(e.stderr, "dataflow %s: %v\n", cmd, err)
		}
		return exitUsage
	}
	if err := tx.Commit(); err != nil {
		fmt.Fprintf(e.stderr, "dataflow %s: %v\n", cmd, err)
		return exitUsage
	}
	fmt.Fprintf(e.stdout, done, id, flow)
	return exitOK
}
