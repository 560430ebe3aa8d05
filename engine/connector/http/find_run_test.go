package httpconn_test

// A run that links by merge criteria against an API with find: the engine looks the CRM's
// SKUs up with find requests (GET /items?sku=...) instead of indexing every item of the shop.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dataflow-sync/dataflow/internal/cli"
)

// shop is an API of items {id, sku, name}: a list that filters by ?sku= (repeated), and a get.
type shop struct {
	mu    sync.Mutex
	items []map[string]any
	finds [][]string // the sku values of each filtered list request
	lists int        // list requests without a filter
}

func (s *shop) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == "GET" && r.URL.Path == "/items":
		skus := r.URL.Query()["sku"]
		if len(skus) == 0 {
			s.lists++
		} else {
			s.finds = append(s.finds, skus)
		}
		out := []map[string]any{}
		for _, it := range s.items {
			if len(skus) == 0 || slices.Contains(skus, it["sku"].(string)) {
				out = append(out, it)
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"items": out})
	case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/items/"):
		for _, it := range s.items {
			if it["id"] == strings.TrimPrefix(r.URL.Path, "/items/") {
				json.NewEncoder(w).Encode(it)
				return
			}
		}
		w.WriteHeader(404)
		w.Write([]byte(`{"message": "no such item"}`))
	default:
		w.WriteHeader(405)
		w.Write([]byte(`{"message": "not allowed"}`))
	}
}

func TestRunLinksThroughFind(t *testing.T) {
	s := &shop{}
	for i := range 40 {
		sku := "OTHER-" + string(rune('A'+i%26)) + string(rune('a'+i/26))
		switch i {
		case 7:
			sku = "ESP-250"
		case 23:
			sku = "DEC-250"
		}
		s.items = append(s.items, map[string]any{"id": "it-" + string(rune('a'+i/26)) + string(rune('a'+i%26)), "sku": sku, "name": "Item " + sku})
	}
	srv := httptest.NewServer(s)
	defer srv.Close()

	dir := t.TempDir()
	files := map[string]string{
		"crm.sql": `CREATE TABLE products (id INTEGER PRIMARY KEY, sku TEXT NOT NULL, name TEXT NOT NULL);
INSERT INTO products VALUES (1, 'ESP-250', 'Item ESP-250'), (2, 'DEC-250', 'Item DEC-250'), (3, 'NEW-1', 'New');`,
		"mappings/systems/crm.yaml": `system: crm
name: CRM
connector: sqlite
path: crm.db
init: crm.sql
entities:
  Product: {table: products, id: id, schema: ../../schemas/product.json}
`,
		"schemas/product.json": `{"type": "object", "properties": {"id": {"type": "integer"}, "sku": {"type": "string"}, "name": {"type": "string"}}}`,
		"mappings/systems/shop.yaml": `system: shop
name: Shop
connector: http
base_url: ${SHOP_URL}
entities:
  Item:
    id: id
    schema: ../../schemas/item.json
    list: {path: /items, records: items}
    get: {path: "/items/{id}"}
    find: {by: [sku], path: /items, query: {sku: terms}, batch: 50, records: items}
`,
		"schemas/item.json": `{"type": "object", "properties": {"id": {"type": "string"}, "sku": {"type": "string"}, "name": {"type": "string"}}}`,
		"mappings/crm-to-shop.yaml": `dataflow: crm-to-shop
source: crm
target: shop
flows:
  - id: product-to-item
    source: Product
    target: Item
    create: never
    merge:
      - [{source: sku, target: sku}]
    properties:
      - {source: sku, target: sku}
      - {source: name, target: name}
`,
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	t.Setenv("SHOP_URL", srv.URL)
	var out, errb bytes.Buffer
	if code := cli.Run(context.Background(), []string{"run", "--json"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	var rep struct {
		Flows []struct {
			Merged  int `json:"merged"`
			Waiting int `json:"waiting"`
		} `json:"flows"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || len(rep.Flows) != 1 || rep.Flows[0].Merged != 2 || rep.Flows[0].Waiting != 1 {
		t.Fatalf("report %s (%v), want 2 merged and 1 waiting", out.String(), err)
	}
	var links bytes.Buffer
	if code := cli.Run(context.Background(), []string{"links"}, strings.NewReader(""), &links, &errb); code != 0 {
		t.Fatalf("links: exit %d\n%s", code, errb.String())
	}
	var pairs []string
	for _, line := range strings.Split(strings.TrimSpace(links.String()), "\n")[1:] {
		if f := strings.Fields(line); len(f) >= 3 {
			pairs = append(pairs, f[1]+"→"+f[2])
		}
	}
	if want := []string{"1→it-ah", "2→it-ax"}; !slices.Equal(pairs, want) {
		t.Errorf("links %q, want %q\n%s", pairs, want, links.String())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// One find for the batch's SKUs; the list is read for the run, not again to index it.
	if len(s.finds) != 1 || strings.Join(slices.Sorted(slices.Values(s.finds[0])), " ") != "DEC-250 ESP-250 NEW-1" || s.lists > 1 {
		t.Errorf("find requests %q and %d reads of the list: want one find of the CRM's three SKUs and at most one read", s.finds, s.lists)
	}
}
