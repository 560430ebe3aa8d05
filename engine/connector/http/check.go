package httpconn

// An anonymous answer is an error. Some APIs answer a request whose token expired as they
// answer a guest: PocketBase lists a collection a guest may not see as 200 {"items": []}, which
// reads as "every record was deleted". auth.check is a request (and an expectation of its
// response) sent before the connection's first read or write; list.expect is an expectation of
// every list page. Either failing stops the run before it merges anything.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"

	"github.com/dataflow-sync/dataflow/engine/config"
)

// checkSettings are auth.check's.
type checkSettings struct {
	method, path string
	expect       *respProgram // nil: a 2xx answer is enough
}

// readCheck reads auth.check: {path, method, expect}.
func (r *reader) readCheck(n *config.Node) {
	if n == nil || n.Kind != config.Map {
		return
	}
	cs := &checkSettings{method: http.MethodGet}
	if _, ok := str(n.Get("path")); !ok {
		return // the format schema reports it
	}
	p, _, ok := r.expand(n.Get("path"), "auth.check.path")
	if !ok {
		return
	}
	if len(p) == 0 || p[0] != '/' {
		r.ds.Errorf(n.Get("path").Range, "auth.check.path must start with /").
			WithDetail("The path is appended to base_url, like /api/collections/_superusers/auth-refresh.")
		return
	}
	cs.path = p
	if m, ok := str(n.Get("method")); ok {
		cs.method = m
	}
	if _, ok := str(n.Get("expect")); ok {
		if cs.expect = respExpr(r.ds, n.Get("expect"), "auth.check.expect", ""); cs.expect == nil {
			return
		}
	}
	r.s.check = cs
}

// authCheck runs auth.check once per connection, before its first request; its error is kept
// and returned to every later call, so that nothing is read or written with credentials that
// answer as someone else.
type authCheck struct {
	mu   sync.Mutex
	done bool
	err  error
}

func (c *conn) checkAuth(ctx context.Context) error {
	cs := c.s.check
	if cs == nil {
		return nil
	}
	c.checked.mu.Lock()
	defer c.checked.mu.Unlock()
	if c.checked.done {
		return c.checked.err
	}
	err := c.runCheck(ctx, cs)
	if ctx.Err() != nil {
		return c.red.err(err) // a cancelled check is tried again by the next call
	}
	c.checked.done, c.checked.err = true, c.red.err(err)
	return c.checked.err
}

func (c *conn) runCheck(ctx context.Context, cs *checkSettings) error {
	u, err := url.Parse(c.s.base.String() + cs.path)
	if err != nil {
		return fmt.Errorf("%s: auth.check.path: %w", c.s.system, err)
	}
	cl := &call{what: c.s.system + " auth.check", method: cs.method, url: u, repeatable: true, probe: true}
	resp, err := c.cl.do(ctx, cl)
	if err != nil {
		return fmt.Errorf("%w (auth.check failed: the credentials are refused, so the run stops before it reads or writes anything)", err)
	}
	if cs.expect == nil {
		return nil
	}
	body, err := c.cl.decode(cl, resp)
	if err != nil {
		return err
	}
	ok, err := cs.expect.run(body)
	if err != nil {
		return fmt.Errorf("%s: auth.check.expect: %w", cl.op(), err)
	}
	if ok != true {
		return fmt.Errorf("%s: auth.check.expect %s does not hold: the API answers as someone other than the configured user (an expired or wrong token?), so the run stops before it reads or writes anything", cl.op(), quoteExpr(cs.expect.src))
	}
	return nil
}

// expectPage checks a list page against list.expect.
func expectPage(cl *call, l *listOp, body any, pageNo int) error {
	if l.expect == nil {
		return nil
	}
	ok, err := l.expect.run(body)
	if err != nil {
		return fmt.Errorf("%s: %s.expect: %w", cl.op(), l.req.key, err)
	}
	if ok != true {
		return fmt.Errorf("%s: page %d does not pass %s.expect %s: the API may have answered as a guest (an expired token?), so the run stops before it merges anything", cl.op(), pageNo, l.req.key, quoteExpr(l.expect.src))
	}
	return nil
}
