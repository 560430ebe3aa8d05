package httpconn

// Reading a list page by page: a cursor from the body sent back in a query parameter, page
// numbers from 1, offsets from 0, or the Link header's rel="next" (within the API's host only).
// One page is one batch for the engine. A server that does not page the way the system file says
// (the same cursor twice, the same page again) is an error, not an endless loop.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

// Scan implements connector.Conn: the list's pages in order, each one batch. With since (and an
// entity with updated), records updated before since are left out, whether or not the list's
// query asks the server to filter.
func (c *conn) Scan(ctx context.Context, name, since string, fn func([]connector.Record) error) error {
	e, err := c.entity(name)
	if err != nil {
		return err
	}
	if err := c.checkAuth(ctx); err != nil {
		return err
	}
	if p := e.list.page.style; p == pagePage || p == pageOffset {
		return c.scanWhole(ctx, e, since, fn)
	}
	var fnErr error
	err = c.scan(ctx, e, since, func(recs []connector.Record) error {
		fnErr = fn(recs)
		return fnErr
	})
	if err != nil && fnErr != nil && errors.Is(err, fnErr) {
		return fnErr // the engine's own error, as it returned it
	}
	return c.red.err(err)
}

// scanWhole reads every page of a list paged by page number or offset before it gives the
// engine the first: the engine writes while it reads, and a write that moves a record to a
// later place in the list's order (a list sorted by updated) shifts every record after it one
// place back, so that the next page starts one record late and a record is never read (401 of
// 1,000 stayed unlinked for good). Cursors and Link headers carry the place they read to, and
// are read as they come. A record read twice (moved by another app's edit while the list was
// read) is given once, in its last version.
func (c *conn) scanWhole(ctx context.Context, e *entity, since string, fn func([]connector.Record) error) error {
	var pages [][]connector.Record
	at := map[string][2]int{} // id → page and place of its last version
	err := c.scan(ctx, e, since, func(recs []connector.Record) error {
		for i, r := range recs {
			if prev, ok := at[r.ID]; ok {
				pages[prev[0]][prev[1]].ID = "" // an earlier version, dropped below
			}
			at[r.ID] = [2]int{len(pages), i}
		}
		pages = append(pages, recs)
		return nil
	})
	if err != nil {
		return c.red.err(err)
	}
	for _, page := range pages {
		page = slices.DeleteFunc(page, func(r connector.Record) bool { return r.ID == "" })
		if len(page) == 0 {
			continue
		}
		if err := fn(page); err != nil {
			return err
		}
	}
	return nil
}

func (c *conn) scan(ctx context.Context, e *entity, since string, fn func([]connector.Record) error) error {
	vars := c.vars()
	vars[nameSince] = since
	return c.pages(ctx, e, e.list, vars, since, fn)
}

// pages reads the pages of a listing (list, or a request of find) with the given values of its
// names, and calls fn with the records of each. With since (and an entity with updated),
// records updated before since are left out.
func (c *conn) pages(ctx context.Context, e *entity, l *listOp, vars map[string]any, since string, fn func([]connector.Record) error) error {
	cl, err := c.build(e, l.req, vars)
	if err != nil {
		return err
	}
	pg := newPager(c, cl, l.page)
	for pageNo := 1; ; pageNo++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", cl.op(), err)
		}
		resp, err := c.cl.do(ctx, cl)
		if err != nil {
			return err
		}
		body, err := c.cl.decode(cl, resp)
		if err != nil {
			return err
		}
		if err := expectPage(cl, l, body, pageNo); err != nil {
			return err
		}
		list, err := records(body, l.records)
		if err != nil {
			return fmt.Errorf("%s: %w", cl.op(), err)
		}
		recs, first, err := pageRecords(cl, e, list, pageNo, since)
		if err != nil {
			return err
		}
		if err := pg.repeated(pageNo, first, len(list)); err != nil {
			return err
		}
		if len(recs) > 0 {
			if err := fn(recs); err != nil {
				return err
			}
		}
		more, err := pg.next(resp, body, pageNo, len(list))
		if err != nil || !more {
			return err
		}
	}
}

