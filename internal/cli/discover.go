package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/dataflow-sync/dataflow/engine"
	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/schema"
)

// discoverSettings are the settings a discovered system file copies from the system file
// discover was given, in this order.
var discoverSettings = []string{"path", "init", "dsn", "schema", "track_deletes", "create_tables"}

func runDiscover(e *env, args []string) int {
	fs := e.flags("discover")
	sysID := fs.String("system", "", "the system's `id` (kebab-case), when no system file is given")
	kind := fs.String("connector", "", "the `connector`: sqlite, postgres or mysql, when no system file is given")
	path := fs.String("path", "", "sqlite: the database `file`")
	dsn := fs.String("dsn", "", "postgres, mysql: how to reach the database (a password in it is not written: the system file reads the DSN from a variable)")
	pgSchema := fs.String("schema", "", "postgres: the `schema` whose tables are read (default: the search path's first)")
	tableList := fs.String("tables", "", "the `tables` to describe, comma-separated (default: every table)")
	out := fs.String("o", ".", "the project `directory`: the system file goes to DIR/mappings/systems/, the schemas to DIR/schemas/SYSTEM/")
	force := fs.Bool("force", false, "overwrite files that exist")
	rest, code := e.parse(fs, args)
	if code >= 0 {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(e.stderr, "dataflow discover: "+format+"\n", a...)
		return exitUsage
	}
	var sys *config.System
	var settings []yamlSetting
	fileName := ""
	switch {
	case len(rest) > 1:
		return fail("give one system file, not %d", len(rest))
	case len(rest) == 1:
		if *sysID != "" || *kind != "" || *path != "" || *dsn != "" || *pgSchema != "" {
			return fail("give either a system file or --system, --connector and --path or --dsn, not both")
		}
		var ok bool
		if sys, ok = e.loadSystemFile(rest[0]); !ok {
			return exitUsage
		}
		for _, k := range discoverSettings {
			if n := sys.Nodes[k]; n != nil && n.Kind == config.Scalar {
				settings = append(settings, yamlSetting{k, n.Value})
			}
		}
		fileName = filepath.Base(rest[0])
	default:
		if *sysID == "" || *kind == "" {
			return fail("name the system: a system file, or --system ID and --connector sqlite, postgres or mysql")
		}
		if !systemID.MatchString(*sysID) {
			return fail("--system %q is not a system id: lower-case words joined by hyphens, e.g. custom-crm", *sysID)
		}
		sys = &config.System{ID: config.Str{Value: *sysID, Set: true}, Name: config.Str{Value: *sysID, Set: true},
			Connector: config.Str{Value: *kind, Set: true}, Settings: map[string]config.Setting{}, Env: e.lookup}
		set := func(k, v string) {
			sys.Settings[k] = config.Setting{Str: config.Str{Value: v, Set: true}}
		}
		switch *kind {
		case "sqlite":
			if *path == "" || *dsn != "" || *pgSchema != "" {
				return fail("--connector sqlite takes --path FILE (and no --dsn or --schema)")
			}
			set("path", *path)
			settings = append(settings, yamlSetting{"path", strings.ReplaceAll(*path, "$", "$$")})
		case "postgres", "mysql":
			if *dsn == "" || *path != "" || *pgSchema != "" && *kind == "mysql" {
				return fail("--connector %s takes --dsn DSN%s (and no --path)", *kind, map[bool]string{true: " and optionally --schema NAME"}[*kind == "postgres"])
			}
			set("dsn", *dsn)
			written := strings.ReplaceAll(*dsn, "$", "$$")
			if hasPassword(*kind, *dsn) {
				written = "${" + envName(*sysID) + "_DSN}"
				fmt.Fprintf(e.stderr, "dataflow discover: the dsn holds a password, which is not written: the system file reads the dsn from %s; set it before a run\n", written)
			}
			settings = append(settings, yamlSetting{"dsn", written})
			if *pgSchema != "" {
				set("schema", *pgSchema)
				settings = append(settings, yamlSetting{"schema", *pgSchema})
			}
		default:
			e.checkChoice("discover", "connector", *kind, []string{"sqlite", "postgres", "mysql"})
			return exitUsage
		}
		fileName = *sysID + ".yaml"
	}
	driver, ok := engine.Connectors().Driver(sys.Connector.Value)
	discoverer, can := driver.(connector.Discoverer)
	if !ok || !can {
		return fail("the %s connector cannot list tables; discover reads sqlite, postgres and mysql databases", sys.Connector.Value)
	}
	var names []string
	if *tableList != "" {
		for _, n := range strings.Split(*tableList, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
	}
	all, err := discoverer.Discover(e.ctx, sys, nil) // every table: the children of those asked for too
	if err != nil {
		return fail("%s", errText(discoverError(err)))
	}
	tables, err := selectTables(all, names)
	if err != nil {
		return fail("%s", errText(err))
	}
	d := planDiscovery(sys.ID.Value, tables, all)
	systemFile := filepath.Join(*out, "mappings", "systems", fileName)
	files := map[string][]byte{systemFile: d.systemFile(sys, settings)}
	order := []string{systemFile}
	for _, ent := range d.entities {
		p := filepath.Join(*out, "schemas", sys.ID.Value, ent.schemaFile)
		doc, err := schemaJSON(ent.table, sys.Name.Value)
		if err != nil {
			return fail("table %s: %s", diag.Escape(ent.table.Name), errText(err))
		}
		files[p] = doc
		order = append(order, p)
	}
	if !*force {
		for _, p := range order {
			if _, err := os.Stat(p); err == nil {
				return fail("%s exists; --force overwrites it", diag.Escape(p))
			}
		}
	}
	for _, p := range order {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fail("%s", errText(err))
		}
		if err := os.WriteFile(p, files[p], 0o644); err != nil {
			return fail("%s", errText(err))
		}
	}
	entities := strconv.Itoa(len(d.entities)) + " entities"
	if len(d.entities) == 1 {
		entities = "1 entity"
	}
	fmt.Fprintf(e.stdout, "wrote %s (%s) and %s in %s\n", diag.Escape(systemFile), entities,
		diag.Plural(len(d.entities), "schema file"), diag.Escape(filepath.Join(*out, "schemas", sys.ID.Value)))
	for _, s := range d.skipped {
		fmt.Fprintf(e.stdout, "not an entity: %s\n", diag.Escape(s))
	}
	if d.reviews > 0 {
		fmt.Fprintf(e.stdout, "review the %s marked \"review:\" in %s\n", diag.Plural(d.reviews, "line"), diag.Escape(systemFile))
	}
	return exitOK
}

