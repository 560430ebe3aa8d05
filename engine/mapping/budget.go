package mapping

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/vm/runtime"
)

// The budget of one evaluation. Every string, list and map an expression builds is charged
// against it, whatever builds it (an operator, a builtin, a literal, a loop), and so is every
// turn of a loop: an expression over one record cannot take the memory or the time of the run.
const (
	// MaxEvalBytes bounds what one evaluation builds: the bytes of its strings, and
	// elementBytes per list element or map entry.
	MaxEvalBytes = 32 << 20
	// MaxEvalSteps bounds the work of one evaluation: the turns of its loops (map, filter, all,
	// reduce...) and the calls of the functions that build values, each a step.
	MaxEvalSteps = 1_000_000
	// maxValueDepth bounds the nesting of the values an evaluation turns into text or returns.
	maxValueDepth = 1000

	elementBytes = 16
	entryBytes   = 32

	scanBytesPerStep    = 512
	scanElementsPerStep = 8
	// loopBytes is what a loop takes of the machine beyond what it builds: expr-lang's VM keeps
	// one scope (about 160 bytes, in a slice that grows by doubling) per loop it ran, until the
	// evaluation ends.
	loopBytes = 512
)

// BudgetError says that an evaluation went past its budget.
type BudgetError struct {
	What string // "builds more than 32 MiB of strings, lists and maps"
}

func (e *BudgetError) Error() string {
	return "the expression " + e.What + " (the budget of one evaluation)"
}

var (
	errTooLarge = &BudgetError{What: fmt.Sprintf("builds more than %d MiB of strings, lists and maps", MaxEvalBytes>>20)}
	errTooLong  = &BudgetError{What: fmt.Sprintf("takes more than %d steps", MaxEvalSteps)}
	errTooDeep  = &BudgetError{What: fmt.Sprintf("builds a value nested more than %d levels deep", maxValueDepth)}
)

// budget is what one evaluation has spent. The expression's rewritten tree creates it first
// (let $budget = $budget_new()) and hands it to every budgeted operation.
type budget struct {
	bytes int64
	steps int64
}

// charge spends n bytes, failing once the evaluation has spent more than MaxEvalBytes. It is
// called before an operation builds a value whenever the value's size can be known first.
func (b *budget) charge(n int64) error {
	if n < 0 || n > MaxEvalBytes {
		return errTooLarge
	}
	b.bytes += n
	if b.bytes > MaxEvalBytes {
		return errTooLarge
	}
	return nil
}

// call counts a call of a function that builds a value as a step, then charges n bytes.
func (b *budget) call(n int64) error {
	if err := b.step(); err != nil {
		return err
	}
	return b.charge(n)
}

// scan counts the work of reading v as steps: a string's 512 bytes, a list's or map's 8 elements
// make a step, so that a loop that reads a long value on every turn (indexOf(s, x) over a
// 16 MB string, a million times) ends at the budget instead of running for hours.
func (b *budget) scan(v any) error {
	var n int64
	switch x := v.(type) {
	case string:
		n = int64(len(x)) / scanBytesPerStep
	case nil, bool, int, int64, float64:
		return nil
	default:
		n = int64(length(v)) / scanElementsPerStep
	}
	if n == 0 {
		return nil
	}
	b.steps += n
	if b.steps > MaxEvalSteps {
		return errTooLong
	}
	return nil
}

func (b *budget) step() error {
	b.steps++
	if b.steps > MaxEvalSteps {
		return errTooLong
	}
	return nil
}

const budgetVar = "$budget"

