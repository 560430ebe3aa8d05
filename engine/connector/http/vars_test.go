package httpconn

// The system's vars: settings that are not secret, which every expression reads as
// vars.<name>; and bodies built from values expr makes as map[any]any (fromPairs).

import (
	"errors"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

const varsEntity = `    list: {path: "/items", query: {tenant: vars.tenant}, records: items}
    get: {path: "/items/{id}"}
    create:
      path: /items
      body: '{"sku": record.sku, "page": vars.page, "limit": int(vars.limit) + 1}'
      result: ""
`

// TestVars: vars reach query parameters and bodies, expanded from the environment, with their
// defaults; their values are text.
func TestVars(t *testing.T) {
	a := newAPI(t, 1)
	src := system(a.srv.URL, "vars:\n  page: ${PAGE:-page-0}\n  tenant: acme\n  limit: 41\n", varsEntity)
	for _, tc := range []struct {
		env  map[string]string
		page string
	}{
		{map[string]string{"TOKEN": testToken}, "page-0"},
		{map[string]string{"TOKEN": testToken, "PAGE": "5f1a"}, "5f1a"},
	} {
		c, _ := openConn(t, src, tc.env)
		res, err := c.Create(ctx, "Item", []map[string]any{{"sku": "V"}})
		if err != nil || res[0].Err != nil || res[0].Record.Data["page"] != tc.page || res[0].Record.Data["limit"] != int64(42) {
			t.Errorf("created %+v, %v; want page %s, limit 42", res, err, tc.page)
		}
		if _, err := scanAll(t, c, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range a.requests("GET /items") {
		if got := h.query["tenant"]; len(got) != 1 || got[0] != "acme" {
			t.Errorf("list query %v", h.query)
		}
	}
}

// TestVarsUnsetVariable: a var whose variable is unset and has no default is valid (checked
// by validate without the environment), and a run refuses to open the system, naming it.
func TestVarsUnsetVariable(t *testing.T) {
	a := newAPI(t, 0)
	sys := loadSystem(t, system(a.srv.URL, "vars: {page: \"${STORE_PAGE}\", tenant: acme, limit: \"1\"}\n", varsEntity), map[string]string{"TOKEN": "x"})
	if ds := (Driver{}).CheckEntity(sys.Entities[0], nil); len(ds) != 0 {
		t.Errorf("diagnostics: %v", ds)
	}
	_, err := Driver{}.Open(ctx, sys, nil, connector.OpenOptions{})
	var se *connector.SettingError
	if !errors.As(err, &se) || se.Key != "vars" || err.Error() != "vars.page needs the environment variable STORE_PAGE, which is not set" {
		t.Errorf("open: %v", err)
	}
	if len(a.requests("*")) != 0 {
		t.Errorf("%d requests", len(a.requests("*")))
	}
}

// TestCheckVars: a var that uses a variable of auth or of a header is refused (vars are not
// secret); vars.<name> of a name the system does not define is an error at the name, with a
// suggestion; without vars, the detail says so; a misspelt vars is an unknown name.
func TestCheckVars(t *testing.T) {
	src := `system: fake
name: Fake
connector: http
base_url: https://api.example.com
auth: {bearer: "${TOKEN}"}
headers: {X-Tenant: "${TENANT}", User-Agent: dataflow}
vars:
  page: ${PAGE:-p}
  token: "Bearer ${TOKEN}"
  tenant: "${TENANT:-acme}"
  plain: text
entities:
  A:
    id: id
    schema: a.json
    list: {path: "/a/{vars.plain}/{vars.nope}"}
    create: {path: /a, query: {r: var.page}, body: '{"p": vars.pag, "q": vars["plain"]}'}
`
	want := []string{
		`error fake.yaml:9:10: vars.token uses ${TOKEN}, which auth.bearer uses: vars are not for secrets`,
		`error fake.yaml:10:11: vars.tenant uses ${TENANT}, which headers.X-Tenant uses: vars are not for secrets`,
		`error fake.yaml:16:41: list.path: unknown var "nope"`,
		`error fake.yaml:17:35: create.query.r: unknown name "var"; did you mean "vars"?`,
		`error fake.yaml:17:64: create.body: unknown var "pag"; did you mean "page"?`,
	}
	sys := loadSystem(t, src, map[string]string{})
	var got []string
	var details []string
	for _, d := range (Driver{}).CheckEntity(sys.Entities[0], nil) {
		got = append(got, d.Severity.String()+" "+d.Error())
		details = append(details, d.Detail)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("diagnostics:\n%s\n\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if details[2] != "The system file's vars: page, plain, tenant, token." {
		t.Errorf("detail %q", details[2])
	}

	sys = loadSystem(t, system("https://api.example.com", "", "    list: {path: \"/a/{vars.page}\"}\n"), map[string]string{})
	ds := (Driver{}).CheckEntity(sys.Entities[0], nil)
	if len(ds) != 1 || ds[0].Error() != `fake.yaml:13:28: list.path: unknown var "page"` ||
		ds[0].Detail != "The system file has no vars; define the value at its top level: vars: {page: ...}." {
		t.Errorf("without vars: %v (%q)", ds, ds[0].Detail)
	}
}

// TestBodyObjectsOfAnyKeys: objects expr makes with keys of type any (fromPairs), also inside
// lists and other objects, are sent as JSON objects; a key that is not text fails that record,
// naming the request.
func TestBodyObjectsOfAnyKeys(t *testing.T) {
	a := newAPI(t, 0)
	entity := `    list: {path: /items, records: items}
    get: {path: "/items/{id}"}
    create:
      path: /items
      body: 'record.bad == true ? fromPairs([[1, "one"]]) : fromPairs([["sku", record.sku], ["lines", [fromPairs([["n", 1], ["tags", {"a": fromPairs([["b", true]])}]])]]])'
      result: ""
    update:
      path: "/items/{id}"
      body: 'merge(current, fromPairs([["name", record.name]]))'
      result: ""
`
	c, _ := openConn(t, system(a.srv.URL, "", entity), nil)
	res, err := c.Create(ctx, "Item", []map[string]any{{"sku": "FP"}, {"bad": true}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || res[0].Record.Data["sku"] != "FP" {
		t.Errorf("created %+v", res[0])
	}
	if posts := a.requests("POST /items"); len(posts) != 1 || posts[0].body != `{"lines":[{"n":1,"tags":{"a":{"b":true}}}],"sku":"FP"}` {
		t.Errorf("posts %+v", posts)
	}
	want := `fake Item: create.body: an object has the key 1, which is a number: the keys of a JSON object are text (write the key in quotes, or string(key))`
	if res[1].Err == nil || res[1].Err.Error() != want {
		t.Errorf("the record with a number key: %v, want %s", res[1].Err, want)
	}
	res, err = c.Update(ctx, "Item", []connector.Record{{ID: res[0].Record.ID, Data: map[string]any{"name": "Renamed"}}})
	if err != nil || res[0].Err != nil || res[0].Record.Data["name"] != "Renamed" || res[0].Record.Data["sku"] != "FP" {
		t.Errorf("updated %+v, %v", res, err)
	}
}
