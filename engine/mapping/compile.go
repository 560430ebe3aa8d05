package mapping

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/schema"
	"github.com/dataflow-sync/dataflow/internal/parallel"
	"github.com/expr-lang/expr/vm"
)

// Compiler compiles loaded projects. Connectors supplies the drivers that check entities and
// describe those without a schema file.
type Compiler struct {
	Connectors *connector.Registry
}

// Compile resolves and checks everything in p. It returns the compiled project even when there
// are errors, with the broken parts left out, so that every problem is reported in one run.
func (c *Compiler) Compile(ctx context.Context, p *config.Project) (*Project, diag.Diagnostics) {
	out := &Project{Config: p, Systems: map[string]*System{}}
	var ds diag.Diagnostics
	schemas := &schemaCache{files: map[string]schemaResult{}, settings: map[string]bool{}}
	for _, s := range p.Systems {
		if s.ID.Value == "" || out.Systems[s.ID.Value] != nil {
			continue
		}
		out.Systems[s.ID.Value] = c.compileSystem(ctx, s, schemas, &ds)
	}
	for _, s := range p.Alternates {
		c.compileSystem(ctx, s, schemas, &ds) // for its diagnostics: it is checked, not used
	}
	for _, d := range p.Dataflows {
		out.Dataflows = append(out.Dataflows, c.compileDataflow(out, d, &ds))
	}
	ds.Sort()
	return out, ds
}

// schemaCache holds the entity schemas read during one Compile, by file: entities often share
// a schema file, and reading one compiles it. settings records the connector settings already
// reported as unusable, so that a missing database is reported once, not once per entity.
type schemaCache struct {
	files    map[string]schemaResult
	settings map[string]bool
}

type schemaResult struct {
	entity *schema.Entity
	err    error
}

func (c *Compiler) compileSystem(ctx context.Context, s *config.System, schemas *schemaCache, ds *diag.Diagnostics) *System {
	sys := &System{Config: s, Entities: map[string]*Entity{}}
	driver, _ := c.Connectors.Driver(s.Connector.Value) // an unknown connector is a format error
	for _, e := range s.Entities {
		ent := &Entity{Config: e, System: sys}
		sys.Entities[e.Name.Value] = ent
		ent.Schema = loadEntitySchema(ctx, driver, e, schemas, ds)
		if ent.Schema == nil {
			continue
		}
		for _, key := range []config.Str{e.ID, e.Updated} {
			if !schema.WellFormed(key.Value) {
				continue
			}
			if _, perr := ent.Schema.Resolve(key.Value); perr != nil {
				reportPath(ds, key, perr, ent, "")
			}
		}
		if driver != nil {
			*ds = append(*ds, driver.CheckEntity(e, ent.Schema)...)
		}
	}
	return sys
}

// loadEntitySchema reads the entity's schema file, or asks the connector to describe the
// entity when it has none.
func loadEntitySchema(ctx context.Context, driver connector.Driver, e *config.Entity, schemas *schemaCache, ds *diag.Diagnostics) *schema.Entity {
	if e.Schema.Set {
		path := e.Schema.Value
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(e.System.File.Name), path)
		}
		if _, err := os.Stat(path); err != nil {
			ds.Errorf(e.Schema.Range, "schema file %s not found", path).
				WithDetail("The path is relative to %s.", e.System.File.Name)
			return nil
		}
		cached, ok := schemas.files[path]
		if !ok {
			cached.entity, cached.err = schema.LoadFile(path)
			schemas.files[path] = cached
		}
		if cached.err != nil {
			msg := oneLine(cached.err.Error())
			if !strings.HasPrefix(msg, path) {
				msg = path + ": " + msg
			}
			ds.Errorf(e.Schema.Range, "invalid schema file %s", msg)
			return nil
		}
		return cached.entity
	}
	describer, ok := driver.(connector.Describer)
	if !ok {
		if driver != nil {
			ds.Errorf(e.Name.Range, "entity %q has no schema", e.Name.Value).
				WithDetail("The %s connector cannot describe entities; add `schema: <file>.json`.", driver.Name())
		}
		return nil
	}
	s, err := describer.Describe(ctx, e)
	var se *connector.SettingError
	switch {
	case errors.As(err, &se):
		// One report per system, at the setting, however many entities need it.
		setting, ok := e.System.Settings[se.Key]
		key := e.System.File.Name + "\x00" + se.Key
		if schemas.settings[key] {
			return nil
		}
		schemas.settings[key] = true
		r := e.System.Node.Range
		if ok {
			r = setting.Range
		}
		ds.Errorf(r, "cannot describe the entities without a schema file: %s", oneLine(se.Error())).WithDetail("%s", se.Fix)
		return nil
	case err != nil:
		ds.Errorf(e.Name.Range, "cannot describe entity %q: %s", e.Name.Value, oneLine(err.Error())).
			WithDetail("Add `schema: <file>.json` to the entity, or fix the table settings.")
		return nil
	}
	return s
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

