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
	base := cl.url.Query() // the list's own parameters
	p := l.page
	setParams := func(pageParam string, value string, keepBase bool) {
		q := url.Values{}
		if keepBase {
			for k, v := range base {
				q[k] = v
			}
		}
		if p.sizeParam != "" {
			q.Set(p.sizeParam, strconv.Itoa(p.size))
		}
		if pageParam != "" {
			q.Set(pageParam, value)
		}
		cl.url.RawQuery = q.Encode()
	}
	number := 0 // page number or offset
	switch p.style {
	case pagePage:
		number = 1
		setParams(p.param, "1", true)
	case pageOffset:
		setParams(p.param, "0", true)
	default:
		setParams("", "", true)
	}
	seen := map[string]bool{}
	var prevFirst string
	prevLen := -1
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
		recs := make([]connector.Record, 0, len(list))
		first := ""
		for i, m := range list {
			rec, err := e.record(m)
			if err != nil {
				return fmt.Errorf("%s: record %d of page %d: %w", cl.op(), i+1, pageNo, err)
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
		if (p.style == pagePage || p.style == pageOffset) && len(list) > 0 && first == prevFirst && len(list) == prevLen {
			return fmt.Errorf("%s: page %d repeats page %d; does the server read the %q parameter?", cl.op(), pageNo, pageNo-1, p.param)
		}
		prevFirst, prevLen = first, len(list)
		if len(recs) > 0 {
			if err := fn(recs); err != nil {
				return err
			}
		}
		switch p.style {
		case pageCursor:
			v, _ := at(body, p.cursor)
			switch v.(type) {
			case map[string]any, []any:
				return fmt.Errorf("%s: the cursor at %q is %s, not text", cl.op(), p.cursor, resultKind(v))
			}
			next := ""
			if v != nil {
				next = idText(v)
			}
			if next == "" {
				return nil
			}
			if seen[next] {
				return fmt.Errorf("%s: the server sent cursor %q again; paging stopped so as not to loop", cl.op(), next)
			}
			if err := pagesEnd(cl, p, pageNo, len(list), fmt.Sprintf(" (cursor %q)", next)); err != nil {
				return err
			}
			seen[next] = true
			setParams(p.param, next, !p.alone)
		case pagePage, pageOffset:
			if len(list) == 0 || p.size > 0 && len(list) < p.size {
				return nil
			}
			if p.total != "" {
				// totalPages: the last page may be full, and asking for the one after it costs a
				// request (and a budget's slot) for nothing.
				if n, ok := numberOf(at(body, p.total)); ok && float64(pageNo) >= n {
					return nil
				}
			}
			if err := pagesEnd(cl, p, pageNo, len(list), ""); err != nil {
				return err
			}
			if p.style == pagePage {
				number++
			} else {
				number += len(list)
			}
			setParams(p.param, strconv.Itoa(number), true)
		case pageLink:
			next, err := nextLink(resp)
			if err != nil || next == nil {
				if err != nil {
					return fmt.Errorf("%s: %w", cl.op(), err)
				}
				return nil
			}
			if !strings.EqualFold(next.Host, c.s.base.Host) || next.Scheme != c.s.base.Scheme {
				return fmt.Errorf("%s: refused the Link header's next page on another host (%s); pages are read only from %s", cl.op(), origin(next), origin(c.s.base))
			}
			if seen[next.String()] {
				return fmt.Errorf("%s: the Link header points at a page already read; paging stopped so as not to loop", cl.op())
			}
			if err := pagesEnd(cl, p, pageNo, len(list), " (Link header)"); err != nil {
				return err
			}
			seen[next.String()] = true
			cl.url = next
		default:
			return nil
		}
	}
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
