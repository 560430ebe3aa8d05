// Package connector is the boundary between the engine and the systems it syncs. A Driver is
// one kind of system (sqlite, and later http); the Registry of drivers is a value the caller
// builds and passes in, never a package-level table. This package defines the contracts; the
// drivers live in subpackages.
package connector

import (
	"context"
	"errors"
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

// Record is one record as the engine sees it: its id as a string (ids of any type are
// compared as text) and its properties as JSON-like values: nil, bool, int64, float64,
// string, []any and map[string]any. Connectors keep numbers exact: a NUMERIC 0.99 is
// float64(0.99), whose shortest decimal form is "0.99"; an INTEGER is int64.
type Record struct {
	ID   string
	Data map[string]any
}

// Result is the outcome of writing one record. Err is set when this record failed (a
// constraint, a 4xx): the record goes to the dead letters and the batch goes on. Record is
// the record as the system stores it after the write (read back), when the write succeeded.
type Result struct {
	Record Record
	Err    error
}

// Conn is an open connection to one system. Methods are called from one goroutine at a time,
// except that a Conn with Capabilities.ConcurrentScan may be scanned on one goroutine while the
// other methods are called on another. Entity names are those of the system file.
type Conn interface {
	// Scan calls fn with batches of the entity's records, in the order of the entity's
	// updated property when it has one (else any order). When since is not empty and the
	// entity has an updated property, only records whose updated value is at or after since
	// are read. fn's error stops the scan and is returned.
	Scan(ctx context.Context, entity, since string, fn func([]Record) error) error
	// Get returns the records with the given ids that exist; missing ids are absent from the
	// map (a deleted record).
	Get(ctx context.Context, entity string, ids []string) (map[string]Record, error)
	// Create creates records and returns one Result per record, in order; Result.Record.ID is
	// the new record's id. The error is for the batch as a whole (the system is unreachable).
	// The maps of data are the Create's: it may return one, with the values the system set
	// added, as its Result's record, and the caller does not use them after the call.
	Create(ctx context.Context, entity string, data []map[string]any) ([]Result, error)
	// Update writes the given properties of existing records (a patch: properties absent from
	// Data are left as they are; nested objects are patched, lists replaced) and returns one
	// Result per record.
	//
	// A Create or Update that fails as a whole after writing some records (a 429 after 140
	// PATCHes) should return, with its error, one Result per record: a Result without Err and
	// with Record.ID set for each record written, a zero Result for each one left undone. The
	// engine then reports the writes made and links the records created.
	Update(ctx context.Context, entity string, recs []Record) ([]Result, error)
	// Delete deletes records by id and returns one error (or nil) per id.
	Delete(ctx context.Context, entity string, ids []string) ([]error, error)
	// Capabilities says what the connection can do beyond reading and writing records,
	// including its optional abilities. It is a method of every Conn, not an optional
	// interface, so that a wrapper that embeds a Conn forwards it.
	Capabilities() Capabilities
	// Close releases the connection.
	Close() error
}

// Capabilities say what a connection can do beyond reading and writing records. The engine
// reads them once per flow run from Conn.Capabilities, never by asking a Conn for other
// interfaces: a wrapper that embeds a Conn keeps every capability of the connection it wraps,
// and one that changes a capability does so in its own Capabilities method, where it shows.
//
// The optional abilities are values of their own interface, nil when the connection lacks
// them. They call the connection they came from: a wrapper that intercepts calls (a test's
// fault injection, a counter) and keeps an ability must set it to its own implementation, or
// the ability's calls go around it.
type Capabilities struct {
	// Delete: the system deletes records (delete: propagate needs it).
	Delete bool
	// ReturnsStored: Create and Update return the record as the system stores it after the
	// write. Without it the engine reads written records back with Get, which echo-free
	// merging needs.
	ReturnsStored bool
	// ConcurrentScan: Scan may run on its own goroutine while Get, Create, Update and Delete
	// are called on another, and the batches it hands out are never reused. The engine then
	// reads the next batch while it merges and writes this one.
	ConcurrentScan bool
	// SnapshotScan: a Scan reads one consistent state of the entity (a read transaction),
	// whatever is written meanwhile, so writes during the scan cannot make it skip records.
	// Without it the engine does not move a watermark past what it read before its own first
	// write to the side being scanned.
	SnapshotScan bool
	// LargeBatches: writing thousands of records in one call is quick (a local database), so
	// the engine may use large batches, which cost less per record.
	LargeBatches bool

	// KeyedCreator creates records with idempotency keys; nil: creates are not repeatable.
	KeyedCreator KeyedCreator
	// Finder finds records by property values; nil: the engine indexes the records itself.
	Finder Finder
	// Counter counts an entity's records cheaply; nil: the count-based delete check and the
	// new-state check's count are not available.
	Counter Counter
	// DeleteCounter counts deletions as they happen; nil: deletions are not counted.
	DeleteCounter DeleteCounter
	// ListIdentifier names the property that identifies list elements; nil: the engine
	// takes the elements' `id` from the schema, if any.
	ListIdentifier ListIdentifier
	// RequestCounter counts the requests sent to the system (a run's summary prints them);
	// nil: not counted.
	RequestCounter RequestCounter
	// OperationLister says which request each write operation of an entity sends (a dry run
	// lists them); nil: the connection cannot say.
	OperationLister OperationLister
}

// RequestCounter is the optional ability of a Conn (Capabilities.RequestCounter) to count the
// requests it sent to its system: each try of each request, logins included.
type RequestCounter interface {
	Requests() int64
}

// OperationLister is the optional ability of a Conn (Capabilities.OperationLister) to say which
// request each write operation of an entity sends: "create: POST /items", paths as the system
// file writes them, nothing secret.
type OperationLister interface {
	Operations(entity string) []string
}

// Opener is the ability of a Driver to open a connection for a run. entities holds the
// schema of each entity, by name, for the connector to shape values (JSON columns, types).
type Opener interface {
	Open(ctx context.Context, sys *config.System, entities map[string]*schema.Entity, opts OpenOptions) (Conn, error)
}

// OpenOptions tune a connection.
type OpenOptions struct {
	// ReadOnly opens for a dry run: nothing is created or changed, writes fail.
	ReadOnly bool
}

// KeyedCreator is the optional ability of a Conn (Capabilities.KeyedCreator) to create records with
// idempotency keys: a create repeated with a key the system has seen returns the record created the
// first time instead of creating another. The engine derives each key from the intent it records
// before the create, so that after a crash (or a lost response) it repeats the create with the same
// key and adopts the record the system already holds.
type KeyedCreator interface {
	// Idempotent reports whether creates of entity honour keys. Create is used for the
	// entities where it does not.
	Idempotent(entity string) bool
	// CreateKeyed is Create with one key per record.
	CreateKeyed(ctx context.Context, entity string, data []map[string]any, keys []string) ([]Result, error)
}

// Finder is the optional ability of a Conn (Capabilities.Finder) to find records by the values of
// some of their properties, so that linking a batch of records by merge criteria looks up that
// batch's values instead of holding every unlinked record of the other side in memory.
type Finder interface {
	// Find returns the entity's records whose values at paths equal one of keys. Each key holds
	// one value per path in the engine's text form of values: text as it is, numbers in their
	// shortest exact form (18.0 is "18"), booleans as "true" and "false". Find may return more
	// records than match (the engine compares the values again), never fewer. An error that
	// wraps ErrCannotFind says that the connection cannot search by these paths; the engine
	// then indexes the records itself.
	Find(ctx context.Context, entity string, paths []string, keys [][]string) ([]Record, error)
}

// ErrCannotFind is wrapped by the error of Finder.Find for paths the connection cannot search.
var ErrCannotFind = errors.New("cannot find records by these properties")

// Counter is the optional ability of a Conn (Capabilities.Counter) to count an entity's records
// cheaply (SQL's COUNT(*), an API's total). The engine compares counts between runs to skip reading
// the partners of every link when no linked record can have been deleted.
type Counter interface {
	// Count returns the number of the entity's records.
	Count(ctx context.Context, entity string) (int, error)
}

// DeleteCounter is the optional ability of a Conn (Capabilities.DeleteCounter) to count the
// deletions of an entity's records as they happen, whoever deletes them (sqlite: a trigger, with
// `track_deletes`). A run whose number equals the one stored by the last run knows that no record
// of the entity was deleted since, without counting the records, whose cost grows with them.
type DeleteCounter interface {
	// Deletions returns a number that grows with every deletion of one of the entity's
	// records and never goes back, also when counting stops and starts again; ok is false
	// when deletions of the entity are not counted.
	Deletions(ctx context.Context, entity string) (n int64, ok bool, err error)
}

// ListIdentifier is the optional ability of a Conn (Capabilities.ListIdentifier) to say which
// property identifies the elements of a list property (sqlite: the `id` column of a list's child
// table), so that a list edited on both sides is merged element by element: an element added,
// changed or removed on one side is the same element on the other.
type ListIdentifier interface {
	// ListID returns the element property that identifies the elements of the entity's list
	// property at path, "" when they have none.
	ListID(entity, path string) string
}
