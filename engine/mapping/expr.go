package mapping

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/schema"
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
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