func (c *Compiler) compileDataflow(p *Project, d *config.Dataflow, ds *diag.Diagnostics) *Dataflow {
	df := &Dataflow{Config: d}
	df.Source = lookupSystem(p, d.Source, ds)
	df.Target = lookupSystem(p, d.Target, ds)
	if df.Source != nil && df.Source == df.Target {
		ds.Errorf(d.Target.Range, "source and target are the same system %q", d.Target.Value)
	}
	// Flows compile independently, so on all cores; their diagnostics are joined in file order.
	df.Flows = make([]*Flow, len(d.Flows))
	flowDiags := make([]diag.Diagnostics, len(d.Flows))
	envs := newEnvCache()
	parallel.For(len(d.Flows), func(i int) {
		df.Flows[i] = compileFlow(df, d.Flows[i], envs, &flowDiags[i])
	})
	byID := map[string]*Flow{}
	for i, fl := range df.Flows {
		*ds = append(*ds, flowDiags[i]...)
		if id := fl.ID(); id != "" && byID[id] == nil {
			byID[id] = fl
		}
	}
	// References are resolved once every flow is known: a flow may refer to a later one.
	for _, fl := range df.Flows {
		resolveRefs(fl, fl.Properties, byID, ds)
	}
	checkCycles(df, ds)
	return df
}

func lookupSystem(p *Project, id config.Str, ds *diag.Diagnostics) *System {
	if id.Value == "" {
		return nil
	}
	if s := p.Systems[id.Value]; s != nil {
		return s
	}
	ids := make([]string, 0, len(p.Systems))
	for k := range p.Systems {
		ids = append(ids, k)
	}
	d := ds.Errorf(id.Range, "unknown system %q%s", id.Value, diag.DidYouMean(id.Value, ids))
	if len(ids) == 0 {
		d.WithDetail("No system files were loaded; they live in mappings/systems/.")
	} else {
		d.WithDetail("Known systems: %s.", strings.Join(slices.Sorted(slices.Values(ids)), ", "))
	}
	return nil
}

func lookupEntity(s *System, name config.Str, side string, ds *diag.Diagnostics) *Entity {
	if s == nil || name.Value == "" {
		return nil
	}
	if e := s.Entities[name.Value]; e != nil {
		return e
	}
	names := s.Config.EntityNames()
	ds.Errorf(name.Range, "unknown %s entity %q%s", side, name.Value, diag.DidYouMean(name.Value, names)).
		WithDetail("%s (%s) has: %s.", s.Name(), s.Config.File.Name, strings.Join(names, ", "))
	return nil
}

func orDefault(s config.Str, def string) string {
	if s.Value == "" {
		return def
	}
	return s.Value
}

