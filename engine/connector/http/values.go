package httpconn

// Values: JSON response bodies decoded into the engine's values (integers exact as int64,
// other numbers float64), and dotted paths into them.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/dataflow-sync/dataflow/internal/jsontext"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/stamp"
)

// decodeJSON parses a body holding one JSON value. A truncated or malformed body is an error
// that says where it went wrong; the client's decode adds how the body starts.
func decodeJSON(body []byte) (any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errors.New("the response body is empty where JSON was expected")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		var se *json.SyntaxError
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			return nil, fmt.Errorf("the response is truncated JSON: it ends after %d bytes in the middle of a value", len(body))
		case errors.As(err, &se):
			return nil, fmt.Errorf("the response is not valid JSON: %s at byte %d", se.Error(), se.Offset)
		}
		return nil, fmt.Errorf("the response is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("the response is not valid JSON: more data after the value at byte %d", dec.InputOffset())
	}
	return jsontext.Normalize(v), nil
}

// maxRedacted bounds the part of a body redacted to show its start in a message.
const maxRedacted = 1 << 20

// excerpt describes the start of a body for an error message. The body is redacted before it
// is cut, so that no part of a secret the server echoed shows.
func excerpt(body []byte, red *redactor) string {
	const n = 60
	s := red.text(string(body[:min(len(body), maxRedacted)]))
	if len(s) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return fmt.Sprintf("it starts %q...", s[:cut])
	}
	return fmt.Sprintf("the body is %q", s)
}

// at returns the value at a dotted path ("pagination.nextPageCursor", "errors.0.message");
// "" is the value itself. found is false when a step is missing.
func at(v any, path string) (any, bool) {
	if path == "" {
		return v, true
	}
	for _, seg := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			next, ok := x[seg]
			if !ok {
				return nil, false
			}
			v = next
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// idText is the text of an id value, as the engine compares ids: a number beyond int64 and
// float64 is its exact text.
func idText(v any) string {
	switch x := v.(type) {
	case map[string]any, []any:
		return ""
	case json.Number:
		return string(x)
	}
	return mapping.IDString(v)
}

// laterOrEqual reports whether the updated value v is at or after since, compared as stamps
// (engine/stamp: times as instants, numbers as numbers), as the engine compares watermarks. A
// value that cannot be compared with since (not a stamp, or a time against a number) counts as
// later: an incremental read leaves out only records it knows are older, and the engine judges
// the others.
func laterOrEqual(v, since string) bool {
	c, err := stamp.Compare(v, since)
	return err != nil || c >= 0
}

// records returns the list of records at path in a response body.
func records(body any, path string) ([]map[string]any, error) {
	v, ok := at(body, path)
	where := "the response body"
	if path != "" {
		where = fmt.Sprintf("%q in the response", path)
	}
	switch {
	case !ok:
		d := ""
		if m, isMap := body.(map[string]any); isMap && !strings.Contains(path, ".") {
			d = "; it has " + keyList(m)
		}
		return nil, fmt.Errorf("the response has no %q%s", path, d)
	case v == nil && path != "":
		return nil, nil // "products": null, an empty page
	case v == nil:
		return nil, fmt.Errorf("%s is null, not a list of records", where)
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s is %s, not a list of records", where, resultKind(v))
	}
	out := make([]map[string]any, 0, len(list))
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("item %d of %s is %s, not a record (an object)", i, where, resultKind(e))
		}
		out = append(out, m)
	}
	return out, nil
}

// keyList names an object's keys for a message.
func keyList(m map[string]any) string {
	if len(m) == 0 {
		return "no keys"
	}
	keys := slices.Sorted(maps.Keys(m))
	if len(keys) > 10 {
		keys = append(keys[:10], "...")
	}
	return strings.Join(keys, ", ")
}

// maxJSONDepth bounds the nesting of a body an expression gives.
const maxJSONDepth = 256

// jsonValue returns an expression's value in a form encoding/json encodes: objects whose keys
// are not typed as text (fromPairs and other builtins give map[any]any, possibly inside lists
// and other objects) become map[string]any, recursively. A key that is not text is an error,
// as JSON has no other keys.
func jsonValue(v any, depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, fmt.Errorf("the value nests deeper than %d levels", maxJSONDepth)
	}
	switch x := v.(type) {
	case nil, string, bool, int, int64, float64, json.Number, time.Time, time.Duration:
		return v, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			c, err := jsonValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case []any:
		if x == nil {
			return v, nil
		}
		out := make([]any, len(x))
		for i, e := range x {
			c, err := jsonValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map:
		if rv.IsNil() {
			return v, nil
		}
		out := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			k := it.Key()
			if k.Kind() == reflect.Interface {
				k = k.Elem()
			}
			if !k.IsValid() || k.Kind() != reflect.String {
				var key any
				if k.IsValid() {
					key = k.Interface()
				}
				return nil, fmt.Errorf("an object has the key %s, which is %s: the keys of a JSON object are text (write the key in quotes, or string(key))", keyText(key), resultKind(key))
			}
			c, err := jsonValue(it.Value().Interface(), depth+1)
			if err != nil {
				return nil, err
			}
			out[k.String()] = c
		}
		return out, nil
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && (rv.IsNil() || rv.Type().Elem().Kind() == reflect.Uint8) {
			return v, nil
		}
		out := make([]any, rv.Len())
		for i := range out {
			c, err := jsonValue(rv.Index(i).Interface(), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	}
	return v, nil
}

// keyText shows a key for a message.
func keyText(k any) string {
	if k == nil {
		return "null"
	}
	s := []rune(fmt.Sprint(k))
	if len(s) > 40 {
		return string(s[:37]) + "..."
	}
	return string(s)
}