// pager is a listing's paging between its requests: the call whose query (or, for the Link
// header, whole URL) each next page rewrites, and what the pages read so far tell of a server
// that does not page.
type pager struct {
	c         *conn
	cl        *call
	base      url.Values // the list's own parameters
	p         paging
	number    int             // page number or offset
	seen      map[string]bool // cursors and Link URLs already followed
	prevFirst string          // the first record's id on the previous page
	prevLen   int
}

// newPager sets the first page's query on cl.
func newPager(c *conn, cl *call, p paging) *pager {
	pg := &pager{c: c, cl: cl, base: cl.url.Query(), p: p, seen: map[string]bool{}, prevLen: -1}
	switch p.style {
	case pagePage:
		pg.number = 1
		pg.setParams(p.param, "1", true)
	case pageOffset:
		pg.setParams(p.param, "0", true)
	default:
		pg.setParams("", "", true)
	}
	return pg
}

// setParams sets the call's query to the page size, pageParam's value and, with keepBase, the
// list's own parameters.
func (pg *pager) setParams(pageParam string, value string, keepBase bool) {
	q := url.Values{}
	if keepBase {
		for k, v := range pg.base {
			q[k] = v
		}
	}
	if pg.p.sizeParam != "" {
		q.Set(pg.p.sizeParam, strconv.Itoa(pg.p.size))
	}
	if pageParam != "" {
		q.Set(pageParam, value)
	}
	pg.cl.url.RawQuery = q.Encode()
}

// pageRecords is the records of page pageNo's list, without those updated before since, and
// the id of the list's first record (whether or not it is left out).
func pageRecords(cl *call, e *entity, list []map[string]any, pageNo int, since string) ([]connector.Record, string, error) {
	recs := make([]connector.Record, 0, len(list))
	first := ""
	for i, m := range list {
		rec, err := e.record(m)
		if err != nil {
			return nil, "", fmt.Errorf("%s: record %d of page %d: %w", cl.op(), i+1, pageNo, err)
		}
		if i == 0 {
			first = rec.ID
		}
		if since != "" && e.updated != "" {
			if v, ok := at(m, e.updated); ok && v != nil && !laterOrEqual(idText(v), since) {
				continue
			}
		}
		recs = append(recs, rec)
	}
	return recs, first, nil
}

// repeated is the error of a page by number or offset that is the previous page again (the
// same first record and length): a server that ignores the page parameter.
func (pg *pager) repeated(pageNo int, first string, n int) error {
	if (pg.p.style == pagePage || pg.p.style == pageOffset) && n > 0 && first == pg.prevFirst && n == pg.prevLen {
		return fmt.Errorf("%s: page %d repeats page %d; does the server read the %q parameter?", pg.cl.op(), pageNo, pageNo-1, pg.p.param)
	}
	pg.prevFirst, pg.prevLen = first, n
	return nil
}

// next sets the call to the page after page pageNo (of n records), or says there is none.
func (pg *pager) next(resp *response, body any, pageNo, n int) (bool, error) {
	switch pg.p.style {
	case pageCursor:
		return pg.followCursor(body, pageNo, n)
	case pagePage, pageOffset:
		return pg.followNumber(body, pageNo, n)
	case pageLink:
		return pg.followLink(resp, pageNo, n)
	default:
		return false, nil
	}
}

// followCursor sends back the body's cursor; none (or an empty one) is the last page.
func (pg *pager) followCursor(body any, pageNo, n int) (bool, error) {
	cl, p := pg.cl, pg.p
	v, _ := at(body, p.cursor)
	switch v.(type) {
	case map[string]any, []any:
		return false, fmt.Errorf("%s: the cursor at %q is %s, not text", cl.op(), p.cursor, resultKind(v))
	}
	next := ""
	if v != nil {
		next = idText(v)
	}
	if next == "" {
		return false, nil
	}
	if pg.seen[next] {
		return false, fmt.Errorf("%s: the server sent cursor %q again; paging stopped so as not to loop", cl.op(), next)
	}
	if err := pagesEnd(cl, p, pageNo, n, fmt.Sprintf(" (cursor %q)", next)); err != nil {
		return false, err
	}
	pg.seen[next] = true
	pg.setParams(p.param, next, !p.alone)
	return true, nil
}

