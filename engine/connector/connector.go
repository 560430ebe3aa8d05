// Package connector is the boundary between the engine and the systems it syncs. A Driver is
// one kind of system (sqlite, and later http); the Registry of drivers is a value the caller
// builds and passes in, never a package-level table. This package defines the contracts; the
// drivers live in subpackages.
package connector

import (
	"context"
	"sort"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/schema"
)

// Driver is one kind of system, named by the `connector` key of a system file.
type Driver interface {
	// Name is the value of `connector` that selects this driver.
	Name() string
	// CheckEntity reports problems with the connector-specific settings of an entity (for
	// sqlite: that each list is an array property of the entity's schema). s is nil when the
	// entity's schema could not be loaded.
	CheckEntity(e *config.Entity, s *schema.Entity) diag.Diagnostics
}

// Describer is an optional ability of a Driver: describing an entity that has no schema file
// from the system itself (sqlite reads the table's declared column types). Validation calls
// it only for such entities.
type Describer interface {
	Describe(ctx context.Context, e *config.Entity) (*schema.Entity, error)
}

// SettingError is a problem with one of a system's connector settings (the database in
// `path` does not exist) rather than with one entity: validation reports it once, at the
// setting.
type SettingError struct {
	Key string // the system file key, e.g. "path"
	Err error
	Fix string // how to fix it, a sentence
}

func (e *SettingError) Error() string { return e.Err.Error() }
func (e *SettingError) Unwrap() error { return e.Err }

// Registry holds the drivers a program knows, by name.
type Registry struct {
	drivers map[string]Driver
}

// NewRegistry returns a registry of the given drivers.
func NewRegistry(drivers ...Driver) *Registry {
	r := &Registry{drivers: map[string]Driver{}}
	for _, d := range drivers {
		r.drivers[d.Name()] = d
	}
	return r
}

// Driver returns the driver named name.
func (r *Registry) Driver(name string) (Driver, bool) {
	d, ok := r.drivers[name]
	return d, ok
}

// Names lists the drivers' names, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.drivers))
	for n := range r.drivers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
