package main

// The generator of the source system: N products and N/10 orders with one to five lines, from
// a fixed seed, so that the same N gives the same database byte for byte. Databases are cached
// in -dir by N (source-<N>.db); genVersion changes when what is generated changes.

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const (
	genVersion = 1
	seed       = 20250101
	stampStart = "2025-01-01T00:00:00Z"
	stampOut   = "2006-01-02T15:04:05Z"
)

var (
	words      = []string{"Espresso", "Filter", "Green", "Black", "Oolong", "Grinder", "Kettle", "Mug", "Decanter", "Beans", "Roast", "Tin", "Scale", "Press", "Cup", "Saucer"}
	categories = []string{"coffee", "tea", "equipment", "grinders", "kettles", "cups", "accessories", "gifts", "subscriptions", "spare-parts", "books", "clearance"}
	brands     = []string{"Nordic Roast", "Kaffa", "Tindra", "Morgon", "Fjell", "Havn", "Solsikke", "Brygg", "Lys", "Skog", "Vind", "Elv", "Berg", "Hav", "Sno", "Is", "Sol", "Mane", "Stjerne", "Sky"}
	statuses   = []string{"pending", "paid", "packed", "shipped", "delivered"}
	customers  = []string{"Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov", "Donald Knuth", "Frances Allen", "Ken Thompson"}
)

// product is one generated product, as the source table holds it.
type product struct {
	id              int64
	sku, name       string
	description     *string
	category, brand string
	ean             *string
	qty             int64
	price, cost     float64
	weight          *float64
	active          bool
	updated         string
}

// products generates n products in id order and calls fn with each.
func products(n int, fn func(p *product) error) error {
	rng := rand.New(rand.NewPCG(seed, 1))
	start, _ := time.Parse(time.RFC3339, stampStart)
	var p product
	for i := 1; i <= n; i++ {
		p = product{
			id:       int64(i),
			sku:      fmt.Sprintf("P%07d", i),
			name:     fmt.Sprintf("%s %s %d g", words[rng.IntN(len(words))], words[rng.IntN(len(words))], 50*(1+rng.IntN(20))),
			category: categories[rng.IntN(len(categories))],
			brand:    brands[rng.IntN(len(brands))],
			qty:      int64(rng.IntN(500)),
			active:   rng.IntN(5) != 0,
			updated:  start.Add(time.Duration(i) * time.Second).Format(stampOut),
		}
		cents := 100 + rng.IntN(99900)
		p.price = float64(cents) / 100
		p.cost = float64(cents*(40+rng.IntN(40))/100) / 100
		if rng.IntN(20) != 0 {
			d := fmt.Sprintf("%s from %s, %s. Item %d of the catalogue.", p.name, p.brand, strings.ToLower(words[rng.IntN(len(words))]), i)
			p.description = &d
		}
		if rng.IntN(10) != 0 {
			e := fmt.Sprintf("%013d", rng.Int64N(1e13))
			p.ean = &e
		}
		if rng.IntN(20) != 0 {
			w := float64(1+rng.IntN(5000)) / 1000
			p.weight = &w
		}
		if err := fn(&p); err != nil {
			return err
		}
	}
	return nil
}

// sourcePath returns the cached source database of n products, generating it when missing.
func sourcePath(dir string, n int) (string, error) {
	path := filepath.Join(dir, fmt.Sprintf("source-v%d-%d.db", genVersion, n))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	logf("generating %s: %d products, %d orders", path, n, n/10)
	began := time.Now()
	tmp := path + ".tmp"
	os.Remove(tmp)
	if err := generate(tmp, n); err != nil {
		os.Remove(tmp)
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", err
	}
	logf("generated in %.1fs", time.Since(began).Seconds())
	return path, nil
}

func generate(path string, n int) error {
	script, err := testdata.ReadFile("testdata/erp.sql")
	if err != nil {
		return err
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=OFF&_synchronous=OFF")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(string(script)); err != nil {
		return err
	}
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ins, err := tx.Prepare(`INSERT INTO products (id, sku, name, description, category, brand, ean, qty, price, cost, weight_kg, active, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	prices := make([]float64, n+1)
	err = products(n, func(p *product) error {
		prices[p.id] = p.price
		_, err := ins.Exec(p.id, p.sku, p.name, p.description, p.category, p.brand, p.ean, p.qty, p.price, p.cost, p.weight, p.active, p.updated)
		return err
	})
	if err != nil {
		return err
	}
	insOrder, err := tx.Prepare(`INSERT INTO orders (id, number, customer, status, total, updated_at) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	insLine, err := tx.Prepare(`INSERT INTO order_lines (order_id, product_id, quantity, unit_price) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	start, _ := time.Parse(time.RFC3339, stampStart)
	for o := 1; o <= n/10; o++ {
		lines := 1 + rng.IntN(5)
		total := 0
		for l := 0; l < lines; l++ {
			pid := 1 + rng.IntN(n)
			qty := 1 + rng.IntN(10)
			cents := int(prices[pid]*100 + 0.5)
			total += cents * qty
			if _, err := insLine.Exec(o, pid, qty, float64(cents)/100); err != nil {
				return err
			}
		}
		_, err := insOrder.Exec(o, fmt.Sprintf("SO%07d", o), customers[rng.IntN(len(customers))], statuses[rng.IntN(len(statuses))],
			float64(total)/100, start.Add(time.Duration(o)*time.Second).Format(stampOut))
		if err != nil {
			return err
		}
	}
	return tx.Commit()
}