// followNumber asks for the next page number or offset; a short or empty page, or the
// totalPages-th, is the last.
func (pg *pager) followNumber(body any, pageNo, n int) (bool, error) {
	p := pg.p
	if n == 0 || p.size > 0 && n < p.size {
		return false, nil
	}
	if p.total != "" {
		// totalPages: the last page may be full, and asking for the one after it costs a
		// request (and a budget's slot) for nothing.
		if total, ok := numberOf(at(body, p.total)); ok && float64(pageNo) >= total {
			return false, nil
		}
	}
	if err := pagesEnd(pg.cl, p, pageNo, n, ""); err != nil {
		return false, err
	}
	if p.style == pagePage {
		pg.number++
	} else {
		pg.number += n
	}
	pg.setParams(p.param, strconv.Itoa(pg.number), true)
	return true, nil
}

// followLink follows the Link header's rel="next", on the API's own host only.
func (pg *pager) followLink(resp *response, pageNo, n int) (bool, error) {
	cl, base := pg.cl, pg.c.s.base
	next, err := nextLink(resp)
	if err != nil || next == nil {
		if err != nil {
			return false, fmt.Errorf("%s: %w", cl.op(), err)
		}
		return false, nil
	}
	if !strings.EqualFold(next.Host, base.Host) || next.Scheme != base.Scheme {
		return false, fmt.Errorf("%s: refused the Link header's next page on another host (%s); pages are read only from %s", cl.op(), origin(next), origin(base))
	}
	if pg.seen[next.String()] {
		return false, fmt.Errorf("%s: the Link header points at a page already read; paging stopped so as not to loop", cl.op())
	}
	if err := pagesEnd(cl, pg.p, pageNo, n, " (Link header)"); err != nil {
		return false, err
	}
	pg.seen[next.String()] = true
	cl.url = next
	return true, nil
}

// pagesEnd is the error of a listing that must stop although the server gives a next page:
// page pageNo was empty (n records) yet not the last, or it was the max_pages-th. A server that
// answers {"data": [], "next_cursor": "<n+1>"} for ever made a run that never finished.
func pagesEnd(cl *call, p paging, pageNo, n int, next string) error {
	switch {
	case n == 0:
		return fmt.Errorf("%s: page %d is empty but the server gives a next page%s; paging stopped, as a listing that goes on with empty pages may never end (check the list's paging keys)", cl.op(), pageNo, next)
	case pageNo >= p.maxPages:
		return fmt.Errorf("%s: stopped after %d pages (page.max_pages), and the server still gives a next page%s; if the list is that long, raise max_pages in the list's page", cl.op(), pageNo, next)
	}
	return nil
}

// nextLink returns the URL of the Link header's rel="next", resolved against the URL that
// answered, or nil.
func nextLink(resp *response) (*url.URL, error) {
	for _, h := range resp.header.Values("Link") {
		for _, link := range splitLinks(h) {
			target, params, ok := strings.Cut(link, ">")
			target = strings.TrimSpace(target)
			if !ok || !strings.HasPrefix(target, "<") {
				continue
			}
			if !hasRel(params, "next") {
				continue
			}
			u, err := url.Parse(strings.TrimPrefix(target, "<"))
			if err != nil {
				return nil, fmt.Errorf("the Link header's next page %q is not a URL", target)
			}
			return resp.url.ResolveReference(u), nil
		}
	}
	return nil, nil
}

// splitLinks splits a Link header at the commas between links (not those inside <...> or
// quotes).
func splitLinks(h string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(h); i++ {
		switch h[i] {
		case '<':
			if !quoted {
				depth++
			}
		case '>':
			if !quoted && depth > 0 {
				depth--
			}
		case '"':
			if depth == 0 {
				quoted = !quoted
			}
		case ',':
			if depth == 0 && !quoted {
				out = append(out, h[start:i])
				start = i + 1
			}
		}
	}
	return append(out, h[start:])
}

// hasRel reports whether a link's parameters (; rel="next last") include rel.
func hasRel(params, rel string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "rel") {
			continue
		}
		for _, r := range strings.Fields(strings.Trim(strings.TrimSpace(v), `"`)) {
			if strings.EqualFold(r, rel) {
				return true
			}
		}
	}
	return false
}