// discoverError is a connector's error; a SettingError names the setting. (Its advice is
// validation's, about entities without schema files: discover has none to give.)
func discoverError(err error) error {
	var se *connector.SettingError
	if errors.As(err, &se) {
		return fmt.Errorf("%s: %w", se.Key, se.Err)
	}
	return err
}

var systemID = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

// loadSystemFile reads one system file, printing its problems.
func (e *env) loadSystemFile(path string) (*config.System, bool) {
	src, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(e.stderr, "dataflow discover: %s\n", errText(err))
		return nil, false
	}
	l, err := config.NewLoader(e.lookup)
	if err != nil {
		fmt.Fprintf(e.stderr, "dataflow discover: %s\n", errText(err))
		return nil, false
	}
	p := &config.Project{}
	ds := l.AddFile(p, path, src)
	if ds.HasErrors() || len(p.Systems) != 1 {
		diag.WriteText(e.stderr, ds, diag.Sources{path: src})
		if !ds.HasErrors() {
			fmt.Fprintf(e.stderr, "dataflow discover: %s is not a system file\n", diag.Escape(path))
		}
		return nil, false
	}
	return p.Systems[0], true
}

func hasPassword(kind, dsn string) bool {
	if kind == "mysql" {
		at := strings.LastIndex(dsn, "@")
		c := strings.Index(dsn, ":")
		return at > 0 && c >= 0 && c < at && c+1 < at
	}
	if i := strings.Index(dsn, "://"); i >= 0 {
		rest := dsn[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			c := strings.Index(rest[:at], ":")
			return c >= 0 && c+1 < at
		}
		return strings.Contains(strings.ToLower(dsn), "password=")
	}
	return regexp.MustCompile(`(^|\s)password\s*=`).MatchString(dsn)
}

