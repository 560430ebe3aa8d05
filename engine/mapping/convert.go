package mapping

import (
	"encoding/json"
	"fmt"
	"github.com/dataflow-sync/dataflow/internal/jsontext"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// EvalError is an error of a value inside an expression, worded for the user: it replaces
// expr-lang's message (and its position) in what a record's dead letter says.
type EvalError struct {
	Msg string
}

func (e *EvalError) Error() string { return e.Msg }

func cannotConvert(v any, to string) error {
	return &EvalError{Msg: fmt.Sprintf("cannot convert %s to %s", Canonical(v), to)}
}

// toInt is the expressions' int(x): an integer as it is, a number truncated, a text of an
// integer; anything else fails with the value named. expr-lang's own says "invalid operation:
// int(abc)".
func toInt(v any) (any, error) {
	switch x := v.(type) {
	case int:
		return x, nil
	case int64:
		return int(x), nil
	case int32:
		return int(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) >= 1<<63 {
			return nil, cannotConvert(v, "an integer")
		}
		return int(x), nil
	case float32:
		return toInt(float64(x))
	case string:
		i, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil {
			return nil, cannotConvert(v, "an integer")
		}
		return i, nil
	case json.Number:
		i, err := strconv.ParseInt(string(x), 10, 64)
		if err != nil {
			return nil, &EvalError{Msg: fmt.Sprintf("cannot convert %s to an integer: it cannot be held exactly", x)}
		}
		return int(i), nil
	}
	return nil, cannotConvert(v, "an integer")
}

// toFloat64 is the expressions' float(x): a number, or the text of a finite number.
func toFloat64(v any) (any, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case int32:
		return float64(x), nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, cannotConvert(v, "a number")
		}
		return f, nil
	case json.Number:
		f, ok := exactFloat(x)
		if !ok {
			return nil, &EvalError{Msg: fmt.Sprintf("cannot convert %s to a number: it cannot be held exactly", x)}
		}
		return f, nil
	}
	return nil, cannotConvert(v, "a number")
}

// exactFloat gives the float64 a JSON number's text denotes when the float holds it exactly:
// when the float's shortest decimal is that number (0.1 and 1.50 it holds, 10000000000000000001
// it does not: it would be 1e19).
func exactFloat(n json.Number) (float64, bool) { return jsontext.ExactFloat(string(n)) }

// maxExactExponent bounds the exponents of the numbers computed exactly: 1e999999999 would take
// big.Rat gigabytes. Such a number is compared as its text, and no property holds it exactly.
const maxExactExponent = 400

// ratOf is a JSON number's exact value, when its exponent is within maxExactExponent.
func ratOf(n json.Number) (*big.Rat, bool) {
	s := string(n)
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
		if err != nil || e > maxExactExponent || e < -maxExactExponent {
			return nil, false
		}
	}
	return new(big.Rat).SetString(s)
}
