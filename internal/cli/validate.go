package cli

import (
	"fmt"
	"strings"

	"github.com/dataflow-sync/dataflow/engine"
	"github.com/dataflow-sync/dataflow/engine/diag"
)

func didYouMean(name string, candidates []string) string { return diag.DidYouMean(name, candidates) }

func runValidate(e *env, args []string) int {
	fs := e.flags("validate")
	format := fs.String("format", "text", "output `format`: text, json or github (GitHub Actions annotations)")
	paths, code := parse(fs, args)
	if code >= 0 {
		return code
	}
	if !validFormat(*format, diag.Formats) {
		fmt.Fprintf(e.stderr, "dataflow validate: unknown format %q%s; use text, json or github\n", *format, didYouMean(*format, diag.Formats))
		return exitUsage
	}
	res, ok := e.load(paths)
	if !ok {
		return exitUsage
	}
	if err := diag.WriteFormat(e.stdout, *format, res.Diagnostics, res.Sources); err != nil {
		fmt.Fprintf(e.stderr, "dataflow validate: %v\n", err)
		return exitUsage
	}
	if *format == "text" {
		fmt.Fprintln(e.stdout, summary(res))
	}
	if res.Diagnostics.HasErrors() {
		return exitInvalid
	}
	return exitOK
}

// load reads and compiles the mappings under paths (default ./mappings), reporting an
// unreadable path on stderr.
func (e *env) load(paths []string) (*engine.Result, bool) {
	if len(paths) == 0 {
		paths = []string{DefaultMappings}
	}
	eng, ok := e.engine()
	if !ok {
		return nil, false
	}
	res, err := eng.Load(e.ctx, paths)
	if err != nil {
		fmt.Fprintf(e.stderr, "dataflow: %v\n", err)
		return nil, false
	}
	return res, true
}

// summary is the closing line of text output: what was checked and what was found.
func summary(res *engine.Result) string {
	errs, warns := res.Diagnostics.Count()
	files := len(res.Sources)
	flows := 0
	for _, d := range res.Project.Dataflows {
		flows += len(d.Flows)
	}
	checked := fmt.Sprintf("%s, %s, %s, %s",
		diag.Plural(files, "file"), diag.Plural(len(res.Project.Config.Systems), "system"),
		diag.Plural(len(res.Project.Dataflows), "dataflow"), diag.Plural(flows, "flow"))
	if errs == 0 && warns == 0 {
		return "valid: " + checked
	}
	var found []string
	if errs > 0 {
		found = append(found, diag.Plural(errs, "error"))
	}
	if warns > 0 {
		found = append(found, diag.Plural(warns, "warning"))
	}
	verdict := "invalid"
	if errs == 0 {
		verdict = "valid"
	}
	return fmt.Sprintf("%s: %s in %s", verdict, strings.Join(found, " and "), checked)
}

func validFormat(f string, formats []string) bool {
	for _, x := range formats {
		if f == x {
			return true
		}
	}
	return false
}
