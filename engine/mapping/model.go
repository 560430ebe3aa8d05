// Package mapping compiles loaded dataflows into what the engine executes and the documents
// describe: flows with resolved entities and policies, property plans with resolved paths and
// types, expressions compiled once against a typed environment, and references resolved to
// flows. Compiling is also the semantic half of validation: every problem found is a
// diagnostic at the exact text that causes it.
package mapping

import (
	"sync"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/schema"
	"github.com/expr-lang/expr/vm"
)

// Project is a compiled set of mapping files.
type Project struct {
	Config    *config.Project
	Systems   map[string]*System
	Dataflows []*Dataflow
}

// System is a system with its entities' schemas.
type System struct {
	Config   *config.System
	Entities map[string]*Entity
}

// Name is the display name used in documents.
func (s *System) Name() string { return s.Config.Name.Value }

// Entity is an entity with its schema. Schema is nil when it could not be loaded (that was
// reported); checks that need it are skipped.
type Entity struct {
	Config *config.Entity
	System *System
	Schema *schema.Entity
}

// Name is the entity's name.
func (e *Entity) Name() string { return e.Config.Name.Value }

// Dataflow is a compiled dataflow file.
type Dataflow struct {
	Config *config.Dataflow
	Source *System
	Target *System
	Flows  []*Flow
}

// ID returns the dataflow's id.
func (d *Dataflow) ID() string { return d.Config.ID.Value }

// ConflictPolicy is a flow's `conflict`: which side's value wins a property both sides changed.
// Validation admits only the values below; compile gives the default.
type ConflictPolicy string

const (
	ConflictNewest ConflictPolicy = "newest" // the record last modified; ties go to the source
	ConflictSource ConflictPolicy = "source"
	ConflictTarget ConflictPolicy = "target"
)

// DeletePolicy is a flow's `delete`: what a linked record's deletion does to its partner.
type DeletePolicy string

const (
	DeleteKeep      DeletePolicy = "keep"      // the partner stays and is synced again per `create`
	DeleteUnlink    DeletePolicy = "unlink"    // the partner stays, unlinked, and is left alone
	DeletePropagate DeletePolicy = "propagate" // the partner is deleted too (with a breaker)
)

// Flow is a compiled flow.
type Flow struct {
	Config       *config.Flow
	Dataflow     *Dataflow
	Source       *Entity
	Target       *Entity
	Direction    string // both, to-target or to-source
	CreateTarget string // always, never or referenced
	CreateSource string
	Conflict     ConflictPolicy
	Delete       DeletePolicy
	Merge        [][]Pair
	When         *vm.Program // nil when the flow takes every record
	Properties   []*Property
	// RefBy lists the flows whose properties refer to this one, in file order: the records
	// that may cause a "referenced" creation.
	RefBy []*Flow
	// vms holds expression machines for reuse by the flow's expressions (a machine is reusable
	// between programs; one per goroutine at a time). Nil outside Compile: each run makes one.
	vms *sync.Pool
	// form is the plan of BuildTargetForms, made on its first call.
	form lazyTargetForm
}

// ID returns the flow's id.
func (f *Flow) ID() string { return f.Config.ID.Value }

// Pair is a merge criterion.
type Pair struct {
	Source, Target string
}

// Property is one compiled row of a property table.
type Property struct {
	Config    *config.Property
	Source    string // dotted path in the source record ("" for a value computed from others)
	Target    string // dotted path in the target record
	Direction string // both, to-target or to-source
	// SourceType and TargetType are JSON types ("" when unknown); TargetType honours `type`.
	SourceType string
	TargetType string
	ToTarget   *vm.Program
	ToSource   *vm.Program
	Ref        *Flow       // ids are translated through this flow's links
	Elements   []*Property // element properties of a list
	// sourceThroughList and targetThroughList say that a path steps through a list, so that
	// its value is the list of the elements' values.
	sourceThroughList, targetThroughList bool
	// sourceArrays and targetArrays say, per path segment, whether it is a list, so that
	// setting a value in a new record creates lists where the schema has them.
	sourceArrays, targetArrays []bool
	// sourceSegs and targetSegs are the paths on each side (relative to the record or list
	// element), split at dots once; nil outside Compile, where they are split on use.
	sourceSegs, targetSegs []string
	vms                    *sync.Pool // the flow's
	key                    string     // Key, computed once: the merge asks for it per record
}

// ToTargetSide reports whether values flow from source to target.
func (p *Property) ToTargetSide() bool { return p.Direction != config.SyncToSource }

// ToSourceSide reports whether values flow from target to source.
func (p *Property) ToSourceSide() bool { return p.Direction != config.SyncToTarget }
