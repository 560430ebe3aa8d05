package connector

import (
	"context"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/schema"
)

// Discoverer is the optional ability of a Driver to list a database's tables with their
// columns and keys, for `dataflow discover` (which writes a system file and entity schemas
// from them) and `validate --live` (which compares schema files with them).
type Discoverer interface {
	// Discover describes the named tables (every table of the system's database or schema
	// when names is empty), in the order asked for, else by name. A name that is not a table
	// is an error naming it.
	Discover(ctx context.Context, sys *config.System, names []string) ([]Table, error)
}

// Table is a table as a database's catalogue describes it.
type Table struct {
	// Name is the table as a system file's `table` names it: schema-qualified only outside
	// the system's default schema.
	Name        string
	Columns     []Column
	PrimaryKey  []string // the primary key's columns, in key order; empty for none
	ForeignKeys []ForeignKey
}

// Column is one column, described as the connector's Describe describes it.
type Column struct {
	Name     string
	Declared string // the type as the catalogue writes it: numeric(10,2), NVARCHAR(40)
	Property *schema.Property
}

// ForeignKey is a foreign key of a table: its Columns reference RefColumns of table Ref.
type ForeignKey struct {
	Columns    []string
	Ref        string // named as Table.Name names tables
	RefColumns []string
}

// Locator is the optional ability of a Driver to name where a system's records are, without
// credentials (host:port/database, a file), for `dataflow status`. "" when the settings do
// not say (a variable unset).
type Locator interface {
	Server(sys *config.System) string
}
