// Package mtest runs mapping tests: records given to a flow and the records it must produce,
// source to target and target to source, plus the round trip target → source → target of the
// two-way properties. They check a mapping's expressions and coercions without any system,
// so they run in CI next to validation.
package mtest

import (
	"fmt"
	"sort"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/mapping"
)

// Result is the outcome of one test file.
type Result struct {
	File   *config.TestFile
	Cases  int
	Failed []Failure
}

// Failure is one case that did not give what was expected.
type Failure struct {
	Where diag.Range
	Case  string // "to_target[0] a product"
	Diffs []string
}

// Run runs every test file of the project. The diagnostics are for tests that cannot run (an
// unknown flow).
func Run(p *mapping.Project) ([]*Result, diag.Diagnostics) {
	flows := map[string]*mapping.Flow{}
	var ids []string
	for _, d := range p.Dataflows {
		for _, f := range d.Flows {
			flows[f.ID()] = f
			ids = append(ids, f.ID())
		}
	}
	var ds diag.Diagnostics
	var results []*Result
	for _, tf := range p.Config.Tests {
		f := flows[tf.Flow.Value]
		if f == nil {
			ds.Errorf(tf.Flow.Range, "unknown flow %q%s", tf.Flow.Value, diag.DidYouMean(tf.Flow.Value, ids))
			continue
		}
		results = append(results, runFile(tf, f))
	}
	return results, ds
}

func runFile(tf *config.TestFile, f *mapping.Flow) *Result {
	res := &Result{File: tf}
	refs := testRefs(tf.Refs)
	for i, c := range tf.ToTarget {
		res.Cases++
		label := caseLabel("to_target", i, c)
		got, err := f.BuildTarget(c.Given, refs)
		if err != nil {
			res.Failed = append(res.Failed, Failure{Where: c.Node.Range, Case: label, Diffs: []string{err.Error()}})
			continue
		}
		if diffs := compare(got, c.Expect); len(diffs) > 0 {
			res.Failed = append(res.Failed, Failure{Where: c.Node.Range, Case: label, Diffs: diffs})
		}
	}
	for i, c := range tf.ToSource {
		res.Cases++
		label := caseLabel("to_source", i, c)
		got, err := f.BuildSource(c.Given, refs)
		if err != nil {
			res.Failed = append(res.Failed, Failure{Where: c.Node.Range, Case: label, Diffs: []string{err.Error()}})
			continue
		}
		diffs := compare(got, c.Expect)
		// The round trip: what came back to the source gives the target it came from, for
		// every property that syncs both ways.
		for _, p := range f.Properties {
			if !p.ToTargetSide() || !p.ToSourceSide() {
				continue
			}
			back, err := p.TargetValue(got, refs)
			if err != nil {
				diffs = append(diffs, fmt.Sprintf("round trip of %s: %v", p.Target, err))
				continue
			}
			if want := p.View(c.Given); string(mapping.Canonical(back)) != string(mapping.Canonical(want)) {
				diffs = append(diffs, fmt.Sprintf("round trip of %s: %s came back as %s", p.Target, mapping.Canonical(want), mapping.Canonical(back)))
			}
		}
		if len(diffs) > 0 {
			res.Failed = append(res.Failed, Failure{Where: c.Node.Range, Case: label, Diffs: diffs})
		}
	}
	return res
}

func caseLabel(dir string, i int, c *config.TestCase) string {
	label := fmt.Sprintf("%s[%d]", dir, i)
	if c.Name != "" {
		label += " " + c.Name
	}
	return label
}

// compare lists the properties where got and want differ, as "path: got X, want Y".
func compare(got, want map[string]any) []string {
	keys := map[string]bool{}
	for k := range got {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var diffs []string
	for _, k := range sorted {
		g, gok := got[k]
		w, wok := want[k]
		switch {
		case !gok:
			diffs = append(diffs, fmt.Sprintf("%s: missing, want %s", k, mapping.Canonical(w)))
		case !wok:
			diffs = append(diffs, fmt.Sprintf("%s: got %s, not expected", k, mapping.Canonical(g)))
		case string(mapping.Canonical(g)) != string(mapping.Canonical(w)):
			diffs = append(diffs, fmt.Sprintf("%s: got %s, want %s", k, mapping.Canonical(g), mapping.Canonical(w)))
		}
	}
	return diffs
}

// testRefs are the links a test file declares for the flows that ref properties name.
type testRefs map[string]map[string]string

func (t testRefs) TargetID(f *mapping.Flow, sourceID string) (string, bool, error) {
	id, ok := t[f.ID()][sourceID]
	return id, ok, nil
}

func (t testRefs) SourceID(f *mapping.Flow, targetID string) (string, bool, error) {
	for s, tg := range t[f.ID()] {
		if tg == targetID {
			return s, true, nil
		}
	}
	return "", false, nil
}

// Summary is "3 tests, 12 cases, 1 failed".
func Summary(results []*Result) string {
	cases, failed := 0, 0
	for _, r := range results {
		cases += r.Cases
		failed += len(r.Failed)
	}
	return fmt.Sprintf("%s, %s, %d failed", diag.Plural(len(results), "test"), diag.Plural(cases, "case"), failed)
}

// Format prints the results: one line per test, the failures under it.
func Format(results []*Result) string {
	var b strings.Builder
	for _, r := range results {
		status := "ok  "
		if len(r.Failed) > 0 {
			status = "FAIL"
		}
		fmt.Fprintf(&b, "%s %s: %s (%s)\n", status, r.File.File.Name, r.File.Name.Value, diag.Plural(r.Cases, "case"))
		for _, f := range r.Failed {
			fmt.Fprintf(&b, "  %s: %s\n", f.Where, f.Case)
			for _, d := range f.Diffs {
				fmt.Fprintf(&b, "    %s\n", d)
			}
		}
	}
	return b.String()
}
