package httpconn

// Expressions of the operations: expr-lang programs compiled once, against an environment that
// holds only the names an operation offers (`since` for a list, `id` and `record` for an update),
// so that a name used where it is not available is a validation error at its position in the
// YAML value. Secrets never reach expressions: there is no `env`.

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// maxExprNodes bounds an expression's size, as for mapping expressions.
const maxExprNodes = 1000

// Names an expression may use. Each operation offers a subset.
const (
	nameID      = "id"
	nameIDs     = "ids"
	nameRecord  = "record"
	nameCurrent = "current"
	nameSince   = "since"
	nameNow     = "now"
	// find's names: the values searched for (not keys and values, which are builtins).
	nameTuples = "tuples"
	nameTerms  = "terms"
	nameTerm   = "term"
	// nameVars is the system's vars (vars.storePageId), offered to every expression.
	nameVars = "vars"
)

// samples are values of the types the names have at run time, for expr's type checker.
var samples = map[string]func() any{
	nameID:      func() any { return "" },
	nameIDs:     func() any { return []any{} },
	nameRecord:  func() any { return map[string]any{} },
	nameCurrent: func() any { return map[string]any{} },
	nameSince:   func() any { return "" },
	nameNow:     func() any { return "" },
	nameTuples:  func() any { return []any{} },
	nameTerms:   func() any { return []any{} },
	nameTerm:    func() any { return "" },
}

// scope is the set of names one operation offers, with a word on the names it does not.
type scope struct {
	names []string
	// missing explains a known name that is not available here (`id` in a get of batch 50).
	missing map[string]string
}

func (s scope) env() map[string]any {
	env := make(map[string]any, len(s.names)+1)
	for _, n := range s.names {
		env[n] = samples[n]()
	}
	env[nameVars] = map[string]any{}
	return env
}

// program is a compiled expression with the YAML value it came from.
type program struct {
	prog *vm.Program
	src  string
	// mentions holds the names the expression uses, so that an update fetches `current` only
	// when an expression needs it.
	mentions map[string]bool
}

// run evaluates the program with the given values of its names.
func (p *program) run(vars map[string]any) (any, error) {
	out, err := expr.Run(p.prog, vars)
	if err != nil {
		return nil, fmt.Errorf("expression %s: %s", quoteExpr(p.src), oneLine(err.Error()))
	}
	return out, nil
}

