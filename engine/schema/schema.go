// Package schema describes the records of one entity: which properties exist at which dotted
// path, and of which JSON type. It reads an entity's JSON Schema file (santhosh-tekuri/jsonschema)
// or builds the description from a table's declared column types (SQLite affinity rules). It
// does not validate records against the schema yet, and knows nothing of mappings.
package schema

import (
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// JSON types, as JSON Schema names them.
const (
	String  = "string"
	Integer = "integer"
	Number  = "number"
	Boolean = "boolean"
	Object  = "object"
	Array   = "array"
	Null    = "null"
)

// Property is the description of a value at some path of a record.
type Property struct {
	Types       []string // JSON types allowed, "null" included when the value may be null
	Format      string   // date-time, date, email...
	Description string
	Properties  map[string]*Property // object members
	Items       *Property            // array elements
	// Open is true for an object whose members are not listed: any path below it is accepted.
	Open bool
	// Enum lists the values a string may take (a database ENUM), nil for any; MaxLength is the
	// most characters it may have (VARCHAR(n)), 0 for any. Described from SQL catalogues.
	Enum      []string
	MaxLength int
}

// Type returns the property's one non-null JSON type, or "" when it has none or several
// (documents then say N/A).
func (p *Property) Type() string {
	t := ""
	for _, x := range p.Types {
		if x == Null {
			continue
		}
		if t != "" && !(t == Number && x == Integer || t == Integer && x == Number) {
			return ""
		}
		if t == "" || x == Number {
			t = x
		}
	}
	return t
}

// Has reports whether the property allows JSON type t.
func (p *Property) Has(t string) bool {
	for _, x := range p.Types {
		if x == t || t == Integer && x == Number {
			return true
		}
	}
	return false
}

// Nullable reports whether the value may be null.
func (p *Property) Nullable() bool {
	for _, x := range p.Types {
		if x == Null {
			return true
		}
	}
	return len(p.Types) == 0
}

// Names returns the member names, sorted.
func (p *Property) Names() []string {
	names := make([]string, 0, len(p.Properties))
	for n := range p.Properties {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Entity describes one entity's records. Entities that share a schema file share an Entity.
type Entity struct {
	Source string // where the description came from: a schema file, or "table products"
	Root   *Property
	// Compiled is the JSON Schema, when the entity has a schema file; records can be validated
	// against it.
	Compiled *jsonschema.Schema
}

// fromCompiled turns a compiled JSON Schema into a Property tree. seen maps schemas already
// converted, so recursive schemas ($ref to an ancestor) become a cycle of Properties instead of
// infinite recursion.
func fromCompiled(s *jsonschema.Schema, seen map[*jsonschema.Schema]*Property) *Property {
	if p, ok := seen[s]; ok {
		return p
	}
	p := &Property{}
	seen[s] = p
	merge(p, s, seen)
	if len(p.Types) == 0 && (len(p.Properties) > 0 || p.Items != nil) {
		if p.Items != nil {
			p.Types = []string{Array}
		} else {
			p.Types = []string{Object}
		}
	}
	if p.Has(Object) && len(p.Properties) == 0 {
		p.Open = true
	}
	return p
}

// merge folds s, and the schemas it refers to or combines, into p.
func merge(p *Property, s *jsonschema.Schema, seen map[*jsonschema.Schema]*Property) {
	if p.Description == "" {
		p.Description = s.Description
	}
	if p.Format == "" {
		p.Format = s.Format
	}
	for _, t := range s.Types {
		addType(p, t)
	}
	if s.Constant != nil || s.Enum != nil {
		for _, v := range append(s.Constant, s.Enum...) {
			addType(p, jsonTypeOf(v))
		}
	}
	for name, sub := range s.Properties {
		if p.Properties == nil {
			p.Properties = map[string]*Property{}
		}
		if existing, ok := p.Properties[name]; ok {
			merge(existing, sub, seen)
		} else {
			p.Properties[name] = fromCompiled(sub, seen)
		}
	}
	items := s.Items2020
	if items == nil {
		if it, ok := s.Items.(*jsonschema.Schema); ok {
			items = it
		}
	}
	if items != nil {
		p.Items = fromCompiled(items, seen)
	}
	for _, sub := range refsAndCombinations(s) {
		merge(p, sub, seen)
	}
}

func refsAndCombinations(s *jsonschema.Schema) []*jsonschema.Schema {
	var subs []*jsonschema.Schema
	if s.Ref != nil {
		subs = append(subs, s.Ref)
	}
	if s.DynamicRef != nil {
		subs = append(subs, s.DynamicRef)
	}
	subs = append(subs, s.AllOf...)
	subs = append(subs, s.AnyOf...)
	subs = append(subs, s.OneOf...)
	return subs
}

func addType(p *Property, t string) {
	for _, x := range p.Types {
		if x == t {
			return
		}
	}
	p.Types = append(p.Types, t)
}

func jsonTypeOf(v any) string {
	switch v.(type) {
	case nil:
		return Null
	case bool:
		return Boolean
	case string:
		return String
	case map[string]any:
		return Object
	case []any:
		return Array
	}
	return Number
}

// TypeOfDeclared maps a SQLite column's declared type to a JSON type by SQLite's affinity
// rules (https://www.sqlite.org/datatype3.html §3.1), with the refinements a CRM's columns need:
// BOOLEAN is a boolean and DATE, TIME, DATETIME and TIMESTAMP hold ISO-8601 text, although
// SQLite gives them NUMERIC affinity. The second result is the JSON Schema format, if any.
func TypeOfDeclared(declared string) (jsonType, format string) {
	t := strings.ToUpper(strings.TrimSpace(declared))
	base := t
	if i := strings.IndexByte(base, '('); i >= 0 {
		base = strings.TrimSpace(base[:i])
	}
	switch base {
	case "BOOLEAN", "BOOL":
		return Boolean, ""
	case "DATETIME", "TIMESTAMP":
		return String, "date-time"
	case "DATE":
		return String, "date"
	case "TIME":
		return String, "time"
	}
	switch {
	case strings.Contains(t, "INT"):
		return Integer, ""
	case strings.Contains(t, "CHAR"), strings.Contains(t, "CLOB"), strings.Contains(t, "TEXT"):
		return String, ""
	case t == "" || strings.Contains(t, "BLOB"):
		return "", "" // BLOB affinity: values are stored as given; the type is unknown
	case strings.Contains(t, "REAL"), strings.Contains(t, "FLOA"), strings.Contains(t, "DOUB"):
		return Number, ""
	}
	return Number, "" // NUMERIC affinity: NUMERIC(10,2), DECIMAL, MONEY...
}

// Column is one column of a table, as PRAGMA table_info reports it.
type Column struct {
	Name     string
	Declared string
	NotNull  bool
	PK       bool
}

// PropertyOfColumns describes a row of a table with the given columns.
func PropertyOfColumns(cols []Column) *Property {
	p := &Property{Types: []string{Object}, Properties: map[string]*Property{}}
	for _, c := range cols {
		t, format := TypeOfDeclared(c.Declared)
		col := &Property{Format: format, Description: "column " + c.Name + " " + c.Declared}
		if t != "" {
			col.Types = []string{t}
			if !c.NotNull && !c.PK {
				col.Types = append(col.Types, Null)
			}
		}
		p.Properties[c.Name] = col
	}
	return p
}
