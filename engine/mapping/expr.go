package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/schema"
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

// maxStringResult bounds the strings an expression may build.
const maxStringResult = 1 << 20

// MaxExprNodes bounds an expression's size; mapping expressions are one-liners, and the bound
// keeps a hostile file from making compilation slow.
const MaxExprNodes = 1000

// Env is the typed environment an expression is compiled against: the record's properties as
// variables, typed from the entity schema. Its expr configurations are built once and shared
// by every expression over the same record, on any goroutine: expr only reads them.
type Env struct {
	Record  *schema.Property
	vars    map[string]any
	once    [2]sync.Once
	configs [2]*conf.Config // [0] for values, [1] for boolean filters
}

// config returns the expr configuration of the environment, built on first use.
func (e *Env) config(boolean bool) *conf.Config {
	i := 0
	if boolean {
		i = 1
	}
	e.once[i].Do(func() {
		c := conf.CreateNew()
		opts := append(append(functions(), budgetFunctions()...), expr.Env(e.vars), expr.MaxNodes(MaxExprNodes))
		if boolean {
			opts = append(opts, expr.AsBool())
		}
		for _, op := range opts {
			op(c)
		}
		c.Check()
		e.configs[i] = c
	})
	return e.configs[i]
}

// envCache shares one Env per record description during a compile: a flow's expressions,
// and all flows of one entity, are compiled against the same environment.
type envCache struct {
	mu   sync.Mutex
	envs map[*schema.Property]*Env
}

func newEnvCache() *envCache { return &envCache{envs: map[*schema.Property]*Env{}} }

func (c *envCache) get(p *schema.Property) *Env {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.envs[p]
	if !ok {
		e = NewEnv(p)
		c.envs[p] = e
	}
	return e
}

// NewEnv builds the environment of a record described by p.
func NewEnv(p *schema.Property) *Env {
	e := &Env{Record: p, vars: map[string]any{}}
	if p != nil {
		for name, prop := range p.Properties {
			e.vars[name] = sample(prop, 0)
		}
	}
	return e
}

// sample returns a value of the Go type a property's values have at run time, so that expr's
// checker types the variable: integer → int, number → float64, and so on. Untyped and nullable
// mixed properties are nil, which expr treats as "any".
func sample(p *schema.Property, depth int) any {
	switch p.Type() {
	case schema.String:
		return ""
	case schema.Integer:
		return 0
	case schema.Number:
		return 0.0
	case schema.Boolean:
		return false
	case schema.Array:
		return []any{}
	case schema.Object:
		return map[string]any{}
	}
	return nil
}

// functions are dataflow's helpers, on top of expr-lang's builtins. Each is typed, so that a
// wrong argument is a validation error.
func functions() []expr.Option {
	return append([]expr.Option{
		expr.Function("amount", func(args ...any) (any, error) {
			f, ok := toFloat(args[0])
			if !ok {
				return nil, &EvalError{Msg: fmt.Sprintf("amount: %s is not a number", Canonical(args[0]))}
			}
			return strconv.FormatFloat(math.Round(f*100)/100, 'f', 2, 64), nil
		}, new(func(float64) string), new(func(int) string), new(func(string) string)),
		expr.Function("decimal", func(args ...any) (any, error) {
			switch v := args[0].(type) {
			case string:
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					return nil, &EvalError{Msg: fmt.Sprintf("decimal: %s is not a number", Canonical(v))}
				}
				return f, nil
			}
			if f, ok := toFloat(args[0]); ok {
				return f, nil
			}
			return nil, &EvalError{Msg: fmt.Sprintf("decimal: %s is not a number", Canonical(args[0]))}
		}, new(func(string) float64), new(func(float64) float64), new(func(int) float64)),
		// expr's repeat allocates before it checks its budget; this one checks first, so that
		// repeat(repeat(s, n), n) is an error, not an out-of-memory crash.
		expr.DisableBuiltin("repeat"),
		expr.Function("repeat", func(args ...any) (any, error) {
			s, n := args[0].(string), args[1].(int)
			if n < 0 {
				return nil, fmt.Errorf("repeat: negative count %d", n)
			}
			if n > 0 && len(s) > maxStringResult/n {
				return nil, fmt.Errorf("repeat: the result would be longer than %d bytes", maxStringResult)
			}
			return strings.Repeat(s, n), nil
		}, new(func(string, int) string)),
		expr.Function("blank", func(args ...any) (any, error) {
			switch v := args[0].(type) {
			case nil:
				return true, nil
			case string:
				return strings.TrimSpace(v) == "", nil
			}
			return false, nil
		}, new(func(any) bool)),
	}, QuoteFunctions()...)
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil
	case json.Number:
		return exactFloat(x) // a number a float would round is not one amount can take
	}
	return 0, false
}

