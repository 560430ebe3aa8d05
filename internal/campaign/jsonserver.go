package campaign

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"
)

// JSONServerTarget is the Custom CRM REST API of testdata/jsonserver (json-server) as the
// target: its products are the Things, reached through the http connector.
type JSONServerTarget struct {
	// Dir is testdata/jsonserver, with json-server installed in its node_modules.
	Dir string
	cmd *exec.Cmd
	url string
}

// Props implements Target: the CRM's product properties.
func (*JSONServerTarget) Props() [4]string {
	return [4]string{"sku", "name", "units_in_stock", "unit_price"}
}

var listening = regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)

// Setup starts json-server on a free 127.0.0.1 port with an empty database and writes the
// store's system file.
func (t *JSONServerTarget) Setup(ctx context.Context, dir string) ([]string, error) {
	db := filepath.Join(dir, "store.json")
	if err := os.WriteFile(db, []byte(`{"products": [], "customers": [], "orders": []}`), 0o644); err != nil {
		return nil, err
	}
	t.cmd = exec.Command("node", "server.js", "--port", "0", "--db", db)
	t.cmd.Dir = t.Dir
	t.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := t.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	t.cmd.Stderr = t.cmd.Stdout
	if err := t.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting json-server: %w", err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				ready <- m[1]
			}
		}
		close(ready)
	}()
	select {
	case u, ok := <-ready:
		if !ok {
			return nil, errors.New("json-server exited before it was ready (is it installed? cd testdata/jsonserver && npm ci)")
		}
		t.url = u
	case <-time.After(30 * time.Second):
		return nil, errors.New("json-server was not ready after 30s")
	}
	schema, err := filepath.Abs(filepath.Join(t.Dir, "..", "..", "schemas", "custom-crm", "product.json"))
	if err != nil {
		return nil, err
	}
	return []string{"STORE_URL=" + t.url}, writeFiles(dir, map[string]string{
		"mappings/systems/store.yaml": fmt.Sprintf(jsonServerStoreYAML, schema),
	})
}

// Stop stops json-server.
func (t *JSONServerTarget) Stop() error {
	if t.cmd == nil || t.cmd.Process == nil {
		return nil
	}
	_ = syscall.Kill(-t.cmd.Process.Pid, syscall.SIGKILL)
	return t.cmd.Wait()
}

// Side returns a client of the CRM's REST API.
func (t *JSONServerTarget) Side(ctx context.Context, dir string) (Side, error) {
	return &restSide{base: t.url, client: &http.Client{Timeout: 30 * time.Second}}, nil
}

const jsonServerStoreYAML = `system: store
name: Campaign Store (the Custom CRM REST API on json-server)
connector: http
base_url: ${STORE_URL}
entities:
  Thing:
    id: id
    updated: updated_at
    schema: %s
    list:
      path: /products
      query: {since: since, limit: "1000"}
      records: data
      page: {cursor: next_cursor, param: cursor}
    get: {path: /products, query: {ids: 'join(ids, ",")'}, batch: 100, records: data}
    create: {path: /products, body: record, result: "", idempotency_header: Idempotency-Key}
    update: {method: PATCH, body: record, path: "/products/{id}", result: ""}
    delete: {path: "/products/{id}"}
`

// restSide edits the CRM through its API, as another of its clients would.
type restSide struct {
	base   string
	client *http.Client
}

func (s *restSide) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, data)
	}
	if out != nil {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		return dec.Decode(out)
	}
	return nil
}

func (s *restSide) Create(ctx context.Context, it Item) error {
	price, err := strconv.ParseFloat(it.Price, 64)
	if err != nil {
		return err
	}
	return s.do(ctx, "POST", "/products", map[string]any{"sku": it.Code, "name": it.Name, "units_in_stock": it.Qty, "unit_price": price}, nil)
}

// ids returns the ids of the products with the code.
func (s *restSide) ids(ctx context.Context, code string) ([]string, error) {
	snap, err := s.records(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, r := range snap {
		if r["sku"] == code {
			ids = append(ids, fmt.Sprint(r["id"]))
		}
	}
	return ids, nil
}

func (s *restSide) patch(ctx context.Context, code string, fields map[string]any) (bool, error) {
	ids, err := s.ids(ctx, code)
	if err != nil {
		return false, err
	}
	for _, id := range ids {
		if err := s.do(ctx, "PATCH", "/products/"+url.PathEscape(id), fields, nil); err != nil {
			return false, err
		}
	}
	return len(ids) > 0, nil
}

func (s *restSide) SetName(ctx context.Context, code, name string) (bool, error) {
	return s.patch(ctx, code, map[string]any{"name": name})
}

func (s *restSide) SetQty(ctx context.Context, code string, qty int64) (bool, error) {
	return s.patch(ctx, code, map[string]any{"units_in_stock": qty})
}

// records lists every product, page by page.
func (s *restSide) records(ctx context.Context) ([]map[string]any, error) {
	var all []map[string]any
	cursor := ""
	for {
		path := "/products?limit=1000"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		var page struct {
			Data       []map[string]any `json:"data"`
			NextCursor *string          `json:"next_cursor"`
		}
		if err := s.do(ctx, "GET", path, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Data...)
		if page.NextCursor == nil || *page.NextCursor == "" {
			return all, nil
		}
		cursor = *page.NextCursor
	}
}

func (s *restSide) Snapshot(ctx context.Context) (map[string][]Item, error) {
	recs, err := s.records(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]Item{}
	for _, r := range recs {
		code, _ := r["sku"].(string)
		name, _ := r["name"].(string)
		it := Item{Code: code, Name: name}
		if n, ok := r["units_in_stock"].(json.Number); ok {
			it.Qty, _ = n.Int64()
		}
		if n, ok := r["unit_price"].(json.Number); ok {
			f, _ := n.Float64()
			it.Price = fmt.Sprintf("%.2f", f)
		}
		out[code] = append(out[code], it)
	}
	return out, nil
}

func (s *restSide) Close() error { return nil }
