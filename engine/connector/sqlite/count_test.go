package sqlite

import "testing"

func TestCount(t *testing.T) {
	c, path := openCRM(t)
	for _, entity := range []string{"Product", "Order"} {
		table := map[string]string{"Product": "products", "Order": "orders"}[entity]
		n, err := c.Count(ctx, entity)
		if err != nil {
			t.Fatal(err)
		}
		if want := sqlValue(t, path, "SELECT count(*) FROM "+table).(int64); int64(n) != want || n == 0 {
			t.Errorf("Count(%s) = %d, want %d", entity, n, want)
		}
	}
	if _, err := c.Count(ctx, "Nope"); err == nil {
		t.Error("Count of an unknown entity did not fail")
	}
}
