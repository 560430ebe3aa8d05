package main

// The hand-written reference programs: what a developer would write for this one pair of
// tables, with typed scans, plain Go mapping, prepared statements and 10,000-row
// transactions, under the same durability as dataflow (WAL, synchronous=FULL on the target and
// on the link table). Each record gives a target row and a link row holding the per-property
// base and the digests of both records, as dataflow's link state does.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

const handTxRows = 10000

// srcProduct is a source row as the hand-written loop scans it.
type srcProduct struct {
	id              int64
	sku, name       string
	description     sql.NullString
	category, brand string
	ean             sql.NullString
	qty             int64
	price, cost     float64
	weight          sql.NullFloat64
	active          bool
	updated         string
}

const srcColumns = "id, sku, name, description, category, brand, ean, qty, price, cost, weight_kg, active, updated_at"

func (p *srcProduct) scan(rows *sql.Rows) error {
	return rows.Scan(&p.id, &p.sku, &p.name, &p.description, &p.category, &p.brand, &p.ean, &p.qty, &p.price, &p.cost, &p.weight, &p.active, &p.updated)
}

// tgtItem is a target row.
type tgtItem struct {
	id, sku, title  string
	description     sql.NullString
	category, brand string
	barcode         sql.NullString
	stock           string
	weight          sql.NullFloat64
	visible         bool
	price           string
	margin          float64
	handle          string
}

const tgtColumns = "id, sku, title, description, category, brand, barcode, stock, weight_kg, visible, price, margin, handle"

func (t *tgtItem) scan(rows *sql.Rows) error {
	return rows.Scan(&t.id, &t.sku, &t.title, &t.description, &t.category, &t.brand, &t.barcode, &t.stock, &t.weight, &t.visible, &t.price, &t.margin, &t.handle)
}

// mapItem is the mapping in plain Go.
func mapItem(p *srcProduct) tgtItem {
	return tgtItem{
		sku: p.sku, title: p.name, description: p.description, category: p.category, brand: p.brand,
		barcode: p.ean, stock: strconv.FormatInt(p.qty, 10), weight: p.weight, visible: p.active,
		price:  strconv.FormatFloat(math.Round(p.price*100)/100, 'f', 2, 64),
		margin: p.price - p.cost,
		handle: strings.ToLower(p.brand) + "-" + strings.ToLower(p.sku),
	}
}

func appendNullString(b []byte, s sql.NullString) []byte {
	if !s.Valid {
		return append(b, 0)
	}
	b = append(b, 1)
	b = append(b, s.String...)
	return append(b, 0)
}

func appendNullFloat(b []byte, f sql.NullFloat64) []byte {
	if !f.Valid {
		return append(b, 0)
	}
	return strconv.AppendFloat(append(b, 1), f.Float64, 'g', -1, 64)
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// hash is a digest of the source row's content.
func (p *srcProduct) hash(buf []byte) string { return digest(p.content(buf)) }

// content is the source row's values, in buf, as its digests cover them.
func (p *srcProduct) content(buf []byte) []byte {
	b := buf[:0]
	b = append(append(b, p.sku...), 0)
	b = append(append(b, p.name...), 0)
	b = appendNullString(b, p.description)
	b = append(append(b, p.category...), 0)
	b = append(append(b, p.brand...), 0)
	b = appendNullString(b, p.ean)
	b = strconv.AppendInt(b, p.qty, 10)
	b = strconv.AppendFloat(append(b, 0), p.price, 'g', -1, 64)
	b = strconv.AppendFloat(append(b, 0), p.cost, 'g', -1, 64)
	b = appendNullFloat(b, p.weight)
	b = strconv.AppendBool(b, p.active)
	return append(b, p.updated...)
}

// hash is a digest of the target row's content.
func (t *tgtItem) hash(buf []byte) string { return digest(t.content(buf)) }

// content is the target row's values but its id, in buf, as its digests cover them.
func (t *tgtItem) content(buf []byte) []byte {
	b := buf[:0]
	b = append(append(b, t.sku...), 0)
	b = append(append(b, t.title...), 0)
	b = appendNullString(b, t.description)
	b = append(append(b, t.category...), 0)
	b = append(append(b, t.brand...), 0)
	b = appendNullString(b, t.barcode)
	b = append(append(b, t.stock...), 0)
	b = appendNullFloat(b, t.weight)
	b = strconv.AppendBool(b, t.visible)
	b = append(append(b, t.price...), 0)
	b = strconv.AppendFloat(b, t.margin, 'g', -1, 64)
	return append(b, t.handle...)
}

// appendBase writes the link's base: per property, the value computed from the source and the
// value the target holds, as compact JSON; after a create they are the same, stored once as
// dataflow stores them ({"b":<value>}).
func appendBase(b []byte, t *tgtItem) []byte {
	b = append(b, '{')
	first := true
	prop := func(key string, val []byte) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = strconv.AppendQuote(b, key)
		b = append(b, `:{"b":`...)
		b = append(b, val...)
		b = append(b, '}')
	}
	var v []byte
	str := func(s string) []byte { v, _ = json.Marshal(s); return v }
	nstr := func(s sql.NullString) []byte {
		if !s.Valid {
			return []byte("null")
		}
		return str(s.String)
	}
	prop("active→visible", strconv.AppendBool(nil, t.visible))
	prop("brand→brand", str(t.brand))
	prop("brand→handle", str(t.handle))
	prop("category→category", str(t.category))
	prop("cost→margin", strconv.AppendFloat(nil, t.margin, 'g', -1, 64))
	prop("description→description", nstr(t.description))
	prop("ean→barcode", nstr(t.barcode))
	prop("name→title", str(t.title))
	prop("price→price", str(t.price))
	prop("qty→stock", str(t.stock))
	prop("sku→sku", str(t.sku))
	if t.weight.Valid {
		prop("weight_kg→weight_kg", strconv.AppendFloat(nil, t.weight.Float64, 'g', -1, 64))
	} else {
		prop("weight_kg→weight_kg", []byte("null"))
	}
	return append(b, '}')
}