// exprKind says what an expression is for, for messages and result checks.
type exprKind struct {
	key     string // the YAML key: when, to_target, to_source
	boolean bool
	want    string // JSON type the result must fit, "" for any
	// over names the record the expression sees ("the Shop Item record (the target)"); other is
	// the record on the other side, so that a property of the wrong side is explained.
	over       string
	other      *schema.Property
	otherLabel string
}

var unknownName = regexp.MustCompile(`^unknown name (\S+)`)

// compileExpr compiles the expression in s against env, reporting problems at their position
// inside the YAML file.
func compileExpr(s config.Str, env *Env, kind exprKind, ds *diag.Diagnostics) *vm.Program {
	src := s.Value
	if src == "" {
		return nil // the format schema reports an empty expression
	}
	if strings.TrimSpace(src) == "" {
		ds.Errorf(s.Range, "%s must not be blank", kind.key)
		return nil
	}
	// expr-lang's parser recurses per nesting level: a hostile depth must be refused before it
	// can overflow the stack.
	if off := nestingTooDeep(src); off >= 0 {
		ds.Errorf(rangeInExpr(s, off, off+1), "%s: the expression nests more than %d levels deep", kind.key, MaxExprNesting).
			WithDetail("Brackets and prefix operators (-, !, not) each open a level; write the expression with fewer levels, or split it with let.")
		return nil
	}
	// The steps of expr.Compile, with the environment's shared configuration and the member
	// check between parsing and type checking.
	config := env.config(kind.boolean)
	tree, err := parser.ParseWithConfig(src, config)
	if err != nil {
		reportExprError(s, kind, err, env, ds)
		return nil
	}
	if checkMembers(s, tree.Node, env, kind, ds) || checkCalls(s, tree.Node, env, kind, ds) {
		return nil
	}
	if _, err := new(checker.Checker).PatchAndCheck(tree, config); err != nil {
		reportExprError(s, kind, err, env, ds)
		return nil
	}
	result := tree.Node.Type()
	if config.Optimize {
		if err := optimizer.Optimize(&tree.Node, config); err != nil {
			reportExprError(s, kind, err, env, ds)
			return nil
		}
	}
	// Everything the expression builds is charged to the budget of its evaluation: the
	// rewritten tree is typed again for the compiler.
	if budgeted(&tree.Node) {
		if _, err := new(checker.Checker).Check(tree, config); err != nil {
			reportExprError(s, kind, err, env, ds)
			return nil
		}
	}
	prog, err := compiler.Compile(tree, config)
	if err != nil {
		reportExprError(s, kind, err, env, ds)
		return nil
	}
	if kind.want != "" {
		checkResultType(s, result, kind, ds)
	}
	return prog
}

func reportExprError(s config.Str, kind exprKind, err error, env *Env, ds *diag.Diagnostics) {
	var fe *file.Error
	r := s.Range
	msg := err.Error()
	if errors.As(err, &fe) {
		msg = fe.Message
		r = rangeInExpr(s, fe.From, fe.To)
	}
	raw := msg
	msg = readableExprMessage(msg)
	switch m := unknownName.FindStringSubmatch(msg); {
	case m != nil:
		d := ds.Errorf(r, "%s: unknown property %q%s", kind.key, m[1], diag.DidYouMean(m[1], varNames(env)))
		if kind.other != nil && kind.other.Properties[m[1]] != nil && kind.over != "" {
			d.WithDetail("%s is an expression over %s; %q is a property of the %s.", kind.key, kind.over, m[1], kind.otherLabel)
		}
	case strings.HasPrefix(raw, "expected bool"):
		got := strings.TrimPrefix(raw, "expected bool, but got ")
		if name, ok := goKindNames[got]; ok {
			got = name
		}
		d := ds.Errorf(s.Range, "%s must be a boolean expression: it gives %s", kind.key, got)
		switch src := strings.TrimSpace(s.Value); {
		case len(src) > 40:
			d.WithDetail("Compare the value with something, e.g. (...) > 0, or use a boolean property.")
		case got == "a string":
			d.WithDetail("Compare the value with something, e.g. %s == \"yes\", or use a boolean property.", src)
		default:
			d.WithDetail("Compare the value with something, e.g. %s > 0, or use a boolean property.", parenthesize(src))
		}
	default:
		d := ds.Errorf(r, "%s: %s", kind.key, msg)
		if kind.boolean && strings.Contains(msg, "mismatched type") {
			d.WithDetail("A when expression is a condition over the source record's properties, e.g. stock > 0 or status == \"1\"; check the property's type in the entity schema.")
		}
	}
}

