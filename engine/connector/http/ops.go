package httpconn

// The operations of an entity (list, get, create, update, delete), read from the entity's keys
// and compiled once: path templates, query parameters, bodies and conditions are expr-lang
// programs. The same code serves validation (problems become diagnostics at their position) and
// Open (which refuses an entity with problems).

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/diag"
)

// request is one HTTP request of an operation.
type request struct {
	key       string // where it is configured, for messages: "create", "update[1]"
	method    string
	path      *template
	pathSrc   string // the path as written, for showing the request (Operations)
	query     []param
	body      *program // nil: no body
	when      *program // nil: always
	result    string   // dotted path of the stored record in the response; "" the body
	hasResult bool     // false: the record is read back with get
	idResult  string   // dotted path of the new id when there is no result (create)
	// idemHeader is the header that carries an idempotency key: the engine's key of the record
	// for a create, a random key per record and request for an update or a delete.
	idemHeader string
}

// param is one query parameter.
type param struct {
	name string
	prog *program
}

func (r *request) mentions(name string) bool {
	if r.path.mentions(name) {
		return true
	}
	for _, p := range []*program{r.body, r.when} {
		if p != nil && p.mentions[name] {
			return true
		}
	}
	for _, q := range r.query {
		if q.prog.mentions[name] {
			return true
		}
	}
	return false
}

// Pagination styles.
const (
	pageNone   = ""
	pageCursor = "cursor"
	pagePage   = "page"
	pageOffset = "offset"
	pageLink   = "link"
)

// paging is how a list reads its pages.
type paging struct {
	style     string
	cursor    string // dotted path of the next cursor in the body
	param     string // the query parameter of the cursor, the page number or the offset
	alone     bool   // the cursor request drops the other query parameters
	size      int    // records per page, 0 when not set
	sizeParam string
	maxPages  int    // pages read at most before the listing is an error (max_pages)
	total     string // page paging: dotted path of the number of pages (total_pages), "" none
}

// defaultMaxPages bounds a listing's pages when page.max_pages is not set: generous for any
// real list, and an end for a server that pages on for ever.
const defaultMaxPages = 100_000

type listOp struct {
	req     *request
	records string
	page    paging
	expect  *respProgram // list.expect: what every page must be; nil: anything
}

// findOp is how records are found by the values of some of their properties: a listing
// whose request names the values searched for.
type findOp struct {
	list  *listOp
	by    []string // the property paths it searches by
	batch int      // keys per request
}

// countOp is a request that counts an entity's records: total is the dotted path of the
// number in its response.
type countOp struct {
	req   *request
	total string
}

type getOp struct {
	req        *request
	batch      int
	records    string
	hasRecords bool
}

// entity is an entity's compiled operations.
type entity struct {
	name         string
	id, updated  string
	list         *listOp
	get          *getOp   // nil: Get reads the list
	find         *findOp  // nil: the connection cannot find records by their values
	count        *countOp // nil: counted by reading the list
	create       *request
	update       []*request
	delete       *request
	needsCurrent bool // an update expression uses current
}

var (
	listScope = scope{names: []string{nameSince, nameNow}, missing: map[string]string{
		nameID:  "A list reads every record; it has since (the last watermark, \"\" on a full read) and now.",
		nameIDs: "A list reads every record; fetching by ids is the job of get.", nameRecord: "A list reads every record; it has since and now.",
	}}
	createScope = scope{names: []string{nameRecord, nameNow}, missing: map[string]string{
		nameID:      "A new record has no id yet: the response gives it (result or id_result).",
		nameCurrent: "A new record has no stored version; record is the record to create.",
	}}
	updateScope = scope{names: []string{nameID, nameRecord, nameCurrent, nameNow}}
	deleteScope = scope{names: []string{nameID, nameNow}, missing: map[string]string{
		nameRecord: "A delete knows only the id of the record.", nameCurrent: "A delete knows only the id of the record.",
	}}
)

func findScope(batch, by int) scope {
	why := "find looks records up by the values of find.by: tuples (and terms when by has one path)."
	sc := scope{names: []string{nameTuples}, missing: map[string]string{nameID: why, nameIDs: why, nameRecord: why}}
	if by == 1 {
		sc.names = append(sc.names, nameTerms)
		if batch == 1 {
			sc.names = append(sc.names, nameTerm)
		} else {
			sc.missing[nameTerm] = fmt.Sprintf("term is there when batch is 1; with batch %d use terms, like {join(terms, \",\")}.", batch)
		}
	} else {
		sc.missing[nameTerms] = "terms is there when find.by has one path; with more, each of tuples is a list of the values of by, in its order."
		sc.missing[nameTerm] = sc.missing[nameTerms]
	}
	sc.names = append(sc.names, nameNow)
	return sc
}

