package mapping

import (
	"testing"

	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/schema"
)

// TestRunErrors: an expression that fails on a record's values fails the property with a
// message in the mapping language's terms, naming the property and the value, which the sync
// engine puts in the record's dead letter as it is.
func TestRunErrors(t *testing.T) {
	env := NewEnv(record())
	for _, tc := range []struct {
		src, want string
		typ       string
	}{
		{`int(name)`, `name→quantity: cannot convert "abc" to an integer`, schema.Integer},
		{`int(total.value)`, `name→quantity: cannot convert "12.5" to an integer`, schema.Integer},
		{`float(name)`, `name→quantity: cannot convert "abc" to a number`, schema.Number},
		{`int(fromJSON("true"))`, `name→quantity: cannot convert true to an integer`, schema.Integer},
		{`decimal(name)`, `name→quantity: decimal: "abc" is not a number`, schema.Number},
		{`amount(name)`, `name→quantity: amount: "abc" is not a number`, schema.String},
		{`5 % stock`, `name→quantity: an integer is divided by 0 (at column 3)`, schema.Integer},
		{`lines[3].sku`, `name→quantity: index 3 is out of range: the list has 1 elements (at column 6)`, schema.String},
		{`repeat(name, -1)`, `name→quantity: repeat: the count -1 is negative`, schema.String},
		// Numbers that are not finite go into no property (item: x / 0 writes +Inf today).
		{`price / 0`, `name→quantity: the result is +Inf, not a finite number (is something divided by 0?)`, schema.Number},
		{`-price / 0`, `name→quantity: the result is -Inf, not a finite number (is something divided by 0?)`, schema.Number},
		{`stock / stock`, `name→quantity: the result is NaN, not a number (is 0 divided by 0?)`, schema.Number},
		{`[1, price / 0]`, `name→quantity: the result holds +Inf at [1], not a finite number (is something divided by 0?)`, ""},
		{`{"a": {"b": [0 / stock]}}`, `name→quantity: the result holds NaN at .a.b[0], not a number (is 0 divided by 0?)`, ""},
		{`string(price / 0)`, `name→quantity: "+Inf" is not a number`, schema.Number},
	} {
		var ds diag.Diagnostics
		prog := compileExpr(str(tc.src), env, exprKind{key: "to_target"}, &ds)
		if prog == nil {
			t.Errorf("%s: %v", tc.src, ds)
			continue
		}
		p := &Property{Source: "name", Target: "quantity", TargetType: tc.typ, ToTarget: prog}
		rec := map[string]any{"name": "abc", "price": 1.5, "stock": int64(0), "active": true,
			"total": map[string]any{"value": "12.5"}, "lines": []any{map[string]any{"sku": "A"}}}
		v, err := p.TargetValue(rec, nil)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s = %#v, %v\n want %s", tc.src, v, err, tc.want)
		}
	}
}
