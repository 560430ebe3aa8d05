package mapping

import (
	"strings"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/schema"
)

// propScope compiles one property table: a flow's, or a list's element properties.
type propScope struct {
	flow                 *Flow
	ds                   *diag.Diagnostics
	envs                 *envCache
	srcEntity, tgtEntity *Entity
}

func (s *propScope) compile(props []*config.Property, srcRoot, tgtRoot *schema.Property, srcPrefix, tgtPrefix, inherited string) []*Property {
	var out []*Property
	writesTarget := map[string]config.Str{}
	writesSource := map[string]config.Str{}
	for _, cp := range props {
		p := s.compileOne(cp, srcRoot, tgtRoot, srcPrefix, tgtPrefix, inherited)
		if p == nil {
			continue
		}
		out = append(out, p)
		if p.ToTargetSide() && cp.Target.Value != "" {
			if first, dup := writesTarget[cp.Target.Value]; dup {
				s.ds.Errorf(cp.Target.Range, "target property %q is written twice; first at %s", cp.Target.Value, first.Range).
					WithDetail("Map each target property once; compute a combined value with to_target.")
			} else {
				writesTarget[cp.Target.Value] = cp.Target
			}
		}
		if p.ToSourceSide() && cp.Source.Value != "" {
			if first, dup := writesSource[cp.Source.Value]; dup {
				s.ds.Errorf(cp.Source.Range, "source property %q would be written back from two target properties; first at %s", cp.Source.Value, first.Range).
					WithDetail("Add `sync: to-target` to all but one of them.")
			} else {
				writesSource[cp.Source.Value] = cp.Source
			}
		}
	}
	return out
}

func (s *propScope) compileOne(cp *config.Property, srcRoot, tgtRoot *schema.Property, srcPrefix, tgtPrefix, inherited string) *Property {
	ds := s.ds
	p := &Property{
		Config: cp, Source: srcPrefix + cp.Source.Value, Target: tgtPrefix + cp.Target.Value,
		Direction: cp.Direction(inherited),
		vms:       s.flow.vms,
	}
	if cp.Source.Set {
		p.sourceSegs = strings.Split(cp.Source.Value, ".")
	}
	p.targetSegs = strings.Split(cp.Target.Value, ".")
	if !cp.Source.Set {
		p.Source = ""
	}
	p.key = p.Source + "→" + p.Target
	if cp.Sync.Set && inherited != config.SyncBoth && p.Direction != inherited {
		where := "the flow syncs"
		if srcPrefix != "" {
			where = "its list syncs"
		}
		ds.Errorf(cp.Sync.Range, "property syncs %s, but %s %s only", p.Direction, where, inherited).
			WithDetail("Remove `sync` here, or change the flow's.")
	}
	if !cp.Target.Set || cp.Target.Value == "" {
		return nil // a format error, reported with the file's schema check
	}
	if !cp.Source.Set && cp.ToTarget.Set && p.ToSourceSide() {
		ds.Errorf(cp.Target.Range, "a property without source must sync to-target").
			WithDetail("Its value is computed by to_target and cannot flow back; add `sync: to-target`.")
	}
	srcProp, srcPath := s.resolve(cp.Source, srcRoot, s.srcEntity, strings.TrimSuffix(srcPrefix, "."))
	tgtProp, tgtPath := s.resolve(cp.Target, tgtRoot, s.tgtEntity, strings.TrimSuffix(tgtPrefix, "."))
	p.sourceThroughList, p.targetThroughList = srcPath.Lists > 0, tgtPath.Lists > 0
	p.sourceArrays, p.targetArrays = srcPath.Arrays, tgtPath.Arrays
	if srcProp != nil {
		p.SourceType = srcProp.Type()
	}
	if tgtProp != nil {
		p.TargetType = tgtProp.Type()
	}
	if cp.Type.Value != "" {
		p.TargetType = cp.Type.Value
	}
	if cp.Ref.Set && (cp.ToTarget.Set || cp.ToSource.Set) {
		r := cp.ToTarget.Range
		if !cp.ToTarget.Set {
			r = cp.ToSource.Range
		}
		ds.Errorf(r, "a ref property cannot have an expression: its value is an id translated through the links of flow %q", cp.Ref.Value)
	}
	if cp.ToTarget.Set {
		if !p.ToTargetSide() {
			ds.Errorf(cp.ToTarget.Range, "to_target is never used: the property syncs to-source only")
		} else if srcRoot != nil {
			p.ToTarget = compileExpr(cp.ToTarget, s.envs.get(srcRoot), exprKind{
				key: "to_target", want: p.TargetType,
				over:  "the " + entityLabel(s.srcEntity) + " record (the source)",
				other: tgtRoot, otherLabel: entityLabel(s.tgtEntity),
			}, ds)
		}
		if p.Direction == config.SyncBoth && !cp.ToSource.Set && cp.Source.Set {
			ds.Errorf(cp.ToTarget.Range, "to_target needs a to_source: the property syncs both ways").
				WithDetail("Add `to_source: <expression over the %s record>` for the way back, or `sync: to-target`.", entityLabel(s.tgtEntity))
		}
	}
	if cp.ToSource.Set {
		if !p.ToSourceSide() {
			ds.Errorf(cp.ToSource.Range, "to_source is never used: the property syncs to-target only")
		} else if tgtRoot != nil {
			p.ToSource = compileExpr(cp.ToSource, s.envs.get(tgtRoot), exprKind{
				key: "to_source", want: p.SourceType,
				over:  "the " + entityLabel(s.tgtEntity) + " record (the target)",
				other: srcRoot, otherLabel: entityLabel(s.srcEntity),
			}, ds)
		}
	}
	s.checkShapes(cp, p, srcProp, tgtProp)
	if len(cp.Properties) > 0 {
		var srcItems, tgtItems *schema.Property
		if srcProp != nil {
			srcItems = s.listItems(cp.Source, srcProp)
		}
		if tgtProp != nil {
			tgtItems = s.listItems(cp.Target, tgtProp)
		}
		elements := &propScope{flow: s.flow, ds: ds, envs: s.envs, srcEntity: s.srcEntity, tgtEntity: s.tgtEntity}
		p.Elements = elements.compile(cp.Properties, srcItems, tgtItems, p.Source+".", p.Target+".", p.Direction)
	}
	return p
}

