package mapping

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/expr-lang/expr/vm"
)

// Refs translates record ids through the links of a referenced flow.
type Refs interface {
	// TargetID returns the id of the target record linked to the source record id of flow f.
	TargetID(f *Flow, sourceID string) (string, bool, error)
	// SourceID returns the id of the source record linked to the target record id of flow f.
	SourceID(f *Flow, targetID string) (string, bool, error)
}

// WaitingError says that a value refers to a record that is not linked yet: the record waits
// and is tried again on the next run.
type WaitingError struct {
	Flow string // the referenced flow
	ID   string // the referenced record's id
}

func (e *WaitingError) Error() string {
	return fmt.Sprintf("refers to %s, which flow %s has not linked yet", e.ID, e.Flow)
}

// IsWaiting reports whether err is a WaitingError.
func IsWaiting(err error) bool {
	var w *WaitingError
	return errors.As(err, &w)
}

// PropertyError says which property of a record failed and why.
type PropertyError struct {
	Property string // "source → target"
	Err      error
}

func (e *PropertyError) Error() string { return e.Property + ": " + e.Err.Error() }
func (e *PropertyError) Unwrap() error { return e.Err }

// Key identifies a property in link state: stable across edits of other rows.
func (p *Property) Key() string {
	if p.key == "" { // a Property built outside Compile
		return p.Source + "→" + p.Target
	}
	return p.key
}

func (p *Property) relSource() string { return p.Config.Source.Value }
func (p *Property) relTarget() string { return p.Config.Target.Value }

// path is the property's path on one side, relative to the record or list element.
func (p *Property) path(onTarget bool) string {
	if onTarget {
		return p.relTarget()
	}
	return p.relSource()
}

// segs is the property's path on one side split at dots: split once by Compile.
func (p *Property) segs(onTarget bool) []string {
	if onTarget {
		if p.targetSegs != nil {
			return p.targetSegs
		}
	} else if p.sourceSegs != nil {
		return p.sourceSegs
	}
	return strings.Split(p.path(onTarget), ".")
}

// at returns the value at the property's path on one side of rec (see Get).
func (p *Property) at(rec map[string]any, onTarget bool) any {
	segs := p.segs(onTarget)
	if len(segs) == 1 {
		return rec[segs[0]]
	}
	return get(rec, segs)
}

// flowsTo reports whether values of the property flow to one side.
func (p *Property) flowsTo(onTarget bool) bool {
	if onTarget {
		return p.ToTargetSide()
	}
	return p.ToSourceSide()
}

// valueAt reads the property's value on one side of a record. When the path steps through a
// list and the receiving path does not, the list of values is reduced to its first element:
// one value for one place.
func (p *Property) valueAt(rec map[string]any, onTarget bool) any {
	v := p.at(rec, onTarget)
	throughList, intoList := p.sourceThroughList, p.targetThroughList
	if onTarget {
		throughList, intoList = intoList, throughList
	}
	if throughList && !intoList {
		return firstValue(v)
	}
	return v
}

func (p *Property) fail(err error) error {
	if IsWaiting(err) {
		return err
	}
	return &PropertyError{Property: p.Key(), Err: err}
}

// TargetValue computes the property's value for the target, in target form, from a source
// record (or list element): the to_target expression, else the value coerced to the target
// type, ids translated through the referenced flow's links, lists element by element.
func (p *Property) TargetValue(src map[string]any, refs Refs) (any, error) {
	if len(p.Elements) > 0 {
		return p.mapList(p.at(src, false), p.Elements, refs, true)
	}
	var v any
	var err error
	switch {
	case p.ToTarget != nil:
		v, err = run(p.vms, p.ToTarget, src)
	case p.Ref != nil:
		v, err = translate(p.valueAt(src, false), func(id string) (string, bool, error) { return refs.TargetID(p.Ref, id) }, p.Ref)
	default:
		v = p.valueAt(src, false)
	}
	if err != nil {
		return nil, p.fail(err)
	}
	v, err = Coerce(v, p.TargetType)
	if err != nil {
		return nil, p.fail(err)
	}
	return v, nil
}