func getScope(batch int) scope {
	if batch == 1 {
		return scope{names: []string{nameID, nameIDs, nameNow}}
	}
	return scope{names: []string{nameIDs, nameNow}, missing: map[string]string{
		nameID: fmt.Sprintf("id is there when batch is 1; with batch %d use ids, like {join(ids, \",\")}.", batch),
	}}
}

// Methods each write may use.
var (
	createMethods = []string{"POST", "PUT", "PATCH"}
	updateMethods = []string{"PATCH", "PUT", "POST"}
	deleteMethods = []string{"DELETE", "POST", "PUT", "PATCH"}
)

// compileEntity compiles an entity's operations; problems go to ds and leave the operation nil.
func compileEntity(e *config.Entity, ds *diag.Diagnostics) *entity {
	c := &compiler{ds: ds, vars: varNames(e.System)}
	ent := &entity{name: e.Name.Value, id: e.ID.Value, updated: e.Updated.Value}
	if n := e.Settings["list"]; n != nil && n.Kind == config.Map {
		ent.list = c.list(n)
	}
	if n := e.Settings["get"]; n != nil && n.Kind == config.Map {
		ent.get = c.get(n)
	}
	if n := e.Settings["find"]; n != nil && n.Kind == config.Map {
		ent.find = c.find(n)
	}
	if n := e.Settings["count"]; n != nil && n.Kind == config.Map {
		ent.count = c.count(n)
	}
	if n := e.Settings["create"]; n != nil && n.Kind == config.Map {
		ent.create = c.request(n, "create", createScope, "POST", createMethods, false)
		if ent.create != nil && ent.create.idResult == "" {
			ent.create.idResult = ent.id
		}
	}
	switch n := e.Settings["update"]; {
	case n == nil:
	case n.Kind == config.Map:
		if r := c.request(n, "update", updateScope, "PATCH", updateMethods, true); r != nil {
			ent.update = []*request{r}
		}
	case n.Kind == config.List:
		ok := true
		for i, item := range n.Items {
			if item.Kind != config.Map {
				ok = false
				continue
			}
			r := c.request(item, "update["+strconv.Itoa(i)+"]", updateScope, "PATCH", updateMethods, true)
			ok = ok && r != nil
			ent.update = append(ent.update, r)
		}
		if !ok {
			ent.update = nil
		}
	}
	for _, r := range ent.update {
		ent.needsCurrent = ent.needsCurrent || r.mentions(nameCurrent)
	}
	if n := e.Settings["delete"]; n != nil && n.Kind == config.Map {
		ent.delete = c.request(n, "delete", deleteScope, "DELETE", deleteMethods, false)
	}
	ent.readBackWarnings(e, ds)
	return ent
}

// readBackWarnings warns when writes must find records by reading the whole list.
func (ent *entity) readBackWarnings(e *config.Entity, ds *diag.Diagnostics) {
	if ent.get != nil || e.Settings["get"] != nil {
		return
	}
	detail := "Add get: {path: ...} so that records are fetched by id."
	if ent.create != nil && !ent.create.hasResult {
		ds.Warnf(e.Settings["create"].Range, "create has no result and the entity has no get: every create reads the whole list to find the new record").
			WithDetail("%s Or set result: \"\" when the response is the created record.", detail)
	}
	for _, r := range ent.update {
		if r != nil && !r.hasResult || ent.needsCurrent {
			ds.Warnf(e.Settings["update"].Range, "update needs the stored record and the entity has no get: every update reads the whole list").
				WithDetail("%s Or set result: \"\" when the response is the updated record.", detail)
			break
		}
	}
}

// str returns the value of a string scalar; other kinds are the format schema's to report.
func str(n *config.Node) (string, bool) {
	if n == nil || n.Kind != config.Scalar || n.Tag != "!!str" {
		return "", false
	}
	return n.Value, true
}

