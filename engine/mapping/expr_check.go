package mapping

// The checks of a compiled expression that expr-lang does not make: member chains against the
// entity schema, calls of known functions, and the type of the result against its property.

import (
	"reflect"
	"slices"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/schema"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
)

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
