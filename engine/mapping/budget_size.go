package mapping

// The sizes an evaluation's budget charges: of the values builtins build and take, and of an
// evaluation's result, which checkResult bounds before it goes into a record.

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
)

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
