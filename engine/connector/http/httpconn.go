// Package httpconn is the connector for systems reached through a JSON HTTP API (a web shop, a
// CRM's REST API): each entity says in its system file how to list its records (with paging and
// incremental reads), fetch them by id, and create, update and delete them, as requests built
// from expr-lang expressions. The connector sends them with authentication, timeouts, bounded
// retries that honour Retry-After, a limit on concurrent requests, verified TLS and redirects
// kept on the API's host, and it never lets a secret into an error message.
//
// Files: httpconn.go (the driver: validation and Open), config.go (system settings), ops.go and
// expr.go, template.go (the operations and their expressions), client.go and retry.go (sending
// requests), conn.go (the connector.Conn: reads), write.go (its writes), page.go (reading
// lists), find.go (finding records by their values), values.go (JSON values), redact.go
// (secrets).
package httpconn

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/schema"
)

// Driver is the http connector. Its rate budgets (rate_limit) are shared by the connections
// it opens to the same system; a Driver made by NewDriver keeps them for as long as it is
// used, the zero Driver gives each connection a budget of its own.
type Driver struct {
	budgets *budgets
}

// NewDriver returns a Driver whose connections to one system share its rate budget.
func NewDriver() Driver { return Driver{budgets: &budgets{}} }

// Name implements connector.Driver.
func (Driver) Name() string { return "http" }

// CheckEntity implements connector.Driver: the system settings (reported for every entity; the
// engine keeps one of each) and the entity's operations, expressions compiled.
func (Driver) CheckEntity(e *config.Entity, s *schema.Entity) diag.Diagnostics {
	var ds diag.Diagnostics
	if e == nil || e.System == nil {
		return nil
	}
	readSettings(e.System, &ds)
	compileEntity(e, &ds)
	checkFindPaths(e, s, &ds)
	checkPagingOrder(e, &ds)
	return ds
}

// checkPagingOrder warns when a list is paged by page number or offset and sorted by the
// entity's updated property (its query or path names it): an edit made while the list is read
// moves a record to a later page, shifting the others back, so that one is never read. The
// connector reads such a list whole before the run writes (page.go), which stops the run's own
// writes from doing it; other apps' edits during the read still can.
func checkPagingOrder(e *config.Entity, ds *diag.Diagnostics) {
	list := e.Settings["list"]
	page := list.Get("page")
	updated := e.Updated.Value
	if updated == "" || page == nil || page.Kind != config.Map {
		return
	}
	var style *config.Node
	for _, k := range page.Keys {
		if k.Value == pagePage || k.Value == pageOffset {
			style = k
		}
	}
	if style == nil {
		return
	}
	sorted := false
	if p := list.Get("path"); p != nil && p.Kind == config.Scalar {
		sorted = strings.Contains(p.Value, updated)
	}
	if q := list.Get("query"); q != nil && q.Kind == config.Map {
		for _, v := range q.Vals {
			sorted = sorted || v.Kind == config.Scalar && strings.Contains(v.Value, updated)
		}
	}
	if !sorted {
		return
	}
	ds.Warnf(style.Range, "list.page: %s paging of a list sorted by %s can skip records", style.Value, updated).
		WithDetail("An edit made while the list is read moves a record to a later page and shifts the records after it back, so that one of them is never read. The connector reads the whole list before this run writes to it, so the run's own writes cannot do that; another app's edits can. Page with a cursor, or sort by a key that edits do not change (the id).")
}

// checkFindPaths reports a path of find.by that the entity's schema does not have.
func checkFindPaths(e *config.Entity, s *schema.Entity, ds *diag.Diagnostics) {
	by := e.Settings["find"].Get("by")
	if s == nil || by == nil || by.Kind != config.List {
		return
	}
	for _, item := range by.Items {
		v, ok := str(item)
		if !ok || !schema.WellFormed(v) {
			continue
		}
		if _, perr := s.Resolve(v); perr != nil {
			what := fmt.Sprintf("find.by: %s has no property %q", e.Name.Value, perr.Name)
			if perr.Parent != "" {
				what = fmt.Sprintf("find.by: %q has no property %q", perr.Parent, perr.Name)
			}
			ds.Errorf(item.Range, "%s%s", what, diag.DidYouMean(perr.Name, perr.Known))
		}
	}
}

// Open implements connector.Opener: it reads the settings, compiles every entity's operations
// and prepares the client. It sends no request.
func (d Driver) Open(ctx context.Context, sys *config.System, _ map[string]*schema.Entity, opts connector.OpenOptions) (connector.Conn, error) {
	var ds diag.Diagnostics
	s := readSettings(sys, &ds)
	red := newRedactor(s.secrets, s.basic)
	if err := s.unsetError(); err != nil {
		se := err.(*settingErr)
		return nil, &connector.SettingError{Key: se.key, Err: errors.New(se.msg), Fix: se.fix}
	}
	entities := map[string]*entity{}
	for _, e := range sys.Entities {
		ent := compileEntity(e, &ds)
		if ent.list == nil && !ds.HasErrors() {
			ds.Errorf(e.Name.Range, "entity %s has no list", e.Name.Value)
		}
		entities[e.Name.Value] = ent
	}
	for _, d := range ds {
		if d.Severity == diag.Error {
			return nil, red.err(fmt.Errorf("%s (run dataflow validate)", d.Error()))
		}
	}
	if s.base == nil {
		return nil, &connector.SettingError{Key: "base_url", Err: errors.New("base_url is missing"), Fix: "Set base_url to the API's address, like https://api.example.com."}
	}
	var roots *x509.CertPool
	if s.caFile != "" {
		var err error
		if roots, err = loadRoots(s.caFile); err != nil {
			return nil, &connector.SettingError{Key: "ca_file", Err: err,
				Fix: "Point ca_file at a PEM file of the CA certificates that sign the API's certificate (relative to the current directory)."}
		}
	}
	cl := newClient(s, red, roots, opts.ReadOnly, d.budgets.of(s.system, s.rate))
	switch {
	case s.login != nil:
		cl.auth = &login{s: s.login, cl: cl, red: red}
	case s.oauth != nil:
		cl.auth = &oauth{s: s.oauth, sys: s.system, red: red, http: cl.http, persist: writeTokenFile}
	case s.queryKey != nil:
		cl.auth = s.queryKey
	}
	c := &conn{s: s, red: red, entities: entities, cl: cl}
	for _, e := range entities {
		if e.count != nil {
			return countingConn{c}, nil
		}
	}
	return c, nil
}

// loadRoots returns the system's trusted roots with the certificates of a PEM file added.
func loadRoots(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read ca_file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %s holds no PEM certificate", path)
	}
	return pool, nil
}
