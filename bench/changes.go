package main

// Edits made between runs, before the timed child starts: 1 % of the products (and of the
// orders) changed in the source, and for the two-way scenario another 1 % in the target, as
// users would, with their last-modified stamps moved forward.

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"time"
)

// picks returns 2k distinct ids in 1..n from a fixed seed: the first k for source edits,
// the next k for target edits.
func picks(n, k int, stream uint64) (src, tgt []int) {
	rng := rand.New(rand.NewPCG(seed, stream))
	perm := rng.Perm(n)
	for i := range perm {
		perm[i]++
	}
	return perm[:k], perm[k : 2*k]
}

// editSource changes 1 % of the products (and of the orders when orders is set) in the
// source database of dir; it returns how many records it changed.
func editSource(dir string, n int, orders bool) (int, error) {
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "erp.db")+"?_busy_timeout=5000")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	start, _ := time.Parse(time.RFC3339, "2030-01-01T00:00:00Z")
	stamp := func(i int) string { return start.Add(time.Duration(i) * time.Second).Format(stampOut) }
	ids, _ := picks(n, n/100, 3)
	changed := 0
	for i, id := range ids {
		if _, err := tx.Exec("UPDATE products SET name = name || ' v2', price = price + 1, updated_at = ? WHERE id = ?", stamp(i), id); err != nil {
			return 0, err
		}
		changed++
	}
	if orders && n >= 1000 {
		ids, _ := picks(n/10, n/1000, 4)
		for i, id := range ids {
			if _, err := tx.Exec("UPDATE orders SET status = 'cancelled', updated_at = ? WHERE id = ?", stamp(i), id); err != nil {
				return 0, err
			}
			changed++
		}
	}
	return changed, tx.Commit()
}

// editTarget changes, in the shop, 1 % of the items and orders linked to products and orders
// that editSource does not touch, found through the link state.
func editTarget(dir string, n int) (int, error) {
	st, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "state.db")+"?mode=ro")
	if err != nil {
		return 0, err
	}
	defer st.Close()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "shop.db")+"?_busy_timeout=5000")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	changed := 0
	edit := func(flow string, ids []int, update string) error {
		for _, id := range ids {
			var target string
			if err := st.QueryRow("SELECT target_id FROM links WHERE flow = ? AND source_id = ?", flow, strconv.Itoa(id)).Scan(&target); err != nil {
				return fmt.Errorf("the link of %s %d: %w", flow, id, err)
			}
			if _, err := tx.Exec(update, target); err != nil {
				return err
			}
			changed++
		}
		return nil
	}
	_, products := picks(n, n/100, 3)
	if err := edit("products-to-items", products, "UPDATE items SET title = title || ' (shop)', stock = CAST(CAST(stock AS INTEGER) + 5 AS TEXT), modified_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?"); err != nil {
		return 0, err
	}
	if n >= 1000 {
		_, orders := picks(n/10, n/1000, 4)
		if err := edit("orders-to-orders", orders, "UPDATE orders SET customer = customer || ' (shop)', modified_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?"); err != nil {
			return 0, err
		}
	}
	return changed, tx.Commit()
}