// request compiles one request of an operation.
func (c *compiler) request(n *config.Node, key string, sc scope, method string, methods []string, when bool) *request {
	r := &request{key: key, method: method}
	if m, ok := str(n.Get("method")); ok && slices.Contains(methods, m) {
		r.method = m
	}
	ok := true
	pathNode := n.Get("path")
	if p, isStr := str(pathNode); isStr {
		r.path = c.path(pathNode, p, key+".path", sc)
		r.pathSrc = p
	}
	ok = ok && r.path != nil
	query, qok := c.query(n.Get("query"), key+".query", sc)
	r.query, ok = query, ok && qok
	if b, isStr := str(n.Get("body")); isStr {
		r.body = c.compile(n.Get("body"), b, 0, key+".body", sc, false)
		ok = ok && r.body != nil
	} else if n.Get("body") == nil && slices.Contains(sc.names, nameRecord) {
		r.body = recordBody(sc) // create and update send the record by default
	}
	if w, isStr := str(n.Get("when")); isStr && when {
		r.when = c.compile(n.Get("when"), w, 0, key+".when", sc, true)
		ok = ok && r.when != nil
	}
	if v, isStr := str(n.Get("result")); isStr {
		r.result, r.hasResult = v, true
		ok = c.dotted(n.Get("result"), key+".result", v, true) && ok
	}
	if v, isStr := str(n.Get("id_result")); isStr {
		r.idResult = v
		if r.hasResult {
			c.ds.Warnf(n.KeyNode("id_result").Range, "%s.id_result is not used: result gives the stored record, and its id", key).
				WithDetail("Remove id_result, or remove result to read the record back by the new id.")
		}
	}
	if h := n.Get("idempotency_header"); h != nil {
		if v, isStr := str(h); isStr {
			if !validHeaderName(v) {
				c.ds.Errorf(h.Range, "%s.idempotency_header: %q is not a header name", key, v).
					WithDetail("Write the header the API reads the key from, like Idempotency-Key.")
				ok = false
			}
			r.idemHeader = v
		}
	}
	if !ok {
		return nil
	}
	return r
}

// path compiles a path template and checks that it is a path under base_url.
func (c *compiler) path(n *config.Node, p, key string, sc scope) *template {
	if p == "" {
		return nil // the format schema reports it
	}
	if !strings.HasPrefix(p, "/") {
		c.ds.Errorf(n.Range, "%s must start with /", key).
			WithDetail("The path is appended to base_url, like /v2/commerce/products/{id}.")
		return nil
	}
	return c.compileTemplate(n, key, sc)
}

// query compiles the query parameters; ok is false when one did not compile.
func (c *compiler) query(n *config.Node, key string, sc scope) (ps []param, ok bool) {
	if n == nil || n.Kind != config.Map {
		return nil, true
	}
	ok = true
	for i, k := range n.Keys {
		v := n.Vals[i]
		if v.Kind != config.Scalar {
			continue // the format schema reports it
		}
		p := c.compile(v, v.Value, 0, key+"."+k.Value, sc, false)
		if p == nil {
			ok = false
			continue
		}
		ps = append(ps, param{name: k.Value, prog: p})
	}
	return ps, ok
}

// dotted checks a dotted path; empty is allowed when emptyOK.
func (c *compiler) dotted(n *config.Node, key, v string, emptyOK bool) bool {
	if v == "" && emptyOK {
		return true
	}
	if v == "" || slices.Contains(strings.Split(v, "."), "") {
		c.ds.Errorf(n.Range, "%s: %q is not a dotted path", key, v).
			WithDetail("Name the property, with dots between nested names, like data or pagination.nextPageCursor; \"\" is the whole body.")
		return false
	}
	return true
}

func (c *compiler) list(n *config.Node) *listOp {
	return c.listing(n, "list", listScope)
}

// listing compiles a request that reads pages of records: list, or find (key).
func (c *compiler) listing(n *config.Node, key string, sc scope) *listOp {
	l := &listOp{}
	l.req = c.request(n, key, sc, "GET", []string{"GET"}, false)
	recordsOK := true
	if v, ok := str(n.Get("records")); ok {
		l.records = v
		recordsOK = c.dotted(n.Get("records"), key+".records", v, true)
	}
	page, ok := c.paging(n.Get("page"), key+".page")
	ok = ok && recordsOK
	if _, isStr := str(n.Get("expect")); isStr {
		l.expect = respExpr(c.ds, n.Get("expect"), key+".expect", "")
		ok = ok && l.expect != nil
	}
	if l.req == nil || !ok {
		return nil
	}
	l.page = page
	return l
}