// envName is a system id as an environment variable's name: chinook-crm → CHINOOK_CRM.
func envName(id string) string { return strings.ToUpper(strings.ReplaceAll(id, "-", "_")) }

// selectTables returns the tables named (every table when none is), in the order named.
func selectTables(all []connector.Table, names []string) ([]connector.Table, error) {
	if len(names) == 0 {
		return all, nil
	}
	byName := map[string]connector.Table{}
	var known []string
	for _, t := range all {
		byName[t.Name] = t
		known = append(known, t.Name)
	}
	var out []connector.Table
	seen := map[string]bool{}
	for _, n := range names {
		t, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("--tables: no table %q%s", n, didYouMean(n, known))
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, t)
		}
	}
	return out, nil
}

// discovered is what discover writes: an entity per table with a one-column primary key.
type discovered struct {
	entities []*discoveredEntity
	skipped  []string // tables that are not entities, and why
	reviews  int      // lines marked for review
}

type discoveredEntity struct {
	name       string
	table      connector.Table
	id         string
	updated    *connector.Column
	schemaFile string
	lists      []listOffer
}

// listOffer is a child table (a foreign key to the entity) offered as a list property.
type listOffer struct {
	name, table, key, id string
	why                  string // why it cannot be a list, when id is ""
}

func planDiscovery(sysID string, tables, all []connector.Table) *discovered {
	d := &discovered{}
	usedNames, usedFiles := map[string]bool{}, map[string]bool{}
	for _, t := range tables {
		if len(t.PrimaryKey) != 1 {
			why := "it has no primary key"
			if len(t.PrimaryKey) > 1 {
				why = "its primary key is (" + strings.Join(t.PrimaryKey, ", ") + ")"
			}
			var parents []string
			for _, p := range all {
				if off, ok := childOffer(t, p); ok && off.id != "" {
					parents = append(parents, p.Name)
				}
			}
			switch len(parents) {
			case 0:
			case 1:
				why += "; it is offered as a list of table " + parents[0]
			default:
				why += "; it is offered as a list of tables " + strings.Join(parents[:len(parents)-1], ", ") + " and " + parents[len(parents)-1]
			}
			d.skipped = append(d.skipped, "table "+t.Name+": "+why)
			continue
		}
		ent := &discoveredEntity{table: t, id: t.PrimaryKey[0]}
		ent.name = unique(entityName(t.Name), usedNames, "")
		ent.schemaFile = unique(fileName(t.Name), usedFiles, ".json")
		ent.updated = guessUpdated(t)
		for _, c := range all {
			if off, ok := childOffer(c, t); ok {
				ent.lists = append(ent.lists, off)
			}
		}
		if ent.updated != nil {
			d.reviews++
		}
		if len(ent.lists) > 0 {
			d.reviews++
		}
		d.entities = append(d.entities, ent)
	}
	return d
}

// childOffer offers child c as a list of parent p when a one-column foreign key of c
// references p (a table referencing itself is a tree, not a list).
func childOffer(c, p connector.Table) (listOffer, bool) {
	if c.Name == p.Name {
		return listOffer{}, false
	}
	for _, fk := range c.ForeignKeys {
		if fk.Ref != p.Name || len(fk.Columns) != 1 {
			continue
		}
		off := listOffer{name: propertyName(c.Name), table: c.Name, key: fk.Columns[0]}
		switch {
		case len(c.PrimaryKey) == 1 && c.PrimaryKey[0] != off.key:
			off.id = c.PrimaryKey[0]
		case len(c.PrimaryKey) == 2 && (c.PrimaryKey[0] == off.key || c.PrimaryKey[1] == off.key):
			off.id = c.PrimaryKey[0]
			if off.id == off.key {
				off.id = c.PrimaryKey[1]
			}
		default:
			off.why = "no column identifies its rows within a " + p.Name
		}
		return off, true
	}
	return listOffer{}, false
}

// updatedNames are column names (lower case, without _ and spaces) that say a row's
// last-modified time, best first.
var updatedNames = []string{"updatedat", "lastupdate", "lastupdated", "lastmodified", "modifiedat", "updatedon",
	"modifiedon", "modifieddate", "updatedate", "lastmodifieddate", "updated", "modified", "changedat", "lastchanged", "changed", "mtime"}

