package sqlite

// Values: how a SQLite value becomes a record value and back. A record holds only nil, bool,
// int64, float64, string, []any and map[string]any (connector.Record); SQLite holds NULL,
// INTEGER, REAL, TEXT and BLOB. The mapping keeps what SQLite stores and adds only what the
// column's declared type or the entity schema says it means:
//
//	NULL                      nil, and nil is written as NULL
//	INTEGER, REAL             int64, float64, written back as they are (never formatted), so
//	                          0.99 and 19.9 round-trip exactly
//	TEXT                      string; DATETIME columns stay text
//	BLOB                      standard base64 text, the way JSON carries bytes; a string
//	                          written to a column declared BLOB is decoded from base64
//	BOOLEAN/BOOL column,      bool (0/1, "0"/"1", "true"/"false"); true and false are written
//	or boolean in the schema  as 1 and 0 to any column
//	object/array in the       the column holds JSON text: decoded on read, written as compact
//	schema                    JSON with sorted keys; an object patch merges into the stored one

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/schema"
	"github.com/dataflow-sync/dataflow/internal/jsontext"
)

// kind is what a column's values mean beyond their storage class.
type kind int

const (
	plain   kind = iota
	boolean      // 0/1 are false/true
	blob         // bytes, base64 in records
	jsonObj      // JSON text of an object
	jsonArr      // JSON text of an array (or of any JSON value the schema allows)
)

func (k kind) json() bool { return k == jsonObj || k == jsonArr }

// kindOf decides a column's kind from its declared type and its property in the entity schema
// (nil when there is none). The schema wins: it is what the engine maps against.
func kindOf(declared string, p *schema.Property) kind {
	if p != nil && !p.Has(schema.String) {
		switch {
		case p.Has(schema.Object):
			return jsonObj
		case p.Has(schema.Array):
			return jsonArr
		case p.Type() == schema.Boolean:
			return boolean
		}
	}
	if t, _ := schema.TypeOfDeclared(declared); t == schema.Boolean {
		return boolean
	}
	if strings.Contains(strings.ToUpper(declared), "BLOB") {
		return blob
	}
	return plain
}

// fromSQL turns a value as go-sqlite3 returns it for an expression without a declared type
// (int64, float64, string, []byte or nil) into a record value. A value kept as it is is
// returned as v, not as x: converting x back to an interface would allocate it again.
func fromSQL(k kind, v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case int64:
		if k == boolean && (x == 0 || x == 1) {
			return x == 1
		}
	case float64:
		if k == boolean && (x == 0 || x == 1) {
			return x == 1
		}
	case string:
		switch {
		case k.json():
			if d, err := decodeJSON([]byte(x)); err == nil {
				return d
			}
		case k == boolean:
			switch strings.ToLower(x) {
			case "1", "true":
				return true
			case "0", "false":
				return false
			}
		}
	case []byte:
		if k.json() {
			if d, err := decodeJSON(x); err == nil {
				return d
			}
		}
		return base64.StdEncoding.EncodeToString(x)
	}
	return v
}

// toSQL turns a record value into a value to bind for a column of kind k.
func toSQL(k kind, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if k.json() {
		b, err := jsontext.Marshal(v)
		if err != nil {
			return nil, err
		}
		return string(b), nil
	}
	switch x := v.(type) {
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case string:
		if k == blob {
			b, err := base64.StdEncoding.DecodeString(x)
			if err != nil {
				return nil, fmt.Errorf("the column holds bytes: write them as standard base64 text (%v)", err)
			}
			return b, nil
		}
		return v, nil // v, not x: no new allocation
	case []byte:
		return v, nil
	case map[string]any, []any:
		b, err := jsontext.Marshal(x)
		if err != nil {
			return nil, err
		}
		return string(b), nil
	}
	return number(v)
}

// number normalizes a Go number to int64 or float64. float32 goes through its shortest decimal
// form, so float32(0.99) is written as 0.99 and not as 0.9900000095367432. An int64 or a
// float64 is returned as v itself (no new allocation).
func number(v any) (any, error) {
	switch x := v.(type) {
	case int64:
		return v, nil
	case int:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint:
		return unsigned(uint64(x))
	case uint64:
		return unsigned(x)
	case float32:
		f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
		if err := finite(f); err != nil {
			return nil, err
		}
		return f, nil
	case float64:
		if err := finite(x); err != nil {
			return nil, err
		}
		return v, nil
	case json.Number:
		return jsonNumber(x)
	}
	return nil, fmt.Errorf("cannot store a value of type %T", v)
}

func unsigned(u uint64) (any, error) {
	if u > math.MaxInt64 {
		return nil, fmt.Errorf("%d does not fit a SQLite integer", u)
	}
	return int64(u), nil
}

func finite(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("%v is not a number JSON can hold", f)
	}
	return nil
}

// jsonNumber is a JSON number written to a column: an integer when the text is one and fits,
// else a float64 when that holds exactly the same decimal ("19.9" is 19.9). Any other number
// (10000000000000000001, an id from an API) is refused: SQLite holds a number as a 64-bit
// integer or a double, and a rounded id would be another record's.
func jsonNumber(n json.Number) (any, error) {
	switch v := jsontext.Number(string(n)).(type) {
	case int64, float64:
		return v, nil
	}
	if _, err := strconv.ParseFloat(string(n), 64); err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, fmt.Errorf("%q is not a number", n)
	}
	return nil, fmt.Errorf("%s cannot be held exactly by a SQLite number (a 64-bit integer or a double); map it to a TEXT column as a string", n)
}

// jsonValue is a number of a JSON column as the engine holds it: exact (jsontext.Number).
func jsonValue(n json.Number) (any, error) {
	if _, err := strconv.ParseFloat(string(n), 64); err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, fmt.Errorf("%q is not a number", n)
	}
	return jsontext.Number(string(n)), nil
}

// decodeJSON decodes one JSON value into record values (numbers as int64 or float64): by
// decodeFast when it can, else with encoding/json (decodeJSONStd), whose results and errors
// are what it always returns.
func decodeJSON(b []byte) (any, error) {
	if v, ok := decodeFast(b); ok {
		return v, nil
	}
	return decodeJSONStd(b)
}

// decodeJSONStd decodes one JSON value with encoding/json.
func decodeJSONStd(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("text after the JSON value")
	}
	return normalize(v)
}

func normalize(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		return jsonValue(x)
	case map[string]any:
		for k, e := range x {
			n, err := normalize(e)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
	case []any:
		for i, e := range x {
			n, err := normalize(e)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
	}
	return v, nil
}

// mergeObject applies a nested patch to a stored object: members of patch replace those of
// stored, except that an object member patches a stored object member. Arrays are replaced;
// null is stored as null (an explicit clear), not removed. stored is not modified.
func mergeObject(stored any, patch map[string]any) map[string]any {
	base, _ := stored.(map[string]any)
	out := make(map[string]any, len(base)+len(patch))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range patch {
		if p, ok := v.(map[string]any); ok {
			if _, ok := out[k].(map[string]any); ok {
				out[k] = mergeObject(out[k], p)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// idString is the text form of an id, as the engine compares ids: 42, "ALFKI", 1.5.
func idString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case []byte:
		return string(x)
	}
	if n, err := number(v); err == nil {
		return idString(n)
	}
	return fmt.Sprint(v)
}

// newTextID is the id of a record created without one in a text id column
// (connector.NewTextID: led by the time, so that the inserts of a run append to the indexes).
func newTextID() string { return connector.NewTextID(time.Now()) }
