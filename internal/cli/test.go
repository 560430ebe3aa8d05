package cli

import (
	"fmt"

	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/mtest"
)

func runTest(e *env, args []string) int {
	fs := e.flags("test")
	paths, code := e.parse(fs, args)
	if code >= 0 {
		return code
	}
	res, ok := e.load(paths)
	if !ok {
		return exitUsage
	}
	if res.Diagnostics.HasErrors() {
		diag.WriteText(e.stderr, res.Diagnostics, res.Sources)
		fmt.Fprintln(e.stderr, "dataflow test: the mappings are invalid; no test was run")
		return exitInvalid
	}
	results, ds := mtest.Run(res.Project)
	if len(ds) > 0 {
		diag.WriteText(e.stderr, ds, res.Sources)
		return exitInvalid
	}
	if len(results) == 0 {
		fmt.Fprintln(e.stderr, "dataflow test: no mapping tests found; they are files that start with \"test:\", e.g. mappings/tests/*.yaml")
		return exitInvalid
	}
	fmt.Fprint(e.stdout, diag.EscapeLines(mtest.Format(results))) // records' values, escaped
	fmt.Fprintln(e.stdout, mtest.Summary(results))
	for _, r := range results {
		if len(r.Failed) > 0 {
			return exitInvalid
		}
	}
	return exitOK
}