var (
	unexpectedToken = regexp.MustCompile(`unexpected token [A-Za-z]+\("((?:[^"\\]|\\.)*)"\)`)
	goTypeWord      = regexp.MustCompile(`\b(int|int64|float64|bool|string|map\[string\]interface \{\}|\[\]interface \{\})\b`)
)

// readableExprMessage puts expr-lang's wording in the terms of the mapping language: JSON
// types instead of Go types, the offending text instead of the token kind, sentences instead
// of Go's phrases, and a position as a column.
func readableExprMessage(msg string) string {
	msg = strings.ReplaceAll(msg, "unexpected token EOF", "unexpected end of the expression")
	msg = unexpectedToken.ReplaceAllString(msg, `unexpected "$1"`)
	rewritten := false
	for _, r := range exprRewrites {
		if m := r.re.FindStringSubmatchIndex(msg); m != nil {
			var parts []any
			for i := 2; i < len(m); i += 2 {
				part := ""
				if m[i] >= 0 { // an optional group that did not match is empty
					part = msg[m[i]:m[i+1]]
				}
				if slices.Contains(r.types, i/2) {
					part = withArticle(jsonTypeWords(part))
				}
				parts = append(parts, part)
			}
			msg = msg[:m[0]] + fmt.Sprintf(r.format, parts...) + msg[m[1]:]
			rewritten = true
			break
		}
	}
	if !rewritten {
		msg = jsonTypeWords(msg)
	}
	// expr-lang names the last overload it tried; dataflow's functions take any of theirs.
	if m := ownOverloads.FindStringSubmatch(msg); m != nil {
		msg = m[1] + " takes a number, an integer or a numeric string, not " + m[2]
	}
	if m := exprPosition.FindStringSubmatch(msg); m != nil {
		at := " (at column " + m[2] + ")"
		if m[1] != "1" {
			at = " (at line " + m[1] + ", column " + m[2] + ")"
		}
		msg = strings.TrimSuffix(msg, m[0]) + at
	}
	return msg
}

// jsonTypeWords names Go's types in a message by their JSON types.
func jsonTypeWords(msg string) string {
	return goTypeWord.ReplaceAllStringFunc(msg, func(t string) string {
		switch t {
		case "int", "int64":
			return "integer"
		case "float64":
			return "number"
		case "bool":
			return "boolean"
		case "map[string]interface {}":
			return "mapping"
		case "[]interface {}":
			return "list"
		}
		return t
	})
}