// guessUpdated picks the column that most likely holds the row's last-modified time: a time
// or an integer (a version, epoch seconds) whose name says so.
func guessUpdated(t connector.Table) *connector.Column {
	best, rank := -1, len(updatedNames)+1
	for i, c := range t.Columns {
		p := c.Property
		if p == nil || !(p.Format == "date-time" || p.Format == "date" || p.Type() == schema.Integer) {
			continue
		}
		n := strings.NewReplacer("_", "", " ", "", "-", "").Replace(strings.ToLower(c.Name))
		r := -1
		for j, w := range updatedNames {
			if n == w {
				r = j
				break
			}
		}
		if r < 0 && (strings.HasPrefix(n, "modified") || strings.HasPrefix(n, "updated") || strings.HasPrefix(n, "lastupdate")) {
			r = len(updatedNames)
		}
		if r >= 0 && r < rank {
			best, rank = i, r
		}
	}
	if best < 0 {
		return nil
	}
	return &t.Columns[best]
}

// entityName is a table name as an entity name: invoice_line → InvoiceLine, Order Details →
// OrderDetails, sales.customer → SalesCustomer.
func entityName(table string) string {
	var b strings.Builder
	upper := true
	for _, r := range table {
		if r > unicode.MaxASCII || !(unicode.IsLetter(r) || unicode.IsDigit(r)) {
			upper = true
			continue
		}
		if upper {
			r = unicode.ToUpper(r)
			upper = false
		}
		b.WriteRune(r)
	}
	s := b.String()
	if s == "" || !unicode.IsLetter(rune(s[0])) {
		s = "T" + s
	}
	return s
}

// propertyName is a table name as a list property's name: Order Details → order_details.
func propertyName(table string) string {
	s := strings.Trim(nonWord.ReplaceAllString(strings.ToLower(table), "_"), "_")
	if s == "" || !unicode.IsLetter(rune(s[0])) && s[0] != '_' {
		s = "_" + s
	}
	return s
}

// fileName is a table name as a schema file's name: Order Details → order-details.json.
func fileName(table string) string {
	s := strings.Trim(nonWord.ReplaceAllString(strings.ToLower(strings.ReplaceAll(table, "_", "-")), "-"), "-")
	if s == "" {
		s = "table"
	}
	return s + ".json"
}

var nonWord = regexp.MustCompile(`[^a-z0-9_]+`)

// unique returns name, or name2, name3... when taken, and marks it taken.
func unique(name string, used map[string]bool, ext string) string {
	base := strings.TrimSuffix(name, ext)
	for i := 2; used[strings.ToLower(name)]; i++ {
		name = base + strconv.Itoa(i) + ext
	}
	used[strings.ToLower(name)] = true
	return name
}

type yamlSetting struct{ key, value string }