func entityLabel(e *Entity) string {
	if e == nil {
		return "target"
	}
	return e.System.Name() + " " + e.Name()
}

// resolve looks a property path up below root (the record, or the element of the list at
// base).
func (s *propScope) resolve(path config.Str, root *schema.Property, e *Entity, base string) (*schema.Property, schema.Resolved) {
	if root == nil || e == nil || !path.Set || !schema.WellFormed(path.Value) {
		return nil, schema.Resolved{}
	}
	r, perr := schema.Resolve(root, path.Value)
	if perr != nil {
		reportPath(s.ds, path, perr, e, base)
		return nil, schema.Resolved{}
	}
	return r.Prop, r
}

// listItems returns the element description of a list property that has element properties.
func (s *propScope) listItems(path config.Str, p *schema.Property) *schema.Property {
	if p.Items != nil && p.Has(schema.Array) {
		return p.Items
	}
	if len(p.Types) == 0 {
		return &schema.Property{Open: true}
	}
	s.ds.Errorf(path.Range, "%q is %s, not a list: only lists have element properties", path.Value, article(typeOrUnknown(p)))
	return nil
}

func typeOrUnknown(p *schema.Property) string {
	if t := p.Type(); t != "" {
		return t
	}
	return strings.Join(p.Types, " or ")
}

type shape int

const (
	unknownShape shape = iota
	scalarShape
	objectShape
	listShape
)

func shapeOf(p *schema.Property) shape {
	if p == nil {
		return unknownShape
	}
	switch p.Type() {
	case "":
		return unknownShape
	case schema.Array:
		return listShape
	case schema.Object:
		return objectShape
	}
	return scalarShape
}

var shapeNames = map[shape]string{scalarShape: "a single value", objectShape: "an object", listShape: "a list"}

// checkShapes reports a copy between a list or object and a single value: coercion by type
// cannot bridge those, an expression must.
func (s *propScope) checkShapes(cp *config.Property, p *Property, src, tgt *schema.Property) {
	a, b := shapeOf(src), shapeOf(tgt)
	if cp.Type.Value != "" && tgt != nil {
		b = shapeOf(&schema.Property{Types: []string{cp.Type.Value}})
	}
	if a == unknownShape || b == unknownShape || a == b || cp.Ref.Set {
		return
	}
	needTo := p.ToTargetSide() && !cp.ToTarget.Set
	needFrom := p.ToSourceSide() && !cp.ToSource.Set
	if !needTo && !needFrom {
		return
	}
	s.ds.Errorf(cp.Target.Range, "cannot copy %s (%s) to %s (%s)", shapeNames[a], cp.Source.Value, shapeNames[b], cp.Target.Value).
		WithDetail("Map the parts one by one, or convert with to_target/to_source.")
}