// exprRewrites turn expr-lang's messages into sentences; the parts whose numbers are in types
// are types, which get an article.
var exprRewrites = []struct {
	re     *regexp.Regexp
	format string
	types  []int
}{
	{regexp.MustCompile(`^invalid operation: (\S+) \(mismatched types (.+) and (.+)\)`), "cannot apply %s to %s and %s", []int{2, 3}},
	// A json.Number is a number no integer or float holds exactly (an id of 20 digits).
	{regexp.MustCompile(`^invalid operation: (?:json\.Number (\S+) [^()]+|[^()]+ (\S+) json\.Number)`), "cannot apply %s%s to a number that no integer or float holds exactly; string(...) gives its digits", nil},
	{regexp.MustCompile(`^interface conversion: interface \{\} is json\.Number, not [^()]+`), "a number that no integer or float holds exactly cannot be used here; string(...) gives its digits", nil},
	{regexp.MustCompile(`^interface conversion: interface \{\} is ([^()]+), not ([^()]+)`), "%s is used where %s is expected", []int{1, 2}},
	{regexp.MustCompile(`^cannot use (.+) as argument \(type (.+)\) to call (\S+)\s*`), "%[3]s takes %[2]s here, not %[1]s", []int{1, 2}},
	{regexp.MustCompile(`^invalid argument for (\S+) \(type (.+)\)`), "%s cannot take %s", []int{2}},
	{regexp.MustCompile(`^predicate should return boolean \(got (.+)\)`), "the condition must give a boolean, not %s", []int{1}},
	{regexp.MustCompile(`^array elements can only be selected using an integer \(got (.+)\)`), "a list's elements are selected by an integer, not by %s", []int{1}},
	{regexp.MustCompile(`^type (.+)\[(.+)\] is undefined`), "%s cannot be indexed by %s", []int{1, 2}},
	{regexp.MustCompile(`^index out of range: (-?\d+) \(array length is (\d+)\)`), "index %s is out of range: the list has %s elements", nil},
	{regexp.MustCompile(`^(?:runtime error: )?integer divide by zero`), "an integer is divided by 0", nil},
	{regexp.MustCompile(`^compilation failed: expression exceeds maximum allowed nodes`), fmt.Sprintf("the expression is too long: it has more than %d parts (names, values, operators)", MaxExprNodes), nil},
}

var ownOverloads = regexp.MustCompile(`^(amount|decimal) takes .+ here, not (.+)$`)

// exprPosition is the position expr-lang appends to a run-time message: (line:column).
var exprPosition = regexp.MustCompile(` ?\((\d+):(\d+)\)$`)

// withArticle puts "a" or "an" before a type's name, "a" before a compound one's.
func withArticle(t string) string {
	switch t {
	case "integer":
		return "an integer"
	case "interface {}", "unknown":
		return "a value of any type"
	}
	if t != "" && strings.ContainsRune("aeiou", rune(t[0])) {
		return "an " + t
	}
	return "a " + t
}

// rangeInExpr maps rune offsets inside an expression to a range in the YAML file.
func rangeInExpr(s config.Str, from, to int) diag.Range {
	r := s.Range
	if s.Node == nil {
		return r
	}
	r.Start = s.Node.PosAt(from)
	if to > from {
		r.End = s.Node.PosAt(to)
	} else {
		r.End = diag.Pos{Line: r.Start.Line, Col: r.Start.Col + 1}
	}
	return r
}

func varNames(env *Env) []string {
	names := make([]string, 0, len(env.vars))
	for n := range env.vars {
		names = append(names, n)
	}
	return names
}

// checkMembers checks member chains on record variables (billingAddress.firstName) against the
// schema, which expr cannot do since nested objects are untyped maps to it. It reports true
// when it found a problem.
func checkMembers(s config.Str, root ast.Node, env *Env, kind exprKind, ds *diag.Diagnostics) bool {
	if env.Record == nil {
		return false
	}
	locals := map[string]bool{}
	ast.Find(root, func(n ast.Node) bool {
		if v, ok := n.(*ast.VariableDeclaratorNode); ok {
			locals[v.Name] = true
		}
		return false
	})
	found := false
	reported := map[int]bool{}
	ast.Find(root, func(n ast.Node) bool {
		m, ok := n.(*ast.MemberNode)
		if !ok {
			return false
		}
		base, segs, locs := memberChain(m)
		if base == "" || locals[base] {
			return false
		}
		prop, ok := env.Record.Properties[base]
		if !ok || len(segs) == 0 {
			return false
		}
		_, perr := schema.Resolve(prop, strings.Join(segs, "."))
		if perr == nil {
			return false
		}
		loc := locs[perr.Segment]
		if reported[loc.From] {
			return false
		}
		reported[loc.From] = true
		found = true
		parent := base
		if perr.Parent != "" {
			parent += "." + perr.Parent
		}
		if perr.Scalar {
			what := "not an object"
			if perr.ParentType != "" {
				what = article(perr.ParentType)
			}
			ds.Errorf(rangeInExpr(s, loc.From, loc.To), "%s: %q has no property %q: it is %s", kind.key, parent, perr.Name, what)
		} else {
			ds.Errorf(rangeInExpr(s, loc.From, loc.To), "%s: %q has no property %q%s", kind.key, parent, perr.Name, diag.DidYouMean(perr.Name, perr.Known))
		}
		return false
	})
	return found
}