// systemFile renders the system file: the connection settings, then an entity per table.
func (d *discovered) systemFile(sys *config.System, settings []yamlSetting) []byte {
	var b strings.Builder
	b.WriteString("# yaml-language-server: $schema=../../schemas/dataflow.schema.json\n")
	b.WriteString("# Written by dataflow discover from the live database: review the lines marked \"review:\".\n")
	fmt.Fprintf(&b, "system: %s\nname: %s\n", yamlScalar(sys.ID.Value), yamlScalar(sys.Name.Value))
	if sys.Description.Set {
		fmt.Fprintf(&b, "description: %s\n", yamlScalar(sys.Description.Value))
	}
	fmt.Fprintf(&b, "connector: %s\n", sys.Connector.Value)
	if sys.Environment.Set {
		fmt.Fprintf(&b, "environment: %s\n", yamlScalar(sys.Environment.Value))
	}
	for _, s := range settings {
		fmt.Fprintf(&b, "%s: %s\n", s.key, yamlScalar(s.value))
	}
	b.WriteString("entities:\n")
	if len(d.entities) == 0 {
		b.WriteString("  {}  # no table has a one-column primary key\n")
	}
	for _, ent := range d.entities {
		fmt.Fprintf(&b, "  %s:\n    table: %s\n    id: %s\n", ent.name, yamlScalar(ent.table.Name), yamlScalar(ent.id))
		if c := ent.updated; c != nil {
			fmt.Fprintf(&b, "    updated: %s  # review: guessed from the column's name and type (%s); it must change on every edit of a row\n",
				yamlScalar(c.Name), oneLineComment(c.Declared))
		}
		fmt.Fprintf(&b, "    schema: ../../schemas/%s/%s\n", sys.ID.Value, ent.schemaFile)
		if len(ent.lists) == 0 {
			continue
		}
		b.WriteString("    # review: child tables (their foreign keys reference this table). To read a child's rows as a list\n")
		b.WriteString("    # property of this entity, uncomment it and add the property to the schema, an array of the rows.\n")
		b.WriteString("    # lists:\n")
		for _, l := range ent.lists {
			if l.id == "" {
				fmt.Fprintf(&b, "    #   (table %s: %s)\n", oneLineComment(l.table), oneLineComment(l.why))
				continue
			}
			fmt.Fprintf(&b, "    #   %s: {table: %s, key: %s, id: %s}\n", l.name, oneLineComment(yamlScalar(l.table)), oneLineComment(yamlScalar(l.key)), oneLineComment(yamlScalar(l.id)))
		}
	}
	for _, s := range d.skipped {
		fmt.Fprintf(&b, "# not an entity: %s\n", oneLineComment(s))
	}
	return []byte(b.String())
}

// oneLineComment keeps a comment on its line.
func oneLineComment(s string) string { return strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(s) }

var plainYAML = regexp.MustCompile(`^[A-Za-z_]([A-Za-z0-9_ ./-]*[A-Za-z0-9_./-])?$`)

// yamlScalar writes a value plain when YAML reads it back as the same string, else quoted.
func yamlScalar(s string) string {
	switch strings.ToLower(s) {
	case "true", "false", "null", "yes", "no", "on", "off", "y", "n", "~":
		return strconv.Quote(s)
	}
	if plainYAML.MatchString(s) {
		return s
	}
	return strconv.Quote(s)
}

// schemaJSON renders a table's entity schema: a property per column, typed as the connector's
// Describe types it (formats, enum values, lengths, nullability), in the table's column order.
func schemaJSON(t connector.Table, systemName string) ([]byte, error) {
	props := ordered{}
	for _, c := range t.Columns {
		p := c.Property
		if p == nil {
			p = &schema.Property{}
		}
		desc := "Column " + c.Name
		if c.Declared != "" {
			desc += " " + c.Declared
		}
		if len(t.PrimaryKey) == 1 && t.PrimaryKey[0] == c.Name {
			desc += ", the primary key"
		}
		props = append(props, kv{c.Name, propertyJSON(p, desc+".")})
	}
	doc := ordered{
		{"$schema", "https://json-schema.org/draft/2020-12/schema"},
		{"title", systemName + " " + t.Name},
		{"description", "A row of table " + t.Name + ", as dataflow discover read it from the database."},
		{"type", "object"},
		{"properties", props},
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

func propertyJSON(p *schema.Property, desc string) ordered {
	o := ordered{}
	switch len(p.Types) {
	case 0:
	case 1:
		o = append(o, kv{"type", p.Types[0]})
	default:
		o = append(o, kv{"type", p.Types})
	}
	if p.Format != "" {
		o = append(o, kv{"format", p.Format})
	}
	if len(p.Enum) > 0 {
		vals := make([]any, 0, len(p.Enum)+1)
		for _, v := range p.Enum {
			vals = append(vals, v)
		}
		if p.Nullable() {
			vals = append(vals, nil) // enum constrains every value: NULL must be one of them
		}
		o = append(o, kv{"enum", vals})
	}
	if p.MaxLength > 0 {
		o = append(o, kv{"maxLength", p.MaxLength})
	}
	if p.Items != nil {
		o = append(o, kv{"items", propertyJSON(p.Items, "")})
	}
	if desc != "" {
		o = append(o, kv{"description", desc})
	}
	return o
}

// ordered is a JSON object whose members keep their order.
type ordered []kv

type kv struct {
	k string
	v any
}

func (o ordered) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.k)
		v, err := json.Marshal(m.v)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