// budgetFunctions are the functions the rewritten tree calls. Each takes the evaluation's
// budget first.
func budgetFunctions() []expr.Option {
	opts := []expr.Option{
		expr.Function("$budget_new", func(...any) (any, error) { return &budget{}, nil }),
		// $add is expr's + for a node that may be a string concatenation: its size is charged
		// before it is built.
		expr.Function("$add", func(args ...any) (any, error) {
			b := args[0].(*budget)
			if l, ok := args[1].(string); ok {
				if r, ok := args[2].(string); ok {
					if err := b.call(int64(len(l)) + int64(len(r))); err != nil {
						return nil, err
					}
					return l + r, nil
				}
			}
			if err := b.step(); err != nil {
				return nil, err
			}
			return runtime.Add(args[1], args[2]), nil
		}),
		// $range is a..b, charged before the list is made.
		expr.Function("$range", func(args ...any) (any, error) {
			b := args[0].(*budget)
			lo, hi := runtime.ToInt(args[1]), runtime.ToInt(args[2])
			if hi >= lo {
				if err := b.charge((int64(hi) - int64(lo) + 1) * elementBytes); err != nil {
					return nil, err
				}
			}
			if err := b.step(); err != nil {
				return nil, err
			}
			return runtime.MakeRange(lo, hi), nil
		}),
		// $step is one turn of a loop, $step_keep one that adds an element to what the loop
		// builds (map, filter, groupBy, sortBy). Both give the turn's value.
		expr.Function("$step", func(args ...any) (any, error) {
			return args[1], args[0].(*budget).step()
		}),
		expr.Function("$step_keep", func(args ...any) (any, error) {
			b := args[0].(*budget)
			if err := b.step(); err != nil {
				return nil, err
			}
			return args[1], b.charge(elementBytes)
		}),
		// $scan is a value read inside a loop (an operand of ==, contains, in..., an argument
		// of indexOf, trim, len...): reading it is charged as steps.
		expr.Function("$scan", func(args ...any) (any, error) {
			return args[1], args[0].(*budget).scan(args[1])
		}),
		// $loop is the start of a loop over a list: it gives the list.
		expr.Function("$loop", func(args ...any) (any, error) {
			return args[1], args[0].(*budget).call(loopBytes)
		}),
		// $charge charges a value built by something whose size is only known after (a
		// literal, a method call): such values are small or bounded by the values they come
		// from, which were charged.
		expr.Function("$charge", func(args ...any) (any, error) {
			return args[1], args[0].(*budget).call(shallowSize(args[1]))
		}),
		expr.Function("$int", func(args ...any) (any, error) { return toInt(args[1]) }),
		expr.Function("$float", func(args ...any) (any, error) { return toFloat64(args[1]) }),
		expr.Function("$repeat", func(args ...any) (any, error) {
			b := args[0].(*budget)
			s, n := args[1].(string), runtime.ToInt(args[2])
			if n < 0 {
				return nil, &EvalError{Msg: fmt.Sprintf("repeat: the count %d is negative", n)}
			}
			if n > 0 && len(s) > MaxEvalBytes/n {
				return nil, errTooLarge
			}
			if err := b.call(int64(len(s)) * int64(n)); err != nil {
				return nil, err
			}
			return strings.Repeat(s, n), nil
		}),
	}
	for name, cost := range builtinCosts {
		f := builtin.Builtins[builtin.Index[name]]
		opts = append(opts, expr.Function("$"+name, func(args ...any) (any, error) {
			b, args := args[0].(*budget), args[1:]
			if err := b.step(); err != nil {
				return nil, err
			}
			for _, a := range args {
				if err := b.scan(a); err != nil {
					return nil, err
				}
			}
			if cost.before != nil {
				n, err := cost.before(args)
				if err != nil {
					return nil, err
				}
				if err := b.charge(n); err != nil {
					return nil, err
				}
			}
			out, err := callBuiltin(f, args)
			if err != nil || !cost.after {
				return out, err
			}
			n, err := deepSize(out)
			if err != nil {
				return nil, err
			}
			return out, b.charge(n)
		}))
	}
	return opts
}

// callBuiltin calls expr-lang's implementation of a builtin.
func callBuiltin(f *builtin.Function, args []any) (any, error) {
	switch {
	case f.Fast != nil && len(args) == 1:
		return f.Fast(args[0]), nil
	case f.Safe != nil:
		out, _, err := f.Safe(args...)
		return out, err
	case f.Func != nil:
		return f.Func(args...)
	}
	return nil, fmt.Errorf("%s cannot be called here", f.Name)
}

// builtinCost says how a builtin that builds a value is charged: before the call when the size
// of its result can be computed from its arguments first (it could be far larger than they
// are), after it when the result is at most a few times the size of its arguments.
type builtinCost struct {
	before func(args []any) (int64, error)
	after  bool
}