// checkCalls reports calls of functions that neither dataflow nor expr-lang has, which expr
// would call unknown properties. It reports true when it found one.
func checkCalls(s config.Str, root ast.Node, env *Env, kind exprKind, ds *diag.Diagnostics) bool {
	found := false
	ast.Find(root, func(n ast.Node) bool {
		call, ok := n.(*ast.CallNode)
		if !ok {
			return false
		}
		id, ok := call.Callee.(*ast.IdentifierNode)
		if !ok {
			return false
		}
		if _, ok := env.vars[id.Value]; ok {
			return false // a property: expr says it is not callable
		}
		c := env.config(kind.boolean)
		if c.Functions[id.Value] != nil && !strings.HasPrefix(id.Value, "$") || c.Builtins[id.Value] != nil {
			return false
		}
		names := functionNames(c)
		found = true
		loc := id.Location()
		ds.Errorf(rangeInExpr(s, loc.From, loc.From+len([]rune(id.Value))), "%s: unknown function %s%s", kind.key, id.Value, diag.DidYouMean(id.Value, names)).
			WithDetail("The functions are expr-lang's builtins (upper, join, int, ...) and dataflow's amount, decimal, blank and repeat.")
		return false
	})
	return found
}

// functionNames are the functions an expression may call: expr-lang's builtins and dataflow's
// own, not the budget's ($...).
func functionNames(c *conf.Config) []string {
	var names []string
	for name := range c.Functions {
		if !strings.HasPrefix(name, "$") {
			names = append(names, name)
		}
	}
	for name := range c.Builtins {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// memberChain unwinds a.b[0].c into base "a" and segments ["b", "c"] with their locations;
// index steps are skipped (paths step through lists). base is "" when the chain does not start
// at a plain variable or uses a computed member.
func memberChain(m *ast.MemberNode) (base string, segs []string, locs []file.Location) {
	var node ast.Node = m
	for {
		switch x := node.(type) {
		case *ast.MemberNode:
			switch p := x.Property.(type) {
			case *ast.StringNode:
				segs = append([]string{p.Value}, segs...)
				locs = append([]file.Location{p.Location()}, locs...)
			case *ast.IntegerNode:
			default:
				return "", nil, nil
			}
			node = x.Node
		case *ast.IdentifierNode:
			return x.Value, segs, locs
		default:
			return "", nil, nil
		}
	}
}

// checkResultType reports an expression whose result cannot be the property's JSON type.
func checkResultType(s config.Str, t reflect.Type, kind exprKind, ds *diag.Diagnostics) {
	if t == nil || fits(t, kind.want) {
		return
	}
	ds.Errorf(s.Range, "%s gives %s, but the property is %s", kind.key, goTypeName(t), article(kind.want)).
		WithDetail("%s", conversionHint(kind.want))
}

func fits(t reflect.Type, want string) bool {
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.String:
		return want == schema.String
	case reflect.Bool:
		return want == schema.Boolean
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return want == schema.Integer || want == schema.Number
	case reflect.Float32, reflect.Float64:
		return want == schema.Number
	case reflect.Slice, reflect.Array:
		return want == schema.Array
	case reflect.Map, reflect.Struct:
		return want == schema.Object || t.String() == "time.Time" && want == schema.String
	}
	return true
}

// parenthesize wraps an expression in parentheses unless it is a plain name.
func parenthesize(src string) string {
	for _, r := range src {
		if !(r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return "(" + src + ")"
		}
	}
	return src
}

var goKindNames = map[string]string{
	"int": "an integer", "int64": "an integer", "float64": "a number", "string": "a string",
	"[]interface {}": "a list", "map[string]interface {}": "a mapping",
}

func goTypeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map:
		return "a mapping"
	}
	return t.String()
}

func article(jsonType string) string {
	switch jsonType {
	case schema.Integer, schema.Array, schema.Object:
		return "an " + jsonType
	}
	return "a " + jsonType
}

func conversionHint(want string) string {
	switch want {
	case schema.String:
		return "Convert the result with string(...), or amount(...) for a money value."
	case schema.Integer:
		return "Convert the result with int(...)."
	case schema.Number:
		return "Convert the result with float(...) or decimal(...)."
	case schema.Boolean:
		return "Compare the value, e.g. status == \"active\"."
	}
	return "Give the property a `type` if the schema's type is wrong."
}
