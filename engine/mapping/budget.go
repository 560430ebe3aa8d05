package mapping

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr"
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
	opts := append(buildingFunctions(), loopFunctions()...)
	for name, cost := range builtinCosts {
		opts = append(opts, expr.Function("$"+name, chargedBuiltin(builtin.Builtins[builtin.Index[name]], cost)))
	}
	return opts
}

// buildingFunctions charge what an operator builds: a budget, a concatenation, a range, a
// conversion, a repetition.
func buildingFunctions() []expr.Option {
	return []expr.Option{
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
}

// loopFunctions charge the turns of loops and the values read and built inside them.
func loopFunctions() []expr.Option {
	return []expr.Option{
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
	}
}

// chargedBuiltin is builtin f charged by its cost: a step, the reading of its arguments, and
// the size of what it builds, before or after the call.
func chargedBuiltin(f *builtin.Function, cost builtinCost) func(args ...any) (any, error) {
	return func(args ...any) (any, error) {
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
	}
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
