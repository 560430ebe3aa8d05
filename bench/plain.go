package main

// The plain loops of issue 19: what a user would write for the first sync without modelling
// dataflow's storage (handwritten.go, modelled on it, stays as the other reference). The same
// typed scans and plain Go mapping as handwritten.go; per product a prepared insert of the
// target row and of a compact link row (the integer source id, the target id and 8-byte
// digests of both records); 10,000-row transactions; WAL and synchronous=FULL on the target and
// on the link database, the durability dataflow gives both.
//
// Two targets. With integer ids (scenario i, int-ids/shop.sql) SQLite assigns the id and the
// link table is keyed by the source id alone: a one-way job finds a link by the source record
// it reads. With the shop's text ids (scenario a, shop.sql) the program makes the id as the
// shop's system does (24 hex digits that lead with the time, Squarespace's ObjectId shape; see
// newTextID), and the link table keeps a unique index on the target id: the reverse index that
// dataflow keeps too.

import (
	"context"
	"crypto/sha256"
	"database/sql"
)

// plainLinksDDL is the plain loop's link table, by whether the target's ids are integers.
var plainLinksDDL = map[bool]string{
	true: `CREATE TABLE IF NOT EXISTS links (
	source_id     INTEGER PRIMARY KEY,
	target_id     INTEGER NOT NULL,
	source_digest BLOB NOT NULL,
	target_digest BLOB NOT NULL
)`,
	false: `CREATE TABLE IF NOT EXISTS links (
	source_id     INTEGER PRIMARY KEY,
	target_id     TEXT NOT NULL UNIQUE,
	source_digest BLOB NOT NULL,
	target_digest BLOB NOT NULL
)`,
}

// plainLinksFile is the plain loop's link database in a run directory.
const plainLinksFile = "plain-links.db"

// digest8 is an 8-byte digest: enough to tell a changed record from its last synced state.
func digest8(to *[8]byte, content []byte) []byte {
	sum := sha256.Sum256(content)
	copy(to[:], sum[:8])
	return to[:]
}

// plainFullSync copies every product into the empty target and writes a link row per product.
func plainFullSync(ctx context.Context, dir string, intIDs bool) (int, error) {
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
	st, err := durable(dir + "/" + plainLinksFile)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	if _, err := st.Exec(plainLinksDDL[intIDs]); err != nil {
		return 0, err
	}
	rows, err := src.QueryContext(ctx, "SELECT "+srcColumns+" FROM products ORDER BY id")
	if err != nil {
		return 0, err
	}
	defer rows.Close()

	insertItem := "INSERT INTO items (sku, title, description, category, brand, barcode, stock, weight_kg, visible, price, margin, handle) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	if !intIDs {
		insertItem = "INSERT INTO items (" + tgtColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	}
	var ttx, stx *sql.Tx
	var insItem, insLink *sql.Stmt
	begin := func() error {
		var err error
		if ttx, err = tgt.BeginTx(ctx, nil); err != nil {
			return err
		}
		if stx, err = st.BeginTx(ctx, nil); err != nil {
			return err
		}
		if insItem, err = ttx.PrepareContext(ctx, insertItem); err != nil {
			return err
		}
		insLink, err = stx.PrepareContext(ctx, "INSERT INTO links (source_id, target_id, source_digest, target_digest) VALUES (?, ?, ?, ?)")
		return err
	}
	// The target's rows are durable before the links that name them: a crash in between
	// leaves rows without links, which a rerun finds, never links to rows that do not exist.
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
	var sd, td [8]byte
	buf := make([]byte, 0, 512)
	for rows.Next() {
		if err := p.scan(rows); err != nil {
			return n, err
		}
		t := mapItem(&p)
		var targetID any
		if intIDs {
			res, err := insItem.Exec(t.sku, t.title, t.description, t.category, t.brand, t.barcode, t.stock, t.weight, t.visible, t.price, t.margin, t.handle)
			if err != nil {
				return n, err
			}
			if targetID, err = res.LastInsertId(); err != nil {
				return n, err
			}
		} else {
			t.id = newTextID()
			if _, err := insItem.Exec(t.id, t.sku, t.title, t.description, t.category, t.brand, t.barcode, t.stock, t.weight, t.visible, t.price, t.margin, t.handle); err != nil {
				return n, err
			}
			targetID = t.id
		}
		if _, err := insLink.Exec(p.id, targetID, digest8(&sd, p.content(buf)), digest8(&td, t.content(buf))); err != nil {
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
