package mapping

// The rewrite of a checked expression tree that charges what it builds and the turns of its
// loops to the evaluation's budget (budget.go).

import (
	"reflect"

	"github.com/expr-lang/expr/ast"
)

// budgetPatcher rewrites a checked tree so that everything that builds a value or turns a loop
// is charged to the evaluation's budget ($budget): string +, ranges, the builtins that build,
// literals, method calls, the turns of loops. It records whether it rewrote anything: a tree
// that builds nothing needs no budget.
type budgetPatcher struct {
	patched bool
	inLoop  map[ast.Node]bool // the nodes inside a loop's predicate, where reading is charged
}

func (p *budgetPatcher) call(at ast.Node, name string, args ...ast.Node) ast.Node {
	p.patched = true
	callee := &ast.IdentifierNode{Value: name}
	b := &ast.IdentifierNode{Value: budgetVar}
	callee.SetLocation(at.Location())
	b.SetLocation(at.Location())
	n := &ast.CallNode{Callee: callee, Arguments: append([]ast.Node{b}, args...)}
	n.SetLocation(at.Location())
	return n
}

// scanningOperators read their operands whole.
var scanningOperators = map[string]bool{
	"==": true, "!=": true, "<": true, ">": true, "<=": true, ">=": true, "in": true,
	"contains": true, "startsWith": true, "endsWith": true, "matches": true,
}

// scan wraps a value read inside a loop in $scan, unless it is short by its nature: a number,
// a boolean, a short literal.
func (p *budgetPatcher) scan(n ast.Node) ast.Node {
	switch x := n.(type) {
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.NilNode:
		return n
	case *ast.StringNode:
		if len(x.Value) < scanBytesPerStep {
			return n
		}
	}
	if t := n.Type(); t != nil {
		switch t.Kind() {
		case reflect.Int, reflect.Int64, reflect.Float64, reflect.Bool:
			return n
		}
	}
	return p.call(n, "$scan", n)
}

func (p *budgetPatcher) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.BinaryNode:
		if p.inLoop[n] && scanningOperators[n.Operator] {
			n.Left, n.Right = p.scan(n.Left), p.scan(n.Right)
		}
		switch n.Operator {
		case "+":
			if t := n.Type(); t == nil || t.Kind() == reflect.String || t.Kind() == reflect.Interface {
				*node = p.call(n, "$add", n.Left, n.Right)
			}
		case "..":
			*node = p.call(n, "$range", n.Left, n.Right)
		}
	case *ast.BuiltinNode:
		if keep, ok := closureBuiltins[n.Name]; ok {
			step := "$step"
			if keep {
				step = "$step_keep"
			}
			if len(n.Arguments) > 0 {
				n.Arguments[0] = p.call(n.Arguments[0], "$loop", n.Arguments[0])
			}
			for _, a := range n.Arguments {
				if pr, ok := a.(*ast.PredicateNode); ok {
					pr.Node = p.call(pr.Node, step, pr.Node)
				}
			}
			if n.Map != nil {
				n.Map = p.call(n.Map, "$step_keep", n.Map)
			}
			return
		}
		switch n.Name {
		case "int", "float": // dataflow's conversions, whose errors name the value
			*node = p.call(n, "$"+n.Name, n.Arguments...)
			return
		}
		if _, ok := builtinCosts[n.Name]; ok {
			*node = p.call(n, "$"+n.Name, n.Arguments...)
			return
		}
		if p.inLoop[n] {
			for i, a := range n.Arguments {
				n.Arguments[i] = p.scan(a)
			}
		}
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok {
			switch id.Value {
			case "repeat":
				*node = p.call(n, "$repeat", n.Arguments...)
				return
			case "amount", "decimal", "blank":
				return // dataflow's own: short results
			}
		}
		*node = p.call(n, "$charge", n)
	case *ast.ArrayNode, *ast.MapNode:
		*node = p.call(n, "$charge", n)
	}
}

// budgeted rewrites a checked tree to charge the evaluation's budget (see budgetPatcher) and
// reports whether it did; the tree must then be checked again.
func budgeted(root *ast.Node) bool {
	p := &budgetPatcher{inLoop: map[ast.Node]bool{}}
	ast.Find(*root, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.PredicateNode:
			ast.Find(x.Node, func(in ast.Node) bool { p.inLoop[in] = true; return false })
		case *ast.BuiltinNode:
			if x.Map != nil {
				ast.Find(x.Map, func(in ast.Node) bool { p.inLoop[in] = true; return false })
			}
		}
		return false
	})
	ast.Walk(root, p)
	if !p.patched {
		return false
	}
	decl := &ast.VariableDeclaratorNode{
		Name:  budgetVar,
		Value: &ast.CallNode{Callee: &ast.IdentifierNode{Value: "$budget_new"}},
		Expr:  *root,
	}
	decl.SetLocation((*root).Location())
	*root = decl
	return true
}
