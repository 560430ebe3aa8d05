// Package engine is dataflow's front door: it wires the pipeline stages (config → mapping →
// docs) together so that commands, tests and embedders call one small API instead of
// assembling the stages themselves.
package engine

import (
	"context"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	httpconn "github.com/dataflow-sync/dataflow/engine/connector/http"
	"github.com/dataflow-sync/dataflow/engine/connector/mysql"
	"github.com/dataflow-sync/dataflow/engine/connector/postgres"
	"github.com/dataflow-sync/dataflow/engine/connector/sqlite"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/mapping"
)

// Engine loads and compiles mappings. It holds the compiled format schema and the connector
// registry, so one Engine serves many loads.
type Engine struct {
	loader   *config.Loader
	compiler *mapping.Compiler
}

// Connectors returns the registry of the connectors dataflow ships. Its http driver holds the
// rate budgets (rate_limit) of the systems it connects to: every connection opened through one
// registry shares its system's budget, so a process keeps one registry for all its runs.
func Connectors() *connector.Registry {
	return connector.NewRegistry(sqlite.Driver{}, httpconn.NewDriver(), postgres.Driver{}, mysql.Driver{})
}

// New returns an engine that reads ${VAR}s through env.
func New(env config.Lookup) (*Engine, error) {
	l, err := config.NewLoader(env)
	if err != nil {
		return nil, err
	}
	return &Engine{loader: l, compiler: &mapping.Compiler{Connectors: Connectors()}}, nil
}

// Result is what Load returns: the compiled project (possibly partial), every problem found,
// and the text of the files, for printing diagnostics.
type Result struct {
	Project     *mapping.Project
	Diagnostics diag.Diagnostics
	Sources     diag.Sources
}

// Load reads, validates and compiles the mapping files under paths. The error is for paths
// that cannot be read; problems in the files are in Result.Diagnostics.
func (e *Engine) Load(ctx context.Context, paths []string) (*Result, error) {
	cfg, ds, err := e.loader.Load(paths)
	if err != nil {
		return nil, err
	}
	return e.compile(ctx, cfg, ds), nil
}

// LoadSources validates files given as text, by name: the editor and fuzzing entry point.
func (e *Engine) LoadSources(ctx context.Context, files map[string][]byte, order []string) *Result {
	cfg := &config.Project{}
	var ds diag.Diagnostics
	for _, name := range order {
		ds = append(ds, e.loader.AddFile(cfg, name, files[name])...)
	}
	cfg.SelectEnvironments(e.loader.Environments)
	ds = append(ds, cfg.CheckUnique()...)
	return e.compile(ctx, cfg, ds)
}

func (e *Engine) compile(ctx context.Context, cfg *config.Project, ds diag.Diagnostics) *Result {
	project, more := e.compiler.Compile(ctx, cfg)
	ds = append(ds, more...)
	if !ds.HasErrors() { // warnings about what a valid file does; an invalid one is fixed first
		ds = append(ds, safetyWarnings(project)...)
	}
	ds = dedupe(ds)
	ds.Sort()
	return &Result{Project: project, Diagnostics: ds, Sources: cfg.Sources()}
}

// dedupe drops a diagnostic repeated at the same place, which happens when an aliased YAML
// value is checked once for each alias.
func dedupe(ds diag.Diagnostics) diag.Diagnostics {
	seen := map[string]bool{}
	out := ds[:0]
	for _, d := range ds {
		k := d.Subject.String() + "\x00" + d.Summary
		if !seen[k] {
			seen[k] = true
			out = append(out, d)
		}
	}
	return out
}