// newTextID makes an id as the shop's system makes them (engine/connector/sqlite's text ids,
// and Squarespace's, which are MongoDB ObjectIds): 24 hex digits that lead with the time, 12
// digits of milliseconds, then 12 random. Both programs' inserts into the indexes of target
// ids then append, as they would against the real system: a reference with purely random ids
// would pay a random index page per record that dataflow's run does not.
func newTextID() string {
	var b [12]byte
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	if _, err := rand.Read(b[6:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// durable opens a database for writing as dataflow does: WAL, synchronous=FULL.
func durable(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=5000&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, db.Ping()
}

const handLinksDDL = `CREATE TABLE IF NOT EXISTS links (
	flow        TEXT NOT NULL,
	source_id   TEXT NOT NULL,
	target_id   TEXT NOT NULL,
	base        TEXT NOT NULL DEFAULT '{}',
	source_hash TEXT NOT NULL DEFAULT '',
	target_hash TEXT NOT NULL DEFAULT '',
	updated     TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (flow, source_id),
	UNIQUE (flow, target_id)
)`

// handFullSync copies every product into the empty target and writes a link per product.
func handFullSync(ctx context.Context, dir string) (int, error) {
	src, err := sql.Open("sqlite3", "file:"+dir+"/erp.db?mode=ro")
	if err != nil {
		return 0, err
	}
	defer src.Close()
	tgt, err := durable(dir + "/shop.db")
	if err != nil {
		return 0, err
	}
	defer tgt.Close()
	st, err := durable(dir + "/hand-links.db")
	if err != nil {
		return 0, err
	}
	defer st.Close()
	if _, err := st.Exec(handLinksDDL); err != nil {
		return 0, err
	}
	rows, err := src.QueryContext(ctx, "SELECT "+srcColumns+" FROM products ORDER BY id")
	if err != nil {
		return 0, err
	}
	defer rows.Close()

	var ttx, stx *sql.Tx
	var insItem, insLink *sql.Stmt
	begin := func() error {
		var err error
		if ttx, err = tgt.Begin(); err != nil {
			return err
		}
		if stx, err = st.Begin(); err != nil {
			return err
		}
		if insItem, err = ttx.Prepare("INSERT INTO items (" + tgtColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"); err != nil {
			return err
		}
		insLink, err = stx.Prepare("INSERT INTO links (flow, source_id, target_id, base, source_hash, target_hash, updated) VALUES (?, ?, ?, ?, ?, ?, ?)")
		return err
	}
	commit := func() error {
		if err := ttx.Commit(); err != nil {
			return err
		}
		return stx.Commit()
	}
	if err := begin(); err != nil {
		return 0, err
	}
	n := 0
	var p srcProduct
	var hashBuf, base []byte
	hashBuf = make([]byte, 0, 512)
	for rows.Next() {
		if err := p.scan(rows); err != nil {
			return n, err
		}
		t := mapItem(&p)
		t.id = newTextID()
		if _, err := insItem.Exec(t.id, t.sku, t.title, t.description, t.category, t.brand, t.barcode, t.stock, t.weight, t.visible, t.price, t.margin, t.handle); err != nil {
			return n, err
		}
		base = appendBase(base[:0], &t)
		if _, err := insLink.Exec("products-to-items", strconv.FormatInt(p.id, 10), t.id, string(base), p.hash(hashBuf), t.hash(hashBuf), "2025-01-01T00:00:00Z"); err != nil {
			return n, err
		}
		n++
		if n%handTxRows == 0 {
			if err := commit(); err != nil {
				return n, err
			}
			if err := begin(); err != nil {
				return n, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	return n, commit()
}

// handNoChange re-reads every product, its link and its target row, in pages of 1,000, and
// compares the digests of both records with those of the link: the work of finding that
// nothing changed on either side, without a watermark.
func handNoChange(ctx context.Context, dir string) (unchanged, changed int, err error) {
	src, err := sql.Open("sqlite3", "file:"+dir+"/erp.db?mode=ro")
	if err != nil {
		return 0, 0, err
	}
	defer src.Close()
	tgt, err := sql.Open("sqlite3", "file:"+dir+"/shop.db?mode=ro")
	if err != nil {
		return 0, 0, err
	}
	defer tgt.Close()
	st, err := sql.Open("sqlite3", "file:"+dir+"/hand-links.db?mode=ro")
	if err != nil {
		return 0, 0, err
	}
	defer st.Close()
	rows, err := src.QueryContext(ctx, "SELECT "+srcColumns+" FROM products ORDER BY id")
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	const page = 1000
	type link struct{ target, sh, th string }
	page1 := make([]srcProduct, 0, page)
	links := make(map[string]link, page)
	items := make(map[string]tgtItem, page)
	args := make([]any, 0, page+1)
	hashBuf := make([]byte, 0, 512)
	var q bytes.Buffer
	placeholders := func(n int) string {
		q.Reset()
		for i := 0; i < n; i++ {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteByte('?')
		}
		return q.String()
	}
	flush := func() error {
		if len(page1) == 0 {
			return nil
		}
		clear(links)
		clear(items)
		args = append(args[:0], "products-to-items")
		for i := range page1 {
			args = append(args, strconv.FormatInt(page1[i].id, 10))
		}
		lr, err := st.QueryContext(ctx, "SELECT source_id, target_id, source_hash, target_hash FROM links WHERE flow = ? AND source_id IN ("+placeholders(len(page1))+")", args...)
		if err != nil {
			return err
		}
		args = args[:0]
		for lr.Next() {
			var sid string
			var l link
			if err := lr.Scan(&sid, &l.target, &l.sh, &l.th); err != nil {
				lr.Close()
				return err
			}
			links[sid] = l
			args = append(args, l.target)
		}
		lr.Close()
		tr, err := tgt.QueryContext(ctx, "SELECT "+tgtColumns+" FROM items WHERE id IN ("+placeholders(len(args))+")", args...)
		if err != nil {
			return err
		}
		for tr.Next() {
			var t tgtItem
			if err := t.scan(tr); err != nil {
				tr.Close()
				return err
			}
			items[t.id] = t
		}
		tr.Close()
		for i := range page1 {
			p := &page1[i]
			l, ok := links[strconv.FormatInt(p.id, 10)]
			t, found := items[l.target]
			if ok && found && p.hash(hashBuf) == l.sh && t.hash(hashBuf) == l.th {
				unchanged++
			} else {
				changed++
			}
		}
		page1 = page1[:0]
		return nil
	}
	for rows.Next() {
		page1 = append(page1, srcProduct{})
		if err := page1[len(page1)-1].scan(rows); err != nil {
			return unchanged, changed, err
		}
		if len(page1) == page {
			if err := flush(); err != nil {
				return unchanged, changed, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return unchanged, changed, err
	}
	if err := flush(); err != nil {
		return unchanged, changed, err
	}
	if changed > 0 {
		return unchanged, changed, fmt.Errorf("%d of %d products changed; the baseline is not in sync", changed, unchanged+changed)
	}
	return unchanged, changed, nil
}
