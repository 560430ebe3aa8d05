package httpconn

import (
	"slices"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/diag"
)

// TestCheckEntity: mistakes in settings and operations are diagnostics at the offending text,
// an expression's error at its position inside the YAML value.
func TestCheckEntity(t *testing.T) {
	src := `system: bad
name: Bad
connector: http
base_url: http://api.example.com/v1
auth:
  bearer: ${TOKEN
  header: {name: X-Key, value: v}
headers:
  Bad Header: x
  Host: example.com
timeout: "30"
retry: {max_wait: forever, base_delay: -1s}
entities:
  A:
    id: id
    schema: a.json
    list:
      path: items
      query: {after: 'record.modifiedOn', limit: '100 +'}
      page: {page: _page, link: true}
    get: {path: "/items/{id}", batch: 5}
    create: {path: "/items/{record.id", idempotency_header: "Idem Key", body: '{"a": env.KEY}'}
    update:
      - {path: "/items/{id}", when: '"yes"', result: "data..x"}
      - {method: PUT, path: "/items/{idd}"}
  B:
    id: id
    schema: b.json
    list:
      path: /b
      page: {offset: offset, size_param: limit, param: p}
    get: {path: '/b/{join(ids, ",")}', batch: 3, records: items}
    create: {path: /b}
  C:
    id: id
    schema: c.json
    list: {path: /c, page: {cursor: next}}
    delete: {path: "/c/{record.id}"}
  D:
    id: id
    schema: d.json
    list: {path: /d, page: {link: false}}
  E:
    id: id
    schema: e.json
    list: {path: /e}
    create: {path: /e}
`
	sys := loadSystem(t, src, map[string]string{})
	var got []string
	for _, e := range sys.Entities {
		for _, d := range (Driver{}).CheckEntity(e, nil) {
			got = append(got, d.Severity.String()+" "+d.Error())
		}
	}
	got = dedupe(got)
	want := []string{
		`error fake.yaml:4:11: base_url uses http:// for api.example.com: use https://`,
		`error fake.yaml:6:11: malformed variable reference "${TOKEN" in "auth.bearer"`,
		`error fake.yaml:7:3: auth takes one way to authenticate, not bearer and header`,
		`error fake.yaml:9:3: headers: "Bad Header" is not a header name`,
		`error fake.yaml:10:3: headers cannot set Host: it is set from the host of base_url`,
		`error fake.yaml:11:10: timeout: "30" is not a duration`,
		`error fake.yaml:12:19: retry.max_wait: "forever" is not a duration`,
		`error fake.yaml:12:40: retry.base_delay must be more than 0`,
		`error fake.yaml:18:13: list.path must start with /`,
		`error fake.yaml:19:23: list.query.after: unknown name "record"`,
		`error fake.yaml:19:55: list.query.limit: unexpected end of the expression`,
		`error fake.yaml:20:27: list.page takes one style, not page and link`,
		`error fake.yaml:21:26: get.path: unknown name "id"; did you mean "ids"?`,
		`error fake.yaml:21:39: get with batch 5 needs records: where the records sit in the response`,
		`error fake.yaml:22:28: create.path: this { has no closing }`,
		`error fake.yaml:22:61: create.idempotency_header: "Idem Key" is not a header name`,
		`error fake.yaml:22:86: create.body: unknown name "env"`,
		`error fake.yaml:24:38: update[0].when must be a boolean expression: it gives a string`,
		`error fake.yaml:24:54: update[0].result: "data..x" is not a dotted path`,
		`error fake.yaml:25:38: update[1].path: unknown name "idd"; did you mean "id"?`,
		`error fake.yaml:31:30: list.page.size_param needs size: the number of records to ask for`,
		`error fake.yaml:31:49: list.page.param goes with cursor, not with offset`,
		`error fake.yaml:37:29: list.page.cursor needs param: the query parameter that sends the cursor`,
		`error fake.yaml:38:25: delete.path: unknown name "record"`,
		`error fake.yaml:42:35: list.page.link must be true`,
		`warning fake.yaml:47:13: create has no result and the entity has no get: every create reads the whole list to find the new record`,
	}
	// One diagnostic per line of want, in file order; the snippet shows the whole set.
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics:\n%s\n\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// dedupe sorts diagnostics by position and drops repeats (the system's are reported for each
// entity; the engine keeps one).
func dedupe(ds []string) []string {
	slices.SortStableFunc(ds, func(a, b string) int { return comparePos(a, b) })
	return slices.Compact(ds)
}

func comparePos(a, b string) int {
	pa, pb := pos(a), pos(b)
	if pa.Line != pb.Line {
		return pa.Line - pb.Line
	}
	return pa.Col - pb.Col
}

func pos(s string) diag.Pos {
	_, rest, _ := strings.Cut(s, "fake.yaml:")
	var p diag.Pos
	parts := strings.SplitN(rest, ":", 3)
	if len(parts) == 3 {
		p.Line, p.Col = atoi(parts[0]), atoi(parts[1])
	}
	return p
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestValidSystemHasNoDiagnostics: the connector's own example, as in the README, is clean.
func TestValidSystemHasNoDiagnostics(t *testing.T) {
	a := newAPI(t, 0)
	sys := loadSystem(t, system(a.srv.URL, "headers: {User-Agent: dataflow}\nca_file: ca.pem\nconcurrency: 8\n", itemEntity), map[string]string{})
	if ds := (Driver{}).CheckEntity(sys.Entities[0], nil); len(ds) != 0 {
		t.Errorf("diagnostics: %v", ds)
	}
}

// TestCheckAuthAndLimits: mistakes in login, check, rate_limit, error, list.expect, count and
// total_pages are diagnostics at the offending text.
func TestCheckAuthAndLimits(t *testing.T) {
	src := `system: bad
name: Bad
connector: http
base_url: https://api.example.com
auth:
  login: {path: api/login, token: 'data.(', header: "Bad Header", lifetime: soon}
  check: {path: me, expect: 'id =='}
rate_limit: {requests: 20, per: 0s}
error: 'message +'
retry: {retry_for: ever}
entities:
  A:
    id: id
    schema: a.json
    list:
      path: /items
      expect: 'items =='
      page: {offset: offset, total_pages: totalPages}
    count: {path: /count, total: "a..b"}
`
	sys := loadSystem(t, src, map[string]string{})
	var got []string
	for _, e := range sys.Entities {
		for _, d := range (Driver{}).CheckEntity(e, nil) {
			got = append(got, d.Severity.String()+" "+d.Error())
		}
	}
	got = dedupe(got)
	want := []string{
		`error fake.yaml:6:17: auth.login.path must start with /`,
		`error fake.yaml:6:41: auth.login.token: expected name`,
		`error fake.yaml:6:53: auth.login.header: "Bad Header" is not a header name`,
		`error fake.yaml:6:77: auth.login.lifetime: "soon" is not a duration`,
		`error fake.yaml:7:17: auth.check.path must start with /`,
		`error fake.yaml:8:33: rate_limit.per must be more than 0`,
		`error fake.yaml:9:17: error: unexpected end of the expression`,
		`error fake.yaml:10:20: retry.retry_for: "ever" is not a duration`,
		`error fake.yaml:17:23: list.expect: unexpected end of the expression`,
		`error fake.yaml:18:30: list.page.total_pages goes with page, not with offset`,
		`error fake.yaml:19:34: count.total: "a..b" is not a dotted path`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics:\n%s\n\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestCheckSecretsFromTheEnvironment: an OAuth2 client secret written in the system file is an
// error, a login whose body takes nothing from the environment a warning.
func TestCheckSecretsFromTheEnvironment(t *testing.T) {
	for _, tc := range []struct{ auth, want string }{
		{`  oauth2: {token_url: https://auth.example.com/token, client_id: dataflow, client_secret: hunter2-secret}`,
			`error fake.yaml:6:91: auth.oauth2.client_secret must come from the environment`},
		{`  login: {path: /login, body: {identity: ann, password: hunter2}}`,
			`warning fake.yaml:6:31: auth.login.body takes no value from the environment: its password sits in the system file`},
		{`  oauth2: {token_url: "http://auth.example.com/token", client_id: dataflow}`,
			`error fake.yaml:6:23: auth.oauth2.token_url: "http://auth.example.com/token" uses http:// for auth.example.com: use https://`},
	} {
		src := "system: s\nname: S\nconnector: http\nbase_url: https://api.example.com\nauth:\n" + tc.auth + "\nentities:\n  A:\n    id: id\n    schema: a.json\n    list: {path: /a}\n"
		sys := loadSystem(t, src, map[string]string{})
		var got []string
		for _, d := range (Driver{}).CheckEntity(sys.Entities[0], nil) {
			got = append(got, d.Severity.String()+" "+d.Error())
		}
		if strings.Join(got, "\n") != tc.want {
			t.Errorf("%s:\n%s\nwant\n%s", tc.auth, strings.Join(got, "\n"), tc.want)
		}
	}
}
