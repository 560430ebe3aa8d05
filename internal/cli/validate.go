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
	live := fs.Bool("live", false, "also compare each schema file with its table in the live database (columns renamed, dropped or retyped)")
	paths, code := e.parse(fs, args)
	if code >= 0 {
		return code
	}
	if !e.checkChoice("validate", "format", *format, diag.Formats) {
		return exitUsage
	}
	res, ok := e.load(paths)
	if !ok {
		return exitUsage
	}
	if *live {
		checkLive(e, res)
	}
	if err := diag.WriteFormat(e.stdout, *format, res.Diagnostics, res.Sources); err != nil {
		fmt.Fprintf(e.stderr, "dataflow validate: %s\n", errText(err))
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
		fmt.Fprintf(e.stderr, "dataflow: %s\n", errText(err))
		if len(paths) == 1 && paths[0] == DefaultMappings {
			fmt.Fprintf(e.stderr, "Mappings are read from ./%s unless paths are given; run dataflow in your project's directory or name the mapping files.\n", DefaultMappings)
		}
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
	if n := len(res.Project.Config.Tests); n > 0 {
		checked += ", " + diag.Plural(n, "mapping test")
	}
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

// checkChoice reports a flag value outside its choices: "unknown --format "jsn"; did you mean
// "json"?", then the choices.
func (e *env) checkChoice(cmd, flagName, value string, choices []string) bool {
	for _, c := range choices {
		if value == c {
			return true
		}
	}
	fmt.Fprintf(e.stderr, "dataflow %s: unknown --%s %q%s\nUse %s.\n", cmd, flagName, value, didYouMean(value, choices), orList(choices))
	return false
}

// orList joins choices as "a, b or c".
func orList(choices []string) string {
	if len(choices) == 1 {
		return choices[0]
	}
	return strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1]
}
