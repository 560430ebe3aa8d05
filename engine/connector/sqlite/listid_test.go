package sqlite

import (
	"testing"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

var _ connector.ListIdentifier = (*conn)(nil)

func TestListID(t *testing.T) {
	c, _ := openNorthwind(t)
	for _, tc := range []struct{ entity, path, want string }{
		{"Order", "lines", "ProductID"}, // `lines: {table: Order Details, key: OrderID, id: ProductID}`
		{"Order", "ShipCity", ""},       // a column, not a list
		{"Product", "lines", ""},
		{"Nope", "lines", ""},
	} {
		if got := c.ListID(tc.entity, tc.path); got != tc.want {
			t.Errorf("ListID(%s, %s) = %q, want %q", tc.entity, tc.path, got, tc.want)
		}
	}
}