// paging reads list.page (or find.page, key): one of cursor, page, offset or link, with the
// keys that go with it.
func (c *compiler) paging(n *config.Node, key string) (paging, bool) {
	p := paging{maxPages: defaultMaxPages}
	if n == nil || n.Kind != config.Map {
		return p, true
	}
	var styles []*config.Node
	for _, k := range n.Keys {
		switch k.Value {
		case pageCursor, pagePage, pageOffset, pageLink:
			styles = append(styles, k)
		case "param", "cursor_alone", "size", "size_param", "max_pages", "total_pages":
		default:
			return p, false // the format schema reports the unknown key, likely a misspelling
		}
	}
	switch len(styles) {
	case 0:
		c.ds.Errorf(n.Range, "%s needs one of cursor, page, offset or link", key).
			WithDetail("cursor: {cursor: <path of the next cursor in the body>, param: <query parameter>}; page: {page: <parameter>, size: 100}; offset: {offset: <parameter>, size: 100}; link: {link: true} follows the Link header.")
		return p, false
	case 1:
	default:
		c.ds.Errorf(styles[1].Range, "%s takes one style, not %s and %s", key, styles[0].Value, styles[1].Value)
		return p, false
	}
	p.style = styles[0].Value
	ok := true
	val := n.Get(p.style)
	if v, isStr := str(val); isStr {
		p.param = v
	}
	if size := n.Get("size"); size != nil {
		if i, isInt := intValue(size, 1, 1<<30); isInt {
			p.size = i
		}
	}
	if mp := n.Get("max_pages"); mp != nil {
		if i, isInt := intValue(mp, 1, 1<<30); isInt {
			p.maxPages = i
		}
	}
	if v, isStr := str(n.Get("size_param")); isStr {
		p.sizeParam = v
		if n.Get("size") == nil {
			c.ds.Errorf(n.KeyNode("size_param").Range, "%s.size_param needs size: the number of records to ask for", key)
			ok = false
		}
	}
	only := func(name, style string) {
		if k := n.KeyNode(name); k != nil && p.style != style {
			c.ds.Errorf(k.Range, "%s.%s goes with %s, not with %s", key, name, style, p.style)
			ok = false
		}
	}
	only("param", pageCursor)
	only("cursor_alone", pageCursor)
	only("total_pages", pagePage)
	if v, isStr := str(n.Get("total_pages")); isStr {
		p.total = v
		ok = c.dotted(n.Get("total_pages"), key+".total_pages", v, false) && ok
	}
	switch p.style {
	case pageCursor:
		p.cursor, p.param = p.param, ""
		if v, isStr := str(n.Get("param")); isStr {
			p.param = v
		} else if n.Get("param") == nil {
			c.ds.Errorf(styles[0].Range, "%s.cursor needs param: the query parameter that sends the cursor", key)
			ok = false
		}
		ok = c.dotted(val, key+".cursor", p.cursor, false) && ok
		p.alone = n.Get("cursor_alone") != nil && n.Get("cursor_alone").Value == "true"
	case pageLink:
		if val.Value != "true" {
			c.ds.Errorf(val.Range, "%s.link must be true", key).
				WithDetail("link: true follows the Link header's rel=\"next\"; without paging, remove page.")
			ok = false
		}
	}
	return p, ok
}

// find compiles find: by (the paths searched by), batch, and a listing whose expressions name
// the values searched for.
func (c *compiler) find(n *config.Node) *findOp {
	f := &findOp{batch: 1}
	if b := n.Get("batch"); b != nil {
		if i, ok := intValue(b, 1, 1000); ok {
			f.batch = i
		}
	}
	ok := true
	if by := n.Get("by"); by != nil && by.Kind == config.List {
		for _, item := range by.Items {
			v, isStr := str(item)
			if !isStr {
				ok = false // the format schema reports it
				continue
			}
			if slices.Contains(f.by, v) {
				c.ds.Errorf(item.Range, "find.by names %s twice", v)
				ok = false
				continue
			}
			ok = c.dotted(item, "find.by", v, false) && ok
			f.by = append(f.by, v)
		}
	}
	f.list = c.listing(n, "find", findScope(f.batch, len(f.by)))
	if !ok || len(f.by) == 0 || f.list == nil {
		return nil
	}
	return f
}

func (c *compiler) count(n *config.Node) *countOp {
	r := c.request(n, "count", scope{names: []string{nameNow}}, "GET", []string{"GET"}, false)
	total, ok := str(n.Get("total"))
	if !ok || !c.dotted(n.Get("total"), "count.total", total, false) || r == nil {
		return nil
	}
	return &countOp{req: r, total: total}
}

func (c *compiler) get(n *config.Node) *getOp {
	g := &getOp{batch: 1}
	if b := n.Get("batch"); b != nil {
		if i, ok := intValue(b, 1, 1000); ok {
			g.batch = i
		}
	}
	g.req = c.request(n, "get", getScope(g.batch), "GET", []string{"GET"}, false)
	if v, ok := str(n.Get("records")); ok {
		g.records, g.hasRecords = v, true
		if !c.dotted(n.Get("records"), "get.records", v, true) {
			return nil
		}
	} else if g.batch > 1 {
		c.ds.Errorf(n.Get("batch").Range, "get with batch %d needs records: where the records sit in the response", g.batch).
			WithDetail("Without records the response is one record, which fits batch 1 only; write records: \"\" when the body is the list.")
		return nil
	}
	if g.req == nil {
		return nil
	}
	return g
}
