package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	dsync "github.com/dataflow-sync/dataflow/engine/sync"
)

// printDryRequests lists, after a dry run's plan, the requests a run would send to write it:
// per system and entity that can say so, each write operation the plan uses, with the number
// of records. Reads are not listed (a dry run sent them); nothing secret is shown.
func printDryRequests(w io.Writer, changes []dsync.Change, p *mapping.Project, conns map[string]connector.Conn) {
	flows := map[string]*mapping.Flow{}
	for _, d := range p.Dataflows {
		for _, f := range d.Flows {
			flows[f.ID()] = f
		}
	}
	type target struct{ system, entity, op string }
	records := map[target]map[string]bool{}
	for _, c := range changes {
		op := c.Action
		if op != "create" && op != "update" && op != "delete" {
			continue
		}
		f := flows[c.Flow]
		if f == nil {
			continue
		}
		ent := f.Source
		if c.Side == "target" {
			ent = f.Target
		}
		t := target{ent.System.Config.ID.Value, ent.Name(), op}
		if records[t] == nil {
			records[t] = map[string]bool{}
		}
		records[t][c.RecordID+"\x00"+c.FromID] = true
	}
	var lines []string
	for t, recs := range records {
		c := conns[t.system]
		if c == nil {
			continue
		}
		ol := c.Capabilities().OperationLister
		if ol == nil {
			continue
		}
		for _, o := range ol.Operations(t.entity) {
			if strings.HasPrefix(o, t.op+": ") {
				lines = append(lines, fmt.Sprintf("  %s %s: %s (%s)", diag.Escape(t.system), diag.Escape(t.entity),
					diag.Escape(o), diag.Plural(len(recs), "record")))
			}
		}
	}
	if len(lines) == 0 {
		return
	}
	sort.Strings(lines)
	fmt.Fprintln(w, "dry run: the writes would send these requests (paths as the system files write them):")
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}