// SourceValue computes the property's value for the source from a target record (or list
// element): to_source, else the value coerced to the source type, ids translated back.
func (p *Property) SourceValue(tgt map[string]any, refs Refs) (any, error) {
	if len(p.Elements) > 0 {
		return p.mapList(p.at(tgt, true), p.Elements, refs, false)
	}
	var v any
	var err error
	switch {
	case p.ToSource != nil:
		v, err = run(p.vms, p.ToSource, tgt)
	case p.Ref != nil:
		v, err = translate(p.valueAt(tgt, true), func(id string) (string, bool, error) { return refs.SourceID(p.Ref, id) }, p.Ref)
	default:
		v = p.valueAt(tgt, true)
	}
	if err != nil {
		return nil, p.fail(err)
	}
	v, err = Coerce(v, p.SourceType)
	if err != nil {
		return nil, p.fail(err)
	}
	return v, nil
}

func firstValue(v any) any {
	for {
		l, ok := v.([]any)
		if !ok {
			return v
		}
		if len(l) == 0 {
			return nil
		}
		v = l[0]
	}
}

// View is the property's current value in the target record, as TargetValue would produce it
// (lists reduced to their mapped element properties), for comparing with the base.
func (p *Property) View(tgt map[string]any) any { return p.view(tgt, true) }

// SourceView is the property's current value in the source record, lists reduced to their
// mapped element properties.
func (p *Property) SourceView(src map[string]any) any { return p.view(src, false) }

func (p *Property) view(rec map[string]any, onTarget bool) any {
	if len(p.Elements) == 0 {
		return normalize(p.valueAt(rec, onTarget))
	}
	items, _ := p.at(rec, onTarget).([]any)
	out := make([]any, 0, len(items))
	for _, it := range items {
		elem, _ := it.(map[string]any)
		view := make(map[string]any, len(p.Elements))
		for _, ep := range p.Elements {
			if ep.flowsTo(onTarget) {
				set(view, ep.segs(onTarget), ep.view(elem, onTarget), nil)
			}
		}
		out = append(out, view)
	}
	return out
}

// mapList maps a list element by element through the element properties that flow in the
// direction asked.
func (p *Property) mapList(v any, elems []*Property, refs Refs, toTarget bool) (any, error) {
	if v == nil {
		return []any{}, nil
	}
	items, ok := v.([]any)
	if !ok {
		return nil, p.fail(fmt.Errorf("%s is not a list", Canonical(v)))
	}
	out := make([]any, 0, len(items))
	for i, it := range items {
		elem, _ := it.(map[string]any)
		if elem == nil {
			elem = map[string]any{}
		}
		mapped := make(map[string]any, len(elems))
		for _, ep := range elems {
			if !ep.flowsTo(toTarget) {
				continue
			}
			val, err := ep.SourceValue(elem, refs)
			if toTarget {
				val, err = ep.TargetValue(elem, refs)
			}
			if err == nil {
				set(mapped, ep.segs(toTarget), val, nil)
			}
			if err != nil {
				if IsWaiting(err) {
					return nil, err
				}
				return nil, fmt.Errorf("%s[%d]: %w", p.Key(), i, err)
			}
		}
		out = append(out, mapped)
	}
	return out, nil
}

// ApplyTarget writes a target-form value into a target record being built: at the property's
// path, or for a list element by element, keeping the fields of existing elements that the
// mapping does not set.
func (p *Property) ApplyTarget(rec map[string]any, v any) { p.apply(rec, v, true) }

// ApplySource writes a source-form value into a source record being built.
func (p *Property) ApplySource(rec map[string]any, v any) { p.apply(rec, v, false) }

// arrays says which segments of the property's path on one side are lists.
func (p *Property) arrays(onTarget bool) []bool {
	if onTarget {
		return p.targetArrays
	}
	return p.sourceArrays
}