// builtinCosts lists expr-lang's builtins that build strings, lists or maps. The others (len,
// trim, first, abs, date...) build nothing that can grow.
var builtinCosts = map[string]builtinCost{
	"upper":      {after: true},
	"lower":      {after: true},
	"toBase64":   {after: true},
	"fromBase64": {after: true},
	// Decoding takes far more than the text: the text is charged 16 times before, what it
	// gives after.
	"fromJSON": {before: func(args []any) (int64, error) {
		s, _ := args[0].(string)
		return 16 * int64(len(s)), nil
	}, after: true},
	"split":      {before: splitCost},
	"splitAfter": {before: splitCost},
	"replace":    {before: replaceCost},
	"join":       {before: joinCost},
	"string":     {before: func(args []any) (int64, error) { return textSize(args[0], false) }},
	"toJSON":     {before: func(args []any) (int64, error) { return textSize(args[0], true) }},
	"keys":       {before: elementsCost(elementBytes)},
	"values":     {before: elementsCost(elementBytes)},
	"toPairs":    {before: elementsCost(3 * elementBytes)},
	"fromPairs":  {before: elementsCost(entryBytes)},
	"reverse":    {before: elementsCost(elementBytes)},
	"uniq":       {before: elementsCost(entryBytes)},
	"sort":       {before: elementsCost(elementBytes)},
	"median":     {before: elementsCost(elementBytes)},
	"take":       {before: elementsCost(elementBytes)},
	"concat": {before: func(args []any) (int64, error) {
		var n int64
		for _, a := range args {
			n += int64(length(a)) * elementBytes
		}
		return n, nil
	}},
	"flatten": {before: func(args []any) (int64, error) {
		n, err := leaves(args[0], 0, MaxEvalBytes/elementBytes+1)
		return n * elementBytes, err
	}},
}

// closureBuiltins are the builtins that loop over a list with a predicate; keeping ones build
// a list or map of what the loop turns give.
var closureBuiltins = map[string]bool{
	"all": false, "none": false, "any": false, "one": false, "find": false, "findIndex": false,
	"findLast": false, "findLastIndex": false, "count": false, "sum": false, "reduce": false,
	"filter": true, "map": true, "groupBy": true, "sortBy": true,
}

func elementsCost(per int64) func(args []any) (int64, error) {
	return func(args []any) (int64, error) { return int64(length(args[0])) * per, nil }
}

func splitCost(args []any) (int64, error) {
	s, _ := args[0].(string)
	sep, _ := args[1].(string)
	n := int64(utf8.RuneCountInString(s)) + 1
	if sep != "" {
		n = int64(strings.Count(s, sep)) + 1
	}
	return n * elementBytes, nil
}

func replaceCost(args []any) (int64, error) {
	s, _ := args[0].(string)
	old, _ := args[1].(string)
	repl, _ := args[2].(string)
	n := int64(utf8.RuneCountInString(s)) + 1
	if old != "" {
		n = int64(strings.Count(s, old))
	}
	if len(args) > 3 {
		if limit := int64(runtime.ToInt(args[3])); limit >= 0 && limit < n {
			n = limit
		}
	}
	return int64(len(s)) + n*int64(len(repl)), nil
}

func joinCost(args []any) (int64, error) {
	sep := ""
	if len(args) > 1 {
		sep, _ = args[1].(string)
	}
	var n int64
	add := func(s string) { n += int64(len(s)) + int64(len(sep)) }
	switch l := args[0].(type) {
	case []string:
		for _, s := range l {
			add(s)
		}
	case []any:
		for _, e := range l {
			s, _ := e.(string)
			add(s)
		}
	}
	return n, nil
}

// length is the number of elements of a list or entries of a map, 0 for anything else.
func length(v any) int {
	switch x := v.(type) {
	case []any:
		return len(x)
	case map[string]any:
		return len(x)
	case nil, string, bool, int, int64, float64:
		return 0
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map:
		return rv.Len()
	}
	return 0
}

