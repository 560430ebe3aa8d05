package config

import "encoding/json"

// The decoders below read a Node into the model tolerantly: a key of the wrong shape, or an
// enum key with a value outside its set, is left unset, because the format schema has already
// reported it, and the rest of the file is still checked without a cascade of errors about the
// bad value.

var (
	syncValues     = []string{SyncBoth, SyncToTarget, SyncToSource}
	createValues   = []string{CreateAlways, CreateNever, CreateReferenced}
	conflictValues = []string{"newest", "source", "target"}
	deleteValues   = []string{"keep", "propagate", "unlink"}
	typeValues     = []string{"string", "number", "integer", "boolean", "object", "array"}
)

// enumOf is strOf for a key with a fixed set of values: anything else is left unset.
func enumOf(n *Node, values []string) Str {
	s := strOf(n)
	for _, v := range values {
		if s.Value == v {
			return s
		}
	}
	return Str{}
}

var systemKeys = map[string]bool{"system": true, "name": true, "description": true, "connector": true, "environment": true, "entities": true}

func decodeSystem(f *File, n *Node, env Lookup) *System {
	s := &System{
		File: f, Node: n,
		ID: strOf(n.Get("system")), Name: strOf(n.Get("name")),
		Description: strOf(n.Get("description")), Connector: strOf(n.Get("connector")),
		Environment: strOf(n.Get("environment")),
		Settings:    map[string]Setting{}, Nodes: map[string]*Node{}, Env: env,
	}
	for i, k := range n.Keys {
		if systemKeys[k.Value] {
			continue
		}
		s.Nodes[k.Value] = n.Vals[i]
		if n.Vals[i].Kind != Scalar {
			continue
		}
		v := strOf(n.Vals[i])
		expanded, missing, _ := Expand(v.Value, env)
		v.Value = expanded
		s.Settings[k.Value] = Setting{Str: v, Missing: missing}
	}
	if ents := n.Get("entities"); ents != nil && ents.Kind == Map {
		for i, k := range ents.Keys {
			s.Entities = append(s.Entities, decodeEntity(s, k, ents.Vals[i]))
		}
	}
	return s
}

var entityKeys = map[string]bool{"id": true, "updated": true, "lookback": true, "schema": true, "description": true}

func decodeEntity(s *System, key, n *Node) *Entity {
	e := &Entity{System: s, Name: strOf(key), Node: n, Settings: map[string]*Node{}}
	if n.Kind != Map {
		return e
	}
	e.ID, e.Updated = strOf(n.Get("id")), strOf(n.Get("updated"))
	e.Lookback = strOf(n.Get("lookback"))
	e.Schema, e.Description = strOf(n.Get("schema")), strOf(n.Get("description"))
	for i, k := range n.Keys {
		if !entityKeys[k.Value] {
			e.Settings[k.Value] = n.Vals[i]
		}
	}
	return e
}

func decodeDataflow(f *File, n *Node) *Dataflow {
	d := &Dataflow{
		File: f, Node: n,
		ID: strOf(n.Get("dataflow")), Source: strOf(n.Get("source")), Target: strOf(n.Get("target")),
		Introduction: strOf(n.Get("introduction")), Description: strOf(n.Get("description")),
		Reconcile: strOf(n.Get("reconcile")),
	}
	if flows := n.Get("flows"); flows != nil && flows.Kind == List {
		for _, fn := range flows.Items {
			if fn.Kind == Map {
				d.Flows = append(d.Flows, decodeFlow(d, fn))
			}
		}
	}
	return d
}

func decodeFlow(d *Dataflow, n *Node) *Flow {
	fl := &Flow{
		Dataflow: d, Node: n,
		ID: strOf(n.Get("id")), Source: strOf(n.Get("source")), Target: strOf(n.Get("target")),
		Sync: enumOf(n.Get("sync"), syncValues), Conflict: enumOf(n.Get("conflict"), conflictValues),
		Delete:      enumOf(n.Get("delete"), deleteValues),
		Description: strOf(n.Get("description")),
	}
	switch c := n.Get("create"); {
	case c == nil:
	case c.Kind == Scalar && fl.Sync.Value == SyncToSource:
		fl.Create.Source = enumOf(c, createValues) // a one-way flow into the source creates there
	case c.Kind == Scalar:
		fl.Create.Target = enumOf(c, createValues)
	case c.Kind == Map:
		fl.Create.Target, fl.Create.Source = enumOf(c.Get("target"), createValues), enumOf(c.Get("source"), createValues)
	}
	if m := n.Get("merge"); m != nil && m.Kind == List {
		for _, alt := range m.Items {
			if alt.Kind != List {
				continue
			}
			var pairs []Pair
			for _, p := range alt.Items {
				if p.Kind == Map {
					pairs = append(pairs, Pair{Source: strOf(p.Get("source")), Target: strOf(p.Get("target")), Node: p})
				}
			}
			fl.Merge = append(fl.Merge, pairs)
		}
	}
	if w := n.Get("when"); w != nil && w.Kind == Map {
		fl.When = &When{Expr: strOf(w.Get("expr")), Describe: strOf(w.Get("describe")), Node: w}
	}
	fl.Properties = decodeProperties(n.Get("properties"))
	return fl
}

func decodeProperties(n *Node) []*Property {
	if n == nil || n.Kind != List {
		return nil
	}
	var props []*Property
	for _, pn := range n.Items {
		if pn.Kind != Map {
			continue
		}
		props = append(props, &Property{
			Node:   pn,
			Source: strOf(pn.Get("source")), Target: strOf(pn.Get("target")), Type: enumOf(pn.Get("type"), typeValues),
			ToTarget: strOf(pn.Get("to_target")), ToSource: strOf(pn.Get("to_source")),
			Sync: enumOf(pn.Get("sync"), syncValues), Ref: strOf(pn.Get("ref")), Description: strOf(pn.Get("description")),
			Properties: decodeProperties(pn.Get("properties")),
		})
	}
	return props
}

func decodeTest(f *File, n *Node) *TestFile {
	t := &TestFile{File: f, Node: n, Name: strOf(n.Get("test")), Flow: strOf(n.Get("flow")), Refs: map[string]map[string]string{}}
	if refs := n.Get("refs"); refs != nil && refs.Kind == Map {
		for i, k := range refs.Keys {
			m := map[string]string{}
			if v := refs.Vals[i]; v.Kind == Map {
				for j, sk := range v.Keys {
					m[sk.Value] = v.Vals[j].Value
				}
			}
			t.Refs[k.Value] = m
		}
	}
	t.ToTarget = decodeCases(n.Get("to_target"))
	t.ToSource = decodeCases(n.Get("to_source"))
	return t
}

func decodeCases(n *Node) []*TestCase {
	if n == nil || n.Kind != List {
		return nil
	}
	var cases []*TestCase
	for _, c := range n.Items {
		if c.Kind != Map {
			continue
		}
		tc := &TestCase{Node: c, Name: strOf(c.Get("name")).Value}
		tc.Given, _ = plain(c.Get("given")).(map[string]any)
		tc.Expect, _ = plain(c.Get("expect")).(map[string]any)
		cases = append(cases, tc)
	}
	return cases
}

// plain converts a node to record values: integers as int64, other numbers as float64.
func plain(n *Node) any {
	if n == nil {
		return nil
	}
	return numbers(n.JSON())
}

func numbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
		return x
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	}
	return v
}