func quoteExpr(s string) string {
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return "`" + s + "`"
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// compiler compiles the expressions of one entity, reporting problems as diagnostics.
type compiler struct {
	ds *diag.Diagnostics
	// vars are the names of the system's vars, sorted: vars.<name> must be one of them.
	vars []string
}

// names lists the names an expression may use in scope sc, for messages.
func (c *compiler) names(sc scope) []string {
	if len(c.vars) == 0 {
		return sc.names
	}
	return append(slices.Clone(sc.names), nameVars)
}

var (
	unknownName     = regexp.MustCompile(`^unknown name (\S+)`)
	unexpectedToken = regexp.MustCompile(`unexpected token [A-Za-z]+\("((?:[^"\\]|\\.)*)"\)`)
)

// options are the expr options shared by every operation expression.
func options(sc scope, boolean bool) []expr.Option {
	opts := []expr.Option{
		expr.Env(sc.env()),
		expr.MaxNodes(maxExprNodes),
		// expr's repeat allocates before checking its budget; paths and bodies do not need it.
		expr.DisableBuiltin("repeat"),
		// merge takes objects of text keys (records) and of keys of any type (fromPairs).
		expr.Function("merge", mergeFunc,
			new(func(map[string]any, map[string]any) map[string]any),
			new(func(map[string]any, map[any]any) map[string]any),
			new(func(map[any]any, map[string]any) map[string]any),
			new(func(map[any]any, map[any]any) map[string]any)),
	}
	// quote, sqlQuote and queryEscape: the literals of filter languages (engine/mapping).
	opts = append(opts, mapping.QuoteFunctions()...)
	if boolean {
		opts = append(opts, expr.AsBool())
	}
	return opts
}

// compile compiles the expression src, which sits at rune offset off of the YAML value n, for
// the key named key (`list.query.modifiedAfter`). It returns nil after reporting a problem.
func (c *compiler) compile(n *config.Node, src string, off int, key string, sc scope, boolean bool) *program {
	if src == "" && off == 0 {
		return nil // an empty value: the format schema reports it
	}
	if strings.TrimSpace(src) == "" {
		c.ds.Errorf(rangeIn(n, off, off+utf8.RuneCountInString(src)), "%s: the expression is empty", key)
		return nil
	}
	prog, err := expr.Compile(src, options(sc, boolean)...)
	if err != nil {
		c.report(n, src, off, key, sc, err)
		return nil
	}
	p := &program{prog: prog, src: src, mentions: map[string]bool{}}
	ast.Find(prog.Node(), func(x ast.Node) bool {
		if id, ok := x.(*ast.IdentifierNode); ok {
			p.mentions[id.Value] = true
		}
		return false
	})
	if p.mentions[nameVars] && !c.checkVars(n, off, key, prog.Node()) {
		return nil
	}
	return p
}

// checkVars reports vars.<name> for a name that is not one of the system's vars, at the name,
// which expr cannot do since vars is a map to it. It returns false when it reported one.
func (c *compiler) checkVars(n *config.Node, off int, key string, root ast.Node) bool {
	shadowed := false
	ast.Find(root, func(x ast.Node) bool {
		if v, ok := x.(*ast.VariableDeclaratorNode); ok && v.Name == nameVars {
			shadowed = true
		}
		return false
	})
	if shadowed {
		return true
	}
	ok := true
	ast.Find(root, func(x ast.Node) bool {
		m, isMember := x.(*ast.MemberNode)
		if !isMember {
			return false
		}
		id, isIdent := m.Node.(*ast.IdentifierNode)
		prop, isStr := m.Property.(*ast.StringNode)
		if !isIdent || id.Value != nameVars || !isStr || slices.Contains(c.vars, prop.Value) {
			return false
		}
		ok = false
		loc := prop.Location()
		d := c.ds.Errorf(rangeIn(n, off+loc.From, off+max(loc.To, loc.From+1)), "%s: unknown var %q%s", key, prop.Value, diag.DidYouMean(prop.Value, c.vars))
		if len(c.vars) == 0 {
			d.WithDetail("The system file has no vars; define the value at its top level: vars: {%s: ...}.", prop.Value)
		} else {
			d.WithDetail("The system file's vars: %s.", strings.Join(c.vars, ", "))
		}
		return false
	})
	return ok
}

func (c *compiler) report(n *config.Node, src string, off int, key string, sc scope, err error) {
	r := rangeIn(n, off, off+utf8.RuneCountInString(src))
	msg := err.Error()
	var fe *file.Error
	if errors.As(err, &fe) {
		msg = fe.Message
		r = rangeIn(n, off+fe.From, off+max(fe.To, fe.From+1))
	}
	if m := unknownName.FindStringSubmatch(msg); m != nil {
		name := m[1]
		names := c.names(sc)
		d := c.ds.Errorf(r, "%s: unknown name %q%s", key, name, diag.DidYouMean(name, names))
		switch why, ok := sc.missing[name]; {
		case ok:
			d.WithDetail("%s", why)
		case name == "env":
			d.WithDetail("Secrets and environment variables never reach expressions; put them in auth or headers, and settings that are not secret in vars. Available here: %s.", strings.Join(names, ", "))
		default:
			d.WithDetail("Available here: %s; record properties are members, like record.name.", strings.Join(names, ", "))
		}
		return
	}
	if got, ok := strings.CutPrefix(msg, "expected bool, but got "); ok {
		c.ds.Errorf(r, "%s must be a boolean expression: it gives %s", key, goTypeWords.Replace(got)).
			WithDetail("Compare a value, e.g. record.price != nil.")
		return
	}
	msg = strings.ReplaceAll(oneLine(msg), "unexpected token EOF", "unexpected end of the expression")
	msg = unexpectedToken.ReplaceAllString(msg, `unexpected "$1"`)
	c.ds.Errorf(r, "%s: %s", key, msg)
}

// recordBody is the default body of a create or an update: the record.
func recordBody(sc scope) *program {
	prog, err := expr.Compile(nameRecord, options(sc, false)...)
	if err != nil {
		return nil // cannot happen: record is a name of every scope that has a default body
	}
	return &program{prog: prog, src: nameRecord, mentions: map[string]bool{nameRecord: true}}
}

// goTypeWords names expr's Go types in the terms of JSON.
var goTypeWords = strings.NewReplacer("map[string]interface {}", "an object", "[]interface {}", "a list",
	"string", "a string", "float64", "a number", "int", "an integer", "bool", "a boolean", "interface {}", "any value")

// rangeIn is the file range of the runes [from, to) of a scalar's value.
func rangeIn(n *config.Node, from, to int) diag.Range {
	r := n.Range
	r.Start = n.PosAt(from)
	r.End = n.PosAt(to)
	if r.End.Line != r.Start.Line || r.End.Col <= r.Start.Col {
		r.End = diag.Pos{Line: r.Start.Line, Col: r.Start.Col + 1}
	}
	return r
}

// mergeFunc is merge(a, b): a copy of the object a with b's properties written over it, nested
// objects merged the same way and lists replaced, which is how Update patches a record. For an
// API that replaces whole records (PUT), `body: merge(current, record)` sends the stored record
// with the patch applied.
func mergeFunc(args ...any) (any, error) {
	var objs [2]map[string]any
	for i, arg := range args[:2] {
		v, err := jsonValue(arg, 0)
		if err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
		objs[i], _ = v.(map[string]any)
	}
	return merge(objs[0], objs[1], 0)
}

func merge(a, b map[string]any, depth int) (map[string]any, error) {
	if depth > 64 {
		return nil, errors.New("merge: the objects nest deeper than 64 levels")
	}
	out := maps.Clone(a)
	if out == nil {
		out = make(map[string]any, len(b))
	}
	for _, k := range slices.Sorted(maps.Keys(b)) {
		bv := b[k]
		am, aok := out[k].(map[string]any)
		bm, bok := bv.(map[string]any)
		if aok && bok {
			m, err := merge(am, bm, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = m
			continue
		}
		out[k] = bv
	}
	return out, nil
}

// resultKind names the Go kind of an expression's result for messages.
func resultKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Float64, reflect.Float32, reflect.Uint, reflect.Uint64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}
