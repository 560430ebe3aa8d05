package mapping

// The canonical form as it was written before it was made faster (sorting a key slice per
// object, then looking every key up): the reference that today's must match byte for byte,
// since stored bases and record digests are made of it.

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

func refCanonical(v any) []byte { return refAppendCanonical(nil, v) }

func refAppendCanonical(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case bool:
		return strconv.AppendBool(dst, x)
	case int:
		return strconv.AppendInt(dst, int64(x), 10)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case float64:
		return refAppendNumber(dst, x)
	case json.Number:
		return refAppendJSONNumber(dst, x)
	case string:
		return appendString(dst, x)
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = refAppendCanonical(dst, e)
		}
		return append(dst, ']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			dst = refAppendCanonical(dst, x[k])
		}
		return append(dst, '}')
	}
	enc, err := json.Marshal(v)
	if err != nil {
		enc, _ = json.Marshal(fmt.Sprint(v))
	}
	return append(dst, enc...)
}

func refAppendNumber(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.AppendInt(dst, int64(f), 10)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

func refAppendJSONNumber(dst []byte, n json.Number) []byte {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return strconv.AppendInt(dst, i, 10)
	}
	if f, ok := exactFloat(n); ok {
		return refAppendNumber(dst, f)
	}
	r, ok := ratOf(n)
	if !ok {
		return appendString(dst, string(n))
	}
	if r.IsInt() {
		return r.Num().Append(dst, 10)
	}
	return append(dst, strings.ToLower(string(n))...)
}
