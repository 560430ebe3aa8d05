package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/internal/parallel"
	"github.com/dataflow-sync/dataflow/schemas"
	"github.com/santhosh-tekuri/jsonschema/v5"
)

// FormatSchema checks files against schemas/dataflow.schema.json and turns its findings into
// diagnostics a consultant can act on: "unknown key" at the key with a suggestion, an invalid
// enum value with the allowed ones, a missing key at the mapping that lacks it.
type FormatSchema struct {
	raw      any // the schema as JSON, to read enums, properties and descriptions
	compiled map[string]*jsonschema.Schema
}

// The parts of the format schema that files are checked against, by JSON pointer.
const (
	defSystemFile   = "#/$defs/systemFile"
	defDataflowFile = "#/$defs/dataflowFile"
	defTestFile     = "#/$defs/testFile"
)

// connectorDef is the schema of a system file for a given connector, with the connector's own
// keys: #/$defs/<connector>System.
func connectorDef(connector string) string { return "#/$defs/" + connector + "System" }

// NewFormatSchema compiles the embedded format schema.
func NewFormatSchema() (*FormatSchema, error) {
	fs := &FormatSchema{compiled: map[string]*jsonschema.Schema{}}
	dec := json.NewDecoder(bytes.NewReader(schemas.Dataflow))
	dec.UseNumber()
	if err := dec.Decode(&fs.raw); err != nil {
		return nil, fmt.Errorf("format schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	if err := c.AddResource(schemas.DataflowURL, bytes.NewReader(schemas.Dataflow)); err != nil {
		return nil, fmt.Errorf("format schema: %w", err)
	}
	defs, _ := fs.at("/$defs").(map[string]any)
	for name := range defs {
		ptr := "#/$defs/" + name
		s, err := c.Compile(schemas.DataflowURL + ptr)
		if err != nil {
			return nil, fmt.Errorf("format schema %s: %w", ptr, err)
		}
		fs.compiled[ptr] = s
	}
	return fs, nil
}

// Connectors lists the connectors the format schema knows, from the enum of systemFile.
func (fs *FormatSchema) Connectors() []string {
	var names []string
	enum, _ := fs.deref("/$defs/systemFile/properties/connector")["enum"].([]any)
	for _, e := range enum {
		if s, ok := e.(string); ok {
			names = append(names, s)
		}
	}
	return names
}

// deref returns the schema object at ptr, following a local $ref.
func (fs *FormatSchema) deref(ptr string) map[string]any {
	m, _ := fs.at(ptr).(map[string]any)
	for i := 0; i < 8 && m != nil; i++ {
		ref, ok := m["$ref"].(string)
		if !ok || !strings.HasPrefix(ref, "#") || m["enum"] != nil {
			break
		}
		m, _ = fs.at(ref[1:]).(map[string]any)
	}
	return m
}

// CheckSystem validates a system file's root node.
func (fs *FormatSchema) CheckSystem(root *Node) diag.Diagnostics {
	def := defSystemFile
	if c := root.Get("connector"); c != nil && c.Kind == Scalar {
		if _, ok := fs.compiled[connectorDef(c.Value)]; ok {
			def = connectorDef(c.Value)
		}
	}
	return fs.check(def, root)
}

// CheckDataflow validates a dataflow file's root node.
func (fs *FormatSchema) CheckDataflow(root *Node) diag.Diagnostics {
	return fs.check(defDataflowFile, root)
}

// flowDef is the schema of one flow; large dataflow files have their flows checked one by one,
// in parallel.
const flowDef = "#/$defs/flow"

func (fs *FormatSchema) check(def string, root *Node) diag.Diagnostics {
	var failures []*jsonschema.ValidationError
	flows := root.Get("flows")
	if def == defDataflowFile && flows != nil && flows.Kind == List && len(flows.Items) > 1 {
		// The file is checked with its first flow only, and the other flows against the flow
		// schema on their own: the same checks, spread over the cores (a 1,000-flow file is
		// validated on every save in an editor).
		whole := make(map[string]any, len(root.Keys))
		for i, k := range root.Keys {
			if k.Value == "flows" {
				whole[k.Value] = []any{flows.Items[0].JSON()}
			} else {
				whole[k.Value] = root.Vals[i].JSON()
			}
		}
		failures = append(failures, fs.validate(def, whole, "")...)
		results := make([][]*jsonschema.ValidationError, len(flows.Items))
		parallel.For(len(flows.Items)-1, func(i int) {
			item := flows.Items[i+1]
			results[i+1] = fs.validate(flowDef, item.JSON(), "/flows/"+strconv.Itoa(i+1))
		})
		for _, r := range results {
			failures = append(failures, r...)
		}
	} else {
		failures = fs.validate(def, root.JSON(), "")
	}
	// A misspelt key ("sorce") also makes the key it should be missing; only the misspelling
	// is reported, with its suggestion.
	typoAt := map[string]bool{}
	for _, leaf := range failures {
		if kw := lastToken(leaf.KeywordLocation); kw == "additionalProperties" || kw == "unevaluatedProperties" {
			allowed := fs.propertyNames(keywordParent(leaf))
			for _, k := range nodeAt(root, leaf.InstanceLocation).Keys {
				if !contains(allowed, k.Value) && diag.Suggest(k.Value, allowed) != "" {
					typoAt[leaf.InstanceLocation] = true
				}
			}
		}
	}
	var ds diag.Diagnostics
	seen := map[string]bool{}
	for _, leaf := range failures {
		if lastToken(leaf.KeywordLocation) == "required" && typoAt[leaf.InstanceLocation] {
			continue
		}
		for _, d := range fs.describe(leaf, root) {
			key := d.Subject.String() + d.Summary
			if !seen[key] {
				seen[key] = true
				ds = append(ds, d)
			}
		}
	}
	ds.Sort()
	return ds
}

// validate returns the leaf failures of v against def, their instance locations prefixed with
// the location of v in the file.
func (fs *FormatSchema) validate(def string, v any, prefix string) []*jsonschema.ValidationError {
	var ve *jsonschema.ValidationError
	if !errors.As(fs.compiled[def].Validate(v), &ve) {
		return nil
	}
	l := leaves(ve)
	for _, e := range l {
		e.InstanceLocation = prefix + e.InstanceLocation
	}
	return l
}

// leaves returns the errors that say what is wrong. For oneOf it keeps the branch that fits
// the value's shape (a string for "create: always", a mapping for "create: {target: ...}"),
// so the message is about that branch and not "oneOf failed".
func leaves(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return []*jsonschema.ValidationError{e}
	}
	kw := lastToken(e.KeywordLocation)
	if kw == "oneOf" || kw == "anyOf" {
		var best []*jsonschema.ValidationError
		for _, c := range e.Causes {
			l := leaves(c)
			if !hasTypeErrorAt(l, e.InstanceLocation) {
				return l
			}
			if best == nil {
				best = l
			}
		}
		return best
	}
	var out []*jsonschema.ValidationError
	for _, c := range e.Causes {
		out = append(out, leaves(c)...)
	}
	return out
}