// apply writes a value at the property's path on one side of a record being built; a list
// element by element, keeping the fields of existing elements that the mapping does not set.
func (p *Property) apply(rec map[string]any, v any, onTarget bool) {
	segs := p.segs(onTarget)
	if len(p.Elements) == 0 {
		if len(segs) == 1 {
			rec[segs[0]] = v
			return
		}
		set(rec, segs, v, p.arrays(onTarget))
		return
	}
	vals, _ := v.([]any)
	current, _ := get(rec, segs).([]any)
	out := make([]any, len(vals))
	for i, val := range vals {
		elem := map[string]any{}
		if i < len(current) {
			if m, ok := Clone(current[i]).(map[string]any); ok {
				elem = m
			}
		}
		mapped, _ := val.(map[string]any)
		for _, ep := range p.Elements {
			if ep.flowsTo(onTarget) {
				epSegs := ep.segs(onTarget)
				set(elem, epSegs, get(mapped, epSegs), ep.arrays(onTarget))
			}
		}
		out[i] = elem
	}
	set(rec, segs, out, nil)
}

// translate maps an id, or each id of a list, through links.
func translate(v any, lookup func(string) (string, bool, error), ref *Flow) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			t, err := translate(e, lookup, ref)
			if err != nil {
				return nil, err
			}
			out[i] = t
		}
		return out, nil
	}
	id := IDString(v)
	other, ok, err := lookup(id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &WaitingError{Flow: ref.ID(), ID: id}
	}
	return other, nil
}

// IDString is the text form of an id value: ids of any type are compared as text.
func IDString(v any) string {
	switch x := normalize(v).(type) {
	case string:
		return x
	case nil:
		return ""
	}
	return strings.Trim(string(Canonical(v)), `"`)
}

// BuildTarget builds the target record a source record gives: every property that flows to
// the target, set at its path.
func (f *Flow) BuildTarget(src map[string]any, refs Refs) (map[string]any, error) {
	return f.BuildTargetFunc(src, refs, nil)
}

// BuildTargetFunc is BuildTarget that also gives each property's value in target form to
// seen (when not nil), before it is set in the record.
func (f *Flow) BuildTargetFunc(src map[string]any, refs Refs, seen func(p *Property, v any)) (map[string]any, error) {
	data := make(map[string]any, len(f.Properties))
	for _, p := range f.Properties {
		if !p.ToTargetSide() {
			continue
		}
		v, err := p.TargetValue(src, refs)
		if err != nil {
			return nil, err
		}
		if seen != nil {
			seen(p, v)
		}
		p.ApplyTarget(data, v)
	}
	return data, nil
}

// BuildSource builds the source record a target record gives: every property that flows to
// the source.
func (f *Flow) BuildSource(tgt map[string]any, refs Refs) (map[string]any, error) {
	data := make(map[string]any, len(f.Properties))
	for _, p := range f.Properties {
		if !p.ToSourceSide() {
			continue
		}
		v, err := p.SourceValue(tgt, refs)
		if err != nil {
			return nil, err
		}
		p.ApplySource(data, v)
	}
	return data, nil
}

// Filter reports whether a source record passes the flow's `when`.
func (f *Flow) Filter(src map[string]any) (bool, error) {
	if f.When == nil {
		return true, nil
	}
	v, err := run(f.vms, f.When, src)
	if err != nil {
		return false, fmt.Errorf("when: %w", err)
	}
	b, _ := v.(bool)
	return b, nil
}

// run evaluates a compiled expression over a record, on a machine of vms when there is a pool.
// A record lacking a property leaves its variable nil.
func run(vms *sync.Pool, prog *vm.Program, rec map[string]any) (any, error) {
	var m *vm.VM
	if vms != nil {
		m = vms.Get().(*vm.VM)
		defer vms.Put(m)
	} else {
		m = new(vm.VM)
	}
	// The evaluation's budget (budget.go) bounds what it builds; expr-lang's own count of
	// elements is left far above it, so that one budget, with one message, applies.
	m.MemoryBudget = vmMemoryBudget
	v, err := m.Run(prog, rec)
	if err != nil {
		var be *BudgetError
		if errors.As(err, &be) {
			return nil, be
		}
		var ee *EvalError
		if errors.As(err, &ee) {
			return nil, ee
		}
		return nil, errors.New(readableExprMessage(strings.SplitN(err.Error(), "\n", 2)[0]))
	}
	if err := checkResult(v); err != nil {
		return nil, err
	}
	return normalize(v), nil
}

// vmMemoryBudget is expr-lang's count of elements, a guard behind the evaluation's budget.
const vmMemoryBudget = 8 * MaxEvalBytes / elementBytes
