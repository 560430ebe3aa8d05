// Package config reads dataflow's YAML files (system files and dataflow files) into a model that
// keeps the file, line and column of every key and value, so that every later stage can point
// its errors at the exact text. It checks the files against the format schema
// (schemas/dataflow.schema.json) and expands ${VAR} references; it does not look at entity
// schemas, expressions or connectors: that is the job of the mapping package.
package config

import "github.com/dataflow-sync/dataflow/engine/diag"

// Project is everything loaded from the mapping paths: systems, dataflows and mapping tests,
// in file order.
type Project struct {
	Files   []*File
	Systems []*System // the systems of the selected environments, one per id
	// Alternates are system files for environments not selected (the local stand-in of a
	// system when its real API is selected, and the other way round).
	Alternates []*System
	Dataflows  []*Dataflow
	Tests      []*TestFile
}

// TestFile is a mapping test file: records given to a flow and the records expected.
type TestFile struct {
	File     *File
	Name     Str
	Flow     Str
	Refs     map[string]map[string]string // flow id → source id → target id
	ToTarget []*TestCase
	ToSource []*TestCase
	Node     *Node
}

// TestCase is one given record and the record expected from it.
type TestCase struct {
	Name   string
	Given  map[string]any
	Expect map[string]any
	Node   *Node
}

// Sources returns the text of every loaded file, for diagnostics.
func (p *Project) Sources() diag.Sources {
	s := diag.Sources{}
	for _, f := range p.Files {
		s[f.Name] = f.Src
	}
	return s
}

// System finds a system by id.
func (p *Project) System(id string) *System {
	for _, s := range p.Systems {
		if s.ID.Value == id {
			return s
		}
	}
	return nil
}

// System is one system file: a business system, how to reach it and its entities.
type System struct {
	File        *File
	ID          Str
	Name        Str
	Description Str
	Connector   Str
	// Environment is the environment this file describes the system in (`local` for a
	// stand-in); empty for the file used when no selected environment has one.
	Environment Str
	// Settings holds the connector's own scalar top-level keys (sqlite: path), ${VAR}s
	// expanded.
	Settings map[string]Setting
	// Nodes holds every connector-specific top-level key as written (http: auth, headers),
	// for connectors whose settings nest; they expand ${VAR}s through Env when they open.
	Nodes    map[string]*Node
	Env      Lookup
	Entities []*Entity
	Node     *Node
}

// Setting is a connector setting after ${VAR} expansion. Missing lists variables that were
// unset: the setting cannot be used until they are.
type Setting struct {
	Str
	Missing []string
}

// Entity finds an entity by name.
func (s *System) Entity(name string) *Entity {
	for _, e := range s.Entities {
		if e.Name.Value == name {
			return e
		}
	}
	return nil
}

// EntityNames lists the entity names, for "did you mean".
func (s *System) EntityNames() []string {
	names := make([]string, len(s.Entities))
	for i, e := range s.Entities {
		names[i] = e.Name.Value
	}
	return names
}

// Entity is one kind of record in a system.
type Entity struct {
	System      *System
	Name        Str
	ID          Str // primary key property
	Updated     Str // last-modified property, optional
	Lookback    Str // a duration (10m): incremental reads start this long before the watermark
	Schema      Str // path of the entity's JSON Schema, relative to the system file
	Description Str
	// Settings holds connector-specific keys (sqlite: table, lists) as nodes; the connector
	// reads them.
	Settings map[string]*Node
	Node     *Node
}

// Dataflow is one dataflow file: two systems and the flows between their entities.
type Dataflow struct {
	File         *File
	ID           Str
	Source       Str // system id
	Target       Str // system id
	Introduction Str
	Description  Str
	// Reconcile is a duration (24h): a flow whose last reconcile (a read of every record,
	// whatever the watermarks) is older runs one.
	Reconcile Str
	Flows     []*Flow
	Node      *Node
}

// Directions of data.
const (
	SyncBoth     = "both"
	SyncToTarget = "to-target"
	SyncToSource = "to-source"
)

// Creation policies.
const (
	CreateAlways     = "always"
	CreateNever      = "never"
	CreateReferenced = "referenced"
)

// Flow syncs one entity of the source system with one entity of the target system.
type Flow struct {
	Dataflow    *Dataflow
	ID          Str
	Source      Str // entity of the source system
	Target      Str // entity of the target system
	Sync        Str // both (default) | to-target | to-source
	Create      Create
	Merge       [][]Pair
	When        *When
	Conflict    Str // newest (default) | source | target
	Delete      Str // keep (default) | propagate | unlink
	Description Str
	Properties  []*Property
	Node        *Node
}

// Direction returns the flow's sync value with its default applied.
func (f *Flow) Direction() string {
	if f.Sync.Value == "" {
		return SyncBoth
	}
	return f.Sync.Value
}

// Create holds the creation policy for each side. Target defaults to always; Source to never
// for two-way flows. A scalar `create` sets the side the flow writes to: the target, or the
// source for a to-source flow.
type Create struct {
	Target Str
	Source Str
}

// TargetPolicy returns the creation policy in the target, defaulted.
func (c Create) TargetPolicy() string {
	if c.Target.Value == "" {
		return CreateAlways
	}
	return c.Target.Value
}

// SourcePolicy returns the creation policy in the source, defaulted.
func (c Create) SourcePolicy() string {
	if c.Source.Value == "" {
		return CreateNever
	}
	return c.Source.Value
}

// Pair is one merge criterion: a source property that must equal a target property.
type Pair struct {
	Source Str
	Target Str
	Node   *Node
}

// When filters the source records a flow takes.
type When struct {
	Expr     Str
	Describe Str
	Node     *Node
}

// Property is one row of a flow's property table.
type Property struct {
	Source      Str
	Target      Str
	Type        Str
	ToTarget    Str
	ToSource    Str
	Sync        Str
	Ref         Str
	Description Str
	Properties  []*Property // element properties of a list
	Node        *Node
}

// Direction returns the property's sync value, defaulting to inherited: the flow's direction,
// or the list property's for an element property.
func (p *Property) Direction(inherited string) string {
	if p.Sync.Value == "" {
		return inherited
	}
	return p.Sync.Value
}