func hasTypeErrorAt(errs []*jsonschema.ValidationError, loc string) bool {
	for _, e := range errs {
		if e.InstanceLocation == loc && lastToken(e.KeywordLocation) == "type" {
			return true
		}
	}
	return false
}

func lastToken(ptr string) string {
	return unescape(ptr[strings.LastIndexByte(ptr, '/')+1:])
}

func unescape(tok string) string {
	return strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
}

// tokens splits a JSON pointer. jsonschema/v5 URL-escapes instance locations
// ("/entities/order%20lines"), so tokens are URL-unescaped before the ~ escapes are undone.
func tokens(ptr string) []string {
	if ptr == "" || ptr == "/" {
		return nil
	}
	parts := strings.Split(strings.TrimPrefix(ptr, "/"), "/")
	for i, p := range parts {
		if u, err := url.PathUnescape(p); err == nil {
			p = u
		}
		parts[i] = unescape(p)
	}
	return parts
}

// at returns the raw schema value at a JSON pointer.
func (fs *FormatSchema) at(ptr string) any {
	v := fs.raw
	for _, t := range tokens(ptr) {
		switch x := v.(type) {
		case map[string]any:
			v = x[t]
		case []any:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// keywordParent returns the pointer (within the schema file) of the schema object holding the
// keyword that failed.
func keywordParent(e *jsonschema.ValidationError) string {
	loc := e.AbsoluteKeywordLocation
	i := strings.IndexByte(loc, '#')
	if i < 0 {
		return ""
	}
	ptr := loc[i+1:]
	return ptr[:strings.LastIndexByte(ptr, '/')]
}

// nodeAt finds the node at an instance location (a JSON pointer into the file).
func nodeAt(root *Node, ptr string) *Node {
	n := root
	for _, t := range tokens(ptr) {
		switch n.Kind {
		case Map:
			next := n.Get(t)
			if next == nil {
				return n
			}
			n = next
		case List:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(n.Items) {
				return n
			}
			n = n.Items[i]
		default:
			return n
		}
	}
	return n
}

// keyName is the key a value sits under, for messages: "sync", "create.source", or "flows"
// for "/flows/0".
func keyName(ptr string) string {
	toks := tokens(ptr)
	var keys []string
	for i := len(toks) - 1; i >= 0; i-- {
		if _, err := strconv.Atoi(toks[i]); err != nil {
			keys = append([]string{toks[i]}, keys...)
		} else if len(keys) > 0 {
			break
		}
	}
	if len(keys) == 0 {
		return "the file"
	}
	return strings.Join(keys, ".")
}

var patternHelp = map[string]string{
	`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`: "use kebab-case: lower-case letters and digits separated by single dashes, like \"custom-crm\"",
	`\S`:                            "it must not be blank",
	`^[A-Za-z][A-Za-z0-9_]*$`:       "use letters, digits and underscores, starting with a letter",
	`^[A-Za-z_][A-Za-z0-9_]*$`:      "use letters, digits and underscores, starting with a letter or an underscore",
	`^[^.]+(\.[^.]+)*$`:             "use property names separated by single dots, like \"billing.city\"",
	// every: (dataflow serve's schedules)
	`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`: "write a number and a unit (ms, s, m or h), like \"30s\", \"5m\" or \"1h30m\"",
}

func (fs *FormatSchema) describe(e *jsonschema.ValidationError, root *Node) diag.Diagnostics {
	n := nodeAt(root, e.InstanceLocation)
	parent := keywordParent(e)
	kw := lastToken(e.KeywordLocation)
	key := keyName(e.InstanceLocation)
	d := &diag.Diagnostic{Severity: diag.Error, Subject: n.Range}
	if contains(tokens(e.KeywordLocation), "propertyNames") {
		return fs.describeName(e, root)
	}
	switch kw {
	case "additionalProperties", "unevaluatedProperties":
		allowed := fs.propertyNames(parent)
		var unknown []*Node
		for _, k := range n.Keys {
			if !contains(allowed, k.Value) {
				unknown = append(unknown, k)
			}
		}
		// additionalProperties fails once per mapping; each unknown key gets its own
		// diagnostic, at the key.
		var ds diag.Diagnostics
		for _, k := range unknown {
			ds.Errorf(k.Range, "unknown key %q%s", k.Value, diag.DidYouMean(k.Value, allowed)).
				WithDetail("Allowed here: %s.", strings.Join(allowed, ", "))
		}
		return ds
	case "required":
		req, _ := fs.at(parent + "/required").([]any)
		var missing []string
		for _, r := range req {
			if s, ok := r.(string); ok && n.Get(s) == nil {
				missing = append(missing, s)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if len(missing) == 1 {
			d.Summary = fmt.Sprintf("missing key %q", missing[0])
		} else {
			d.Summary = "missing keys " + diag.JoinQuoted(missing, "and")
		}
		if desc := fs.description(parent + "/properties/" + missing[0]); desc != "" {
			d.Detail = fmt.Sprintf("Add %q: %s", missing[0], desc)
		}
		// The caret marks where the mapping starts, without underlining a key that is fine.
		if n.Kind == Map && len(n.Keys) > 0 {
			d.Subject = n.Keys[0].Range
		}
		d.Subject.End = diag.Pos{Line: d.Subject.Start.Line, Col: d.Subject.Start.Col + 1}
	case "type":
		want := fs.types(parent)
		if n.Kind == Null && !isIndex(lastToken(e.InstanceLocation)) {
			// "name:" with nothing after it: point at the key, which is where the value is missing.
			loc := e.InstanceLocation
			if owner := nodeAt(root, loc[:strings.LastIndexByte(loc, '/')]); owner != nil {
				if k := owner.KeyNode(lastToken(loc)); k != nil {
					d.Subject = k.Range
				}
			}
			d.Summary = fmt.Sprintf("%s has no value", quoteKey(key))
			d.Detail = fmt.Sprintf("Give it %s.", want)
		} else if isIndex(lastToken(e.InstanceLocation)) {
			d.Summary = fmt.Sprintf("each item of %s must be %s, not %s", quoteKey(key), want, n.Describe())
		} else {
			d.Summary = fmt.Sprintf("%s must be %s, not %s", quoteKey(key), want, n.Describe())
		}
	case "enum":
		vals := fs.strings(parent + "/enum")
		d.Summary = fmt.Sprintf("invalid %s %q", key, n.Value) + diag.DidYouMean(n.Value, vals)
		d.Detail = "Use one of: " + strings.Join(vals, ", ") + "."
	case "const":
		d.Summary = fmt.Sprintf("%s must be %v", quoteKey(key), fs.at(parent+"/const"))
	case "minLength":
		d.Summary = fmt.Sprintf("%s must not be empty", quoteKey(key))
	case "pattern":
		pat, _ := fs.at(parent + "/pattern").(string)
		help := patternHelp[pat]
		if help == "" {
			help = "it must match the pattern " + pat
		}
		if n.Value == "" || pat == `\S` {
			d.Summary = fmt.Sprintf("%s must not be empty", quoteKey(key))
		} else {
			d.Summary = fmt.Sprintf("invalid %s %q: %s", key, n.Value, help)
		}
	case "minItems":
		d.Summary = fmt.Sprintf("%s must not be empty", quoteKey(key))
	case "minProperties":
		d.Summary = fmt.Sprintf("%s must not be empty", quoteKey(key))
	case "false":
		d.Summary = fmt.Sprintf("%s is not allowed here", quoteKey(key))
	default:
		d.Summary = fmt.Sprintf("%s: %s", quoteKey(key), e.Message)
	}
	return diag.Diagnostics{d}
}

// describeName reports a key that breaks a propertyNames rule ("Order Lines" as an entity
// name), at the key. jsonschema/v5 gives the name itself as the instance location.
func (fs *FormatSchema) describeName(e *jsonschema.ValidationError, root *Node) diag.Diagnostics {
	toks := tokens(e.InstanceLocation)
	if len(toks) == 0 {
		return nil
	}
	name := toks[len(toks)-1]
	parentLoc := e.InstanceLocation[:strings.LastIndexByte(e.InstanceLocation, '/')]
	owner := nodeAt(root, parentLoc)
	r := owner.Range
	if k := owner.KeyNode(name); k != nil {
		r = k.Range
	}
	what := "key"
	switch keyName(parentLoc) {
	case "entities":
		what = "entity name"
	case "lists", "entities.lists":
		what = "list name"
	}
	if strings.HasSuffix(keyName(parentLoc), ".lists") {
		what = "list name"
	}
	help := "use letters, digits and underscores"
	if pat, ok := fs.at(keywordParent(e) + "/pattern").(string); ok {
		if h, ok := patternHelp[pat]; ok {
			help = h
		}
	}
	var ds diag.Diagnostics
	ds.Errorf(r, "invalid %s %q: %s", what, name, help)
	return ds
}

func isIndex(tok string) bool {
	_, err := strconv.Atoi(tok)
	return err == nil
}

func quoteKey(k string) string {
	if k == "the file" {
		return k
	}
	return fmt.Sprintf("%q", k)
}

func (fs *FormatSchema) propertyNames(ptr string) []string {
	props, _ := fs.at(ptr + "/properties").(map[string]any)
	names := make([]string, 0, len(props))
	for k := range props {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func (fs *FormatSchema) description(ptr string) string {
	m, _ := fs.at(ptr).(map[string]any)
	if m == nil {
		return ""
	}
	if d, _ := m["description"].(string); d != "" {
		return d // the description beside a $ref is the more specific one
	}
	if ref, ok := m["$ref"].(string); ok && strings.HasPrefix(ref, "#") {
		return fs.description(ref[1:])
	}
	return ""
}

func (fs *FormatSchema) strings(ptr string) []string {
	var out []string
	l, _ := fs.at(ptr).([]any)
	for _, v := range l {
		out = append(out, fmt.Sprint(v))
	}
	return out
}

var typeNames = map[string]string{
	"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
	"number": "a number", "boolean": "a boolean", "null": "null",
}

func (fs *FormatSchema) types(ptr string) string {
	var names []string
	switch t := fs.at(ptr + "/type").(type) {
	case string:
		names = append(names, typeNames[t])
	case []any:
		for _, x := range t {
			names = append(names, typeNames[fmt.Sprint(x)])
		}
	}
	return strings.Join(names, " or ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
