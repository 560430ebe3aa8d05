package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dataflow-sync/dataflow/engine"
	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/schema"
	"github.com/santhosh-tekuri/jsonschema/v5"
)

// checkLive is validate --live: each entity's schema file is compared with its table in the
// live database, and what changed since the schema was written (a column renamed, dropped or
// retyped, a table gone) is reported at the property in the schema file, or at the entity's
// setting in the system file. Entities without a schema file were described from the database
// already; connectors that cannot list tables (http) are not checked.
func checkLive(e *env, res *engine.Result) {
	reg := engine.Connectors()
	for _, cs := range res.Project.Config.Systems {
		sys := res.Project.Systems[cs.ID.Value]
		if sys == nil {
			continue
		}
		driver, _ := reg.Driver(cs.Connector.Value)
		disc, ok := driver.(connector.Discoverer)
		if !ok {
			continue
		}
		var entities []*liveEntity
		for _, ce := range cs.Entities {
			ent := sys.Entities[ce.Name.Value]
			if !ce.Schema.Set || ent == nil || ent.Schema == nil {
				continue
			}
			entities = append(entities, &liveEntity{cfg: ce, schema: ent.Schema})
		}
		if len(entities) == 0 {
			continue
		}
		tables, err := disc.Discover(e.ctx, cs, nil)
		if err != nil {
			r := cs.Node.Range
			var se *connector.SettingError
			if errors.As(err, &se) {
				if s, ok := cs.Settings[se.Key]; ok {
					r = s.Range
				}
			}
			res.Diagnostics.Errorf(r, "--live: cannot read the database of system %q: %s", cs.ID.Value, oneLine(err.Error())).
				WithDetail("validate --live compares the schema files with the live database; without --live, validation needs no database.")
			continue
		}
		byName := map[string]connector.Table{}
		var names []string
		for _, t := range tables {
			byName[t.Name] = t
			names = append(names, t.Name)
		}
		for _, le := range entities {
			le.check(res, byName, names)
			// The schema file's text, for quoting its lines, when a diagnostic points into it
			// (only then: the summary counts the files of Sources).
			for _, d := range res.Diagnostics {
				if d.Subject.File == le.schema.Source && le.src != nil {
					res.Sources[le.schema.Source] = le.src
				}
			}
		}
	}
	res.Diagnostics.Sort()
}

type liveEntity struct {
	cfg    *config.Entity
	schema *schema.Entity
	keys   map[string]diag.Range // JSON pointer of each object key in the schema file
	src    []byte
}

func (le *liveEntity) check(res *engine.Result, tables map[string]connector.Table, names []string) {
	file := le.schema.Source
	if src, err := os.ReadFile(file); err == nil {
		le.keys = keyRanges(file, src)
		le.src = src
	}
	tableNode := le.cfg.Settings["table"]
	if tableNode == nil || tableNode.Kind != config.Scalar {
		return
	}
	t, ok := tables[tableNode.Value]
	if !ok {
		res.Diagnostics.Errorf(tableNode.Range, "table %q of entity %s is not in the database%s", tableNode.Value, le.cfg.Name.Value, didYouMean(tableNode.Value, names)).
			WithDetail("The table was renamed or dropped since the schema was written: correct `table`, or run dataflow discover again.")
		return
	}
	var compiled *jsonschema.Schema = le.schema.Compiled
	listNames := map[string]bool{}
	if lists := le.cfg.Settings["lists"]; lists != nil && lists.Kind == config.Map {
		for i, k := range lists.Keys {
			listNames[k.Value] = true
			childName := ""
			if n := lists.Vals[i].Get("table"); n != nil {
				childName = n.Value
			}
			p := le.schema.Root.Properties[k.Value]
			if p == nil || p.Items == nil {
				continue
			}
			child, ok := tables[childName]
			if !ok {
				res.Diagnostics.Errorf(lists.Vals[i].Get("table").Range, "table %q of list %s is not in the database%s", childName, k.Value, didYouMean(childName, names)).
					WithDetail("The table was renamed or dropped since the schema was written: correct the list's `table`.")
				continue
			}
			le.compare(res, child, p.Items, itemsOf(compiledProperty(compiled, k.Value)), "/properties/"+pointerEscape(k.Value)+"/items", nil)
		}
	}
	le.compare(res, t, le.schema.Root, compiled, "", listNames)
}

// compare reports the differences between a row's schema (p, and its compiled form when
// known) and the table's columns; ptr is the JSON pointer of the row's schema in the file.
func (le *liveEntity) compare(res *engine.Result, t connector.Table, p *schema.Property, compiled *jsonschema.Schema, ptr string, skip map[string]bool) {
	if p == nil || p.Open {
		return
	}
	cols := map[string]connector.Column{}
	var unmatched []string // columns the schema does not have: a renamed property's new name
	for _, c := range t.Columns {
		cols[c.Name] = c
		if _, ok := p.Properties[c.Name]; !ok {
			unmatched = append(unmatched, c.Name)
		}
	}
	var missing []string
	for _, name := range p.Names() {
		if _, ok := cols[name]; !ok && !skip[name] {
			missing = append(missing, name)
		}
	}
	renamed := map[string]bool{} // columns suggested as a missing property's new name
	for _, name := range p.Names() {
		if skip[name] {
			continue
		}
		at := le.at(ptr + "/properties/" + pointerEscape(name))
		c, ok := cols[name]
		if !ok {
			hint := ""
			if to := diag.Suggest(name, unmatched); to != "" {
				hint, renamed[to] = "; did you mean "+diag.Quote(to)+"?", true
			} else if len(missing) == 1 && len(unmatched) == 1 {
				// One property gone and one column new: most likely a rename.
				hint, renamed[unmatched[0]] = "; was it renamed to "+diag.Quote(unmatched[0])+"?", true
			}
			res.Diagnostics.Errorf(at, "column %q of table %s is not in the database: renamed or dropped since the schema was written%s", name, t.Name, hint).
				WithDetail("Rename or remove the property in %s (and the mappings that use it), or run dataflow discover again.", le.schema.Source)
			continue
		}
		for _, problem := range drift(p.Properties[name], compiledProperty(compiled, name), c) {
			res.Diagnostics.Errorf(at, "column %q of table %s %s", name, t.Name, problem).
				WithDetail("The column changed since the schema was written (it is %s now): update the property in %s, or run dataflow discover again.", c.Declared, le.schema.Source)
		}
	}
	for _, name := range unmatched {
		if skip[name] || renamed[name] {
			continue
		}
		res.Diagnostics.Warnf(le.cfg.Schema.Range, "column %q of table %s is not in the schema file %s", name, t.Name, le.schema.Source).
			WithDetail("Add it to the schema to map it; records are read without it until then.")
	}
}

