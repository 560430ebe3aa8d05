package main

// dataflow's side of the benchmark: the project loaded by engine.Load from the YAML under
// testdata, connections opened as `dataflow run` opens them, the link state by state.Open, and
// a sync.Runner with default options.

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/dataflow-sync/dataflow/engine"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/schema"
	"github.com/dataflow-sync/dataflow/engine/state"
	dsync "github.com/dataflow-sync/dataflow/engine/sync"
	"github.com/dataflow-sync/dataflow/internal/gctune"
)

// loadProject loads a dataflow file with the systems of the benchmark; watermark false uses
// the source system without last-modified properties, shopSystem is the target's system file.
func loadProject(ctx context.Context, td, dataflowFile string, watermark bool, erpDB, shopDB, shopSystem string) (*mapping.Project, error) {
	env := map[string]string{"BENCH_ERP_DB": erpDB, "BENCH_SHOP_DB": shopDB}
	eng, err := engine.New(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		return nil, err
	}
	erp := filepath.Join(td, "systems", "erp.yaml")
	if !watermark {
		erp = filepath.Join(td, "no-watermark", "erp.yaml")
	}
	res, err := eng.Load(ctx, []string{erp, shopSystem, dataflowFile})
	if err != nil {
		return nil, err
	}
	if res.Diagnostics.HasErrors() {
		return nil, fmt.Errorf("the benchmark's mappings do not load: %v", res.Diagnostics)
	}
	return res.Project, nil
}

// openConns opens the systems of the project's first dataflow (only those in which, when not
// nil), as `dataflow run` does.
func openConns(ctx context.Context, proj *mapping.Project, readOnly bool, which map[string]bool) (map[string]connector.Conn, error) {
	df := proj.Dataflows[0]
	registry := engine.Connectors()
	conns := map[string]connector.Conn{}
	for _, sys := range []*mapping.System{df.Source, df.Target} {
		id := sys.Config.ID.Value
		if which != nil && !which[id] {
			continue
		}
		driver, _ := registry.Driver(sys.Config.Connector.Value)
		entities := map[string]*schema.Entity{}
		for name, ent := range sys.Entities {
			entities[name] = ent.Schema
		}
		c, err := driver.(connector.Opener).Open(ctx, sys.Config, entities, connector.OpenOptions{ReadOnly: readOnly})
		if err != nil {
			closeConns(conns)
			return nil, fmt.Errorf("%s: %w", sys.Name(), err)
		}
		conns[id] = c
	}
	return conns, nil
}

func closeConns(conns map[string]connector.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// dataflowRun is one `dataflow run` over the run directory: load, open, run, close, with the
// garbage collector set as `dataflow run` sets it.
func dataflowRun(ctx context.Context, td, dataflowFile string, watermark bool, dir string) (*dsync.Report, error) {
	return dataflowRunInto(ctx, td, dataflowFile, watermark, dir, filepath.Join(td, "systems", "shop.yaml"))
}

// dataflowRunInto is dataflowRun into the target of another system file (int-ids/shop.yaml).
func dataflowRunInto(ctx context.Context, td, dataflowFile string, watermark bool, dir, shopSystem string) (*dsync.Report, error) {
	gctune.ForRun()
	proj, err := loadProject(ctx, td, dataflowFile, watermark, filepath.Join(dir, "erp.db"), filepath.Join(dir, "shop.db"), shopSystem)
	if err != nil {
		return nil, err
	}
	conns, err := openConns(ctx, proj, false, nil)
	if err != nil {
		return nil, err
	}
	defer closeConns(conns)
	st, err := state.Open(ctx, filepath.Join(dir, "state.db"), state.ReadWrite)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	// The run directories of c to f are copies of a baseline made elsewhere: the link state
	// names the baseline's files, and a copy is what --allow-new-systems accepts.
	runner := &dsync.Runner{Project: proj, Conns: conns, State: st, Opts: dsync.Options{AllowNewSystems: true}}
	return runner.Run(ctx)
}

// totals adds up a report's flows.
func totals(rep *dsync.Report) dsync.FlowStats {
	var t dsync.FlowStats
	for _, f := range rep.Flows {
		t.ReadSource += f.ReadSource
		t.ReadTarget += f.ReadTarget
		t.CreatedTarget += f.CreatedTarget
		t.CreatedSource += f.CreatedSource
		t.Merged += f.Merged
		t.UpdatedTarget += f.UpdatedTarget
		t.UpdatedSource += f.UpdatedSource
		t.Conflicts += f.Conflicts
		t.Unchanged += f.Unchanged
		t.Waiting += f.Waiting
		t.Failed += f.Failed
		t.Deleted += f.Deleted
	}
	return t
}