func compileFlow(df *Dataflow, f *config.Flow, envs *envCache, ds *diag.Diagnostics) *Flow {
	fl := &Flow{
		Config: f, Dataflow: df,
		Direction:    f.Direction(),
		CreateTarget: f.Create.TargetPolicy(),
		CreateSource: f.Create.SourcePolicy(),
		Conflict:     ConflictPolicy(orDefault(f.Conflict, string(ConflictNewest))),
		Delete:       DeletePolicy(orDefault(f.Delete, string(DeleteKeep))),
		vms:          &sync.Pool{New: func() any { return new(vm.VM) }},
	}
	fl.Source = lookupEntity(df.Source, f.Source, "source", ds)
	fl.Target = lookupEntity(df.Target, f.Target, "target", ds)
	// A one-way flow creates only on the side it writes to, by default always.
	switch fl.Direction {
	case config.SyncToTarget:
		if f.Create.Source.Set && fl.CreateSource != config.CreateNever {
			ds.Errorf(f.Create.Source.Range, "create.source has no effect: the flow syncs to-target only").
				WithDetail("Remove it, or make the flow sync both ways.")
		}
		fl.CreateSource = config.CreateNever
	case config.SyncToSource:
		if f.Create.Target.Set && fl.CreateTarget != config.CreateNever {
			ds.Errorf(f.Create.Target.Range, "create.target has no effect: the flow syncs to-source only").
				WithDetail("Write `create: %s` or `create: {source: %s}`: a to-source flow creates in the source.", fl.CreateTarget, fl.CreateTarget)
		}
		fl.CreateTarget = config.CreateNever
		fl.CreateSource = orDefault(f.Create.Source, config.CreateAlways)
	}
	srcSchema, tgtSchema := entitySchema(fl.Source), entitySchema(fl.Target)
	for _, alt := range f.Merge {
		var pairs []Pair
		for _, pr := range alt {
			checkPath(ds, pr.Source, srcSchema, fl.Source)
			checkPath(ds, pr.Target, tgtSchema, fl.Target)
			pairs = append(pairs, Pair{Source: pr.Source.Value, Target: pr.Target.Value})
		}
		fl.Merge = append(fl.Merge, pairs)
	}
	if f.When != nil && f.When.Expr.Set && srcSchema != nil {
		var other *schema.Property
		if tgt := entitySchema(fl.Target); tgt != nil {
			other = tgt.Root
		}
		fl.When = compileExpr(f.When.Expr, envs.get(srcSchema.Root), exprKind{
			key: "when", boolean: true,
			over:  "the " + entityLabel(fl.Source) + " record (the source)",
			other: other, otherLabel: entityLabel(fl.Target),
		}, ds)
	}
	var srcRoot, tgtRoot *schema.Property
	if srcSchema != nil {
		srcRoot = srcSchema.Root
	}
	if tgtSchema != nil {
		tgtRoot = tgtSchema.Root
	}
	scope := &propScope{flow: fl, ds: ds, envs: envs, srcEntity: fl.Source, tgtEntity: fl.Target}
	fl.Properties = scope.compile(f.Properties, srcRoot, tgtRoot, "", "", fl.Direction)
	return fl
}

func entitySchema(e *Entity) *schema.Entity {
	if e == nil {
		return nil
	}
	return e.Schema
}

// checkPath reports a path that the entity's schema lacks.
func checkPath(ds *diag.Diagnostics, path config.Str, s *schema.Entity, e *Entity) *schema.Property {
	if s == nil || !schema.WellFormed(path.Value) {
		return nil
	}
	r, perr := s.Resolve(path.Value)
	if perr != nil {
		reportPath(ds, path, perr, e, "")
		return nil
	}
	return r.Prop
}

// reportPath points at the failing segment of a dotted path. base is the path of the list
// whose elements the path is relative to ("lines" for an element property), or "".
func reportPath(ds *diag.Diagnostics, path config.Str, perr *schema.PathError, e *Entity, base string) {
	start := perr.Offset()
	r := rangeInExpr(path, start, start+len([]rune(perr.Name)))
	owner := e.System.Name() + " " + e.Name()
	parent := perr.Parent
	if base != "" {
		parent = strings.TrimPrefix(base+"."+parent, ".")
		parent = strings.TrimSuffix(parent, ".")
	}
	if parent != "" {
		owner = fmt.Sprintf("%q of %s", parent, owner)
	}
	if perr.Scalar {
		what := "not an object"
		if perr.ParentType != "" {
			what = article(perr.ParentType)
		}
		ds.Errorf(r, "%s has no property %q: it is %s", owner, perr.Name, what)
		return
	}
	ds.Errorf(r, "%s has no property %q%s", owner, perr.Name, diag.DidYouMean(perr.Name, perr.Known)).
		WithDetail("The properties come from %s.", e.Schema.Source)
}
