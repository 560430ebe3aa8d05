package mapping

import (
	"reflect"
	"testing"
)

// Get reads a plain property without allocating (it runs for every record read: its updated
// stamp, its merge keys), and reads dotted paths, through objects and lists, as before.
func TestGetPaths(t *testing.T) {
	rec := map[string]any{
		"name":  "Kettle",
		"dims":  map[string]any{"w": int64(3)},
		"lines": []any{map[string]any{"sku": "a"}, map[string]any{"sku": "b"}},
	}
	for _, c := range []struct {
		path string
		want any
	}{
		{"name", "Kettle"},
		{"missing", nil},
		{"dims.w", int64(3)},
		{"dims.h", nil},
		{"name.x", nil},
		{"lines.sku", []any{"a", "b"}},
	} {
		if got := Get(rec, c.path); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Get(%q) = %#v, want %#v", c.path, got, c.want)
		}
	}
	if got := Get(nil, "name"); got != nil {
		t.Errorf("Get of a nil record = %#v, want nil", got)
	}
	if n := testing.AllocsPerRun(100, func() { _ = Get(rec, "name") }); n != 0 {
		t.Errorf("Get of a plain property allocates %.0f times, want 0", n)
	}
}