// shallowSize is what building v itself took, its elements aside.
func shallowSize(v any) int64 {
	switch x := v.(type) {
	case string:
		return int64(len(x))
	case map[string]any:
		return int64(len(x)) * entryBytes
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Map {
		return int64(rv.Len()) * entryBytes
	}
	return int64(length(v)) * elementBytes
}

// deepSize is what building v and everything in it takes: for a value just built (fromJSON's),
// whose parts are not shared. It stops at the budget.
func deepSize(v any) (int64, error) {
	w := sizer{limit: MaxEvalBytes}
	w.deep(v, 0)
	return w.n, w.err
}

// textSize is the length of v's text (string's or toJSON's, indent for toJSON's indentation),
// computed before the text is made. Parts of v may be shared (a list of the same long string
// many times), so the walk stops as soon as the text would be too large: it takes at most
// MaxEvalBytes steps.
func textSize(v any, indent bool) (int64, error) {
	w := sizer{limit: MaxEvalBytes, indent: indent}
	w.text(v, 0)
	return w.n, w.err
}

// leaves counts the values flatten gives for v, up to limit.
func leaves(v any, depth int, limit int64) (int64, error) {
	w := sizer{limit: limit}
	w.leaves(v, depth)
	return w.n, w.err
}

type sizer struct {
	n, limit int64
	indent   bool
	err      error
}

func (w *sizer) over(depth int) bool {
	switch {
	case w.err != nil:
		return true
	case depth > maxValueDepth:
		w.err = errTooDeep
	case w.n > w.limit:
		w.err = errTooLarge
	}
	return w.err != nil
}

func (w *sizer) text(v any, depth int) {
	if w.over(depth) {
		return
	}
	sep := int64(1)
	if w.indent {
		sep += 2*int64(depth+1) + 1 // the newline, the indentation, the space after a colon
	}
	switch x := v.(type) {
	case nil, bool, int, int64, float64:
		w.n += 24
	case string:
		w.n += int64(len(x)) + 2
	case []any:
		w.n += 2
		for _, e := range x {
			w.n += sep
			if w.text(e, depth+1); w.err != nil {
				return
			}
		}
	case map[string]any:
		w.n += 2
		for k, e := range x {
			w.n += sep + int64(len(k)) + 3
			if w.text(e, depth+1); w.err != nil {
				return
			}
		}
	default:
		rv := reflect.ValueOf(v)
		switch rv.Kind() {
		case reflect.Slice, reflect.Array:
			w.n += 2
			for i := 0; i < rv.Len(); i++ {
				w.n += sep
				if w.text(rv.Index(i).Interface(), depth+1); w.err != nil {
					return
				}
			}
		case reflect.Map:
			w.n += 2
			it := rv.MapRange()
			for it.Next() {
				w.n += sep + 3
				w.text(it.Key().Interface(), depth+1)
				if w.text(it.Value().Interface(), depth+1); w.err != nil {
					return
				}
			}
		default:
			w.n += 64 // a time, a duration: short text
		}
	}
	w.over(depth)
}

func (w *sizer) deep(v any, depth int) {
	if w.over(depth) {
		return
	}
	switch x := v.(type) {
	case string:
		w.n += int64(len(x))
	case []any:
		w.n += int64(len(x)) * elementBytes
		for _, e := range x {
			if w.deep(e, depth+1); w.err != nil {
				return
			}
		}
	case map[string]any:
		for k, e := range x {
			w.n += entryBytes + int64(len(k))
			if w.deep(e, depth+1); w.err != nil {
				return
			}
		}
	default:
		w.n += shallowSize(v)
	}
	w.over(depth)
}

func (w *sizer) leaves(v any, depth int) {
	if w.over(depth) {
		return
	}
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if w.leaves(e, depth+1); w.err != nil {
				return
			}
		}
		return
	default:
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
			for i := 0; i < rv.Len(); i++ {
				if w.leaves(rv.Index(i).Interface(), depth+1); w.err != nil {
					return
				}
			}
			return
		}
	}
	w.n++
	w.over(depth)
}

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

// checkResult checks the value an evaluation gives before it goes into a record: every number
// in it is finite (x / 0 gives +Inf, which no property can hold), and it is not larger or more
// deeply nested than the budget allows, so that what the engine does with it is bounded too.
func checkResult(v any) error {
	w := sizer{limit: MaxEvalBytes / elementBytes}
	path, err := w.result(v, 0)
	if nf, ok := err.(notFinite); ok {
		if path == "" {
			return &EvalError{Msg: fmt.Sprintf("the result is %s", nf.Error())}
		}
		return &EvalError{Msg: fmt.Sprintf("the result holds %v at %s, %s", float64(nf), path, nf.reason())}
	}
	return err
}

// notFinite is a number no property can hold.
type notFinite float64

func (n notFinite) Error() string { return fmt.Sprintf("%v, %s", float64(n), n.reason()) }

func (n notFinite) reason() string {
	if math.IsNaN(float64(n)) {
		return "not a number (is 0 divided by 0?)"
	}
	return "not a finite number (is something divided by 0?)"
}

// result walks a result for checkResult and gives the path to a number that is not finite.
func (w *sizer) result(v any, depth int) (string, error) {
	w.n++
	if w.over(depth) {
		return "", w.err
	}
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", notFinite(x)
		}
	case float32:
		return w.result(float64(x), depth)
	case []any:
		for i, e := range x {
			if path, err := w.result(e, depth+1); err != nil {
				return "[" + strconv.Itoa(i) + "]" + path, err
			}
		}
	case []float64:
		for i, e := range x {
			if path, err := w.result(e, depth+1); err != nil {
				return "[" + strconv.Itoa(i) + "]" + path, err
			}
		}
	case map[string]any:
		for k, e := range x {
			if path, err := w.result(e, depth+1); err != nil {
				return "." + k + path, err
			}
		}
	}
	return "", nil
}