// at is the range of the schema file's key at ptr, or the entity's `schema` setting when the
// key is not there (a property defined through $ref).
func (le *liveEntity) at(ptr string) diag.Range {
	if r, ok := le.keys[ptr]; ok {
		return r
	}
	return le.cfg.Schema.Range
}

// drift says how a column differs from its property: its JSON type or format, whether it may
// be NULL, its enum values or its length.
func drift(p *schema.Property, compiled *jsonschema.Schema, c connector.Column) []string {
	live := c.Property
	if live == nil || p == nil {
		return nil
	}
	var out []string
	lt, st := live.Type(), p.Type()
	switch {
	case lt == "" || st == "" || len(p.Types) == 0:
		// untyped on either side (a BLOB in SQLite, a property without type): nothing to compare
	case lt != st && !(st == schema.Number && lt == schema.Integer):
		out = append(out, fmt.Sprintf("is %s in the database, the schema says %s", typeText(live), typeText(p)))
	case live.Format != "" && p.Format != "" && live.Format != p.Format:
		out = append(out, fmt.Sprintf("is %s in the database, the schema says %s", typeText(live), typeText(p)))
	}
	if lt != "" && len(p.Types) > 0 && live.Nullable() && !p.Nullable() {
		out = append(out, "may be NULL in the database; the schema does not allow null")
	}
	if compiled == nil {
		return out
	}
	if len(live.Enum) > 0 && compiled.Enum != nil {
		var want []string
		for _, v := range compiled.Enum {
			if s, ok := v.(string); ok {
				want = append(want, s)
			}
		}
		have, listed := slices.Clone(live.Enum), slices.Clone(want)
		slices.Sort(have)
		slices.Sort(listed)
		if !slices.Equal(have, listed) {
			out = append(out, fmt.Sprintf("has the values %s in the database; the schema lists %s", diag.JoinQuoted(live.Enum, "and"), diag.JoinQuoted(want, "and")))
		}
	}
	if live.MaxLength > 0 && compiled.MaxLength >= 0 && compiled.MaxLength != live.MaxLength {
		out = append(out, fmt.Sprintf("holds at most %d characters in the database; the schema says maxLength %d", live.MaxLength, compiled.MaxLength))
	}
	return out
}

func typeText(p *schema.Property) string {
	t := p.Type()
	if p.Format != "" {
		t += " (" + p.Format + ")"
	}
	return t
}

func compiledProperty(s *jsonschema.Schema, name string) *jsonschema.Schema {
	if s == nil {
		return nil
	}
	return s.Properties[name]
}

func itemsOf(s *jsonschema.Schema) *jsonschema.Schema {
	if s == nil {
		return nil
	}
	if s.Items2020 != nil {
		return s.Items2020
	}
	it, _ := s.Items.(*jsonschema.Schema)
	return it
}

func pointerEscape(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// keyRanges maps the JSON pointer of every object member in a JSON document to the range of
// its key, for diagnostics at a schema's property. A document that cannot be read gives what
// was read before the problem.
func keyRanges(file string, src []byte) map[string]diag.Range {
	out := map[string]diag.Range{}
	dec := json.NewDecoder(bytes.NewReader(src))
	pos := func(off int) diag.Pos {
		line := 1 + bytes.Count(src[:off], []byte("\n"))
		start := bytes.LastIndexByte(src[:off], '\n') + 1
		return diag.Pos{Line: line, Col: utf8.RuneCount(src[start:off]) + 1}
	}
	var walk func(ptr string, depth int) error
	walk = func(ptr string, depth int) error {
		if depth > 200 {
			return errors.New("too deep")
		}
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		d, ok := tok.(json.Delim)
		if !ok {
			return nil
		}
		switch d {
		case '{':
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				key, _ := kt.(string)
				end := int(dec.InputOffset())
				start := quoteStart(src, end)
				member := ptr + "/" + pointerEscape(key)
				out[member] = diag.Range{File: file, Start: pos(start), End: pos(end)}
				if err := walk(member, depth+1); err != nil {
					return err
				}
			}
		case '[':
			for i := 0; dec.More(); i++ {
				if err := walk(ptr+"/"+strconv.Itoa(i), depth+1); err != nil {
					return err
				}
			}
		}
		_, err = dec.Token() // the closing delimiter
		return err
	}
	walk("", 0)
	return out
}

// quoteStart finds the opening quote of the string that ends (closing quote included) at end.
func quoteStart(src []byte, end int) int {
	for i := end - 2; i >= 0; i-- {
		if src[i] != '"' {
			continue
		}
		n := 0
		for j := i - 1; j >= 0 && src[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			return i
		}
	}
	return 0
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
