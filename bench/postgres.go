package main

// Scenario h: the first sync of the N products into PostgreSQL (the shop's items table in
// testdata/postgres), by dataflow (the postgres connector, the link state in SQLite) and by a
// hand-written pgx loop: typed scans of the SQLite source, plain Go mapping, CopyFrom of
// 10,000 rows per transaction, and a link row per record in a SQLite link table, as in a.
//
// The server is BENCH_POSTGRES_DSN (a postgres:// URL of a user who may create databases) or,
// without it, a throwaway PostgreSQL 15 started as internal/pgtest starts the tests' (fsync
// off: both programs run against the same server). Each measured run gets a fresh database.
// Without the binaries and without the variable the scenario is skipped, saying why.

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"

	"github.com/dataflow-sync/dataflow/engine"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
	dsync "github.com/dataflow-sync/dataflow/engine/sync"
	"github.com/dataflow-sync/dataflow/internal/gctune"
	"github.com/dataflow-sync/dataflow/internal/pgtest"
	"github.com/jackc/pgx/v5"
)

// pgServer is the scenario's server: an admin URL, and the throwaway server to remove.
type pgServer struct {
	admin  string
	remove func()
}

// postgres returns the server, starting a throwaway one on first use; "" and the reason when
// there is none.
func (b *bench) postgres() (*pgServer, string) {
	if b.pg != nil || b.pgSkip != "" {
		return b.pg, b.pgSkip
	}
	if dsn := os.Getenv("BENCH_POSTGRES_DSN"); dsn != "" {
		b.pg = &pgServer{admin: dsn, remove: func() {}}
		return b.pg, ""
	}
	if !pgtest.Available() {
		b.pgSkip = "no PostgreSQL: set BENCH_POSTGRES_DSN, or install PostgreSQL 15 (scripts/install-test-servers.sh)"
		return nil, b.pgSkip
	}
	logf("starting a throwaway PostgreSQL server")
	s, err := pgtest.Launch()
	if err != nil {
		b.pgSkip = "PostgreSQL did not start: " + firstLine(err.Error())
		return nil, b.pgSkip
	}
	b.pg = &pgServer{admin: s.AdminDSN("postgres"), remove: s.Remove}
	return b.pg, ""
}

// database makes a fresh database with the shop's table and returns its URL.
func (s *pgServer) database(ctx context.Context, name string) (string, error) {
	u, err := url.Parse(s.admin)
	if err != nil || u.Scheme == "" {
		return "", fmt.Errorf("BENCH_POSTGRES_DSN must be a postgres:// URL")
	}
	c, err := pgx.Connect(ctx, s.admin)
	if err != nil {
		return "", err
	}
	defer c.Close(ctx)
	for _, q := range []string{"DROP DATABASE IF EXISTS " + name + " WITH (FORCE)", "CREATE DATABASE " + name} {
		if _, err := c.Exec(ctx, q); err != nil {
			return "", err
		}
	}
	u.Path = "/" + name
	ddl, err := testdata.ReadFile("testdata/postgres/shop.sql")
	if err != nil {
		return "", err
	}
	dc, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return "", err
	}
	defer dc.Close(ctx)
	_, err = dc.Exec(ctx, string(ddl))
	return u.String(), err
}

func (s *pgServer) drop(ctx context.Context, name string) {
	if c, err := pgx.Connect(ctx, s.admin); err == nil {
		c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		c.Close(ctx)
	}
}

// runPostgres is scenario h in the parent.
func (b *bench) runPostgres(n int) {
	ns := fmt.Sprint(n)
	df := b.newRow("h", progDataflow, ns, float64(n))
	hand := b.newRow("h", progGo, ns, float64(n))
	srv, skip := b.postgres()
	if srv == nil {
		logf("h pg-full-sync skipped: %s", skip)
		df.ratio, hand.ratio = "skipped: "+skip, "skipped"
		return
	}
	ctx := context.Background()
	for i := 0; i < b.runs; i++ {
		for _, r := range []*row{df, hand} {
			kind := "pg-full-sync"
			if r == hand {
				kind = "hand-pg-full-sync"
			}
			d, err := b.fresh(fmt.Sprintf("run-h-%s-%d", r.program, i), n)
			if err != nil {
				b.fail(r, err)
				continue
			}
			name := fmt.Sprintf("bench_h_%s_%d", r.program, i)
			dsn, err := srv.database(ctx, name)
			if err != nil {
				b.fail(r, err)
				continue
			}
			b.measure(r, job{Kind: kind, Program: r.program, N: n, Dir: d, DSN: dsn}, i)
			srv.drop(ctx, name)
			os.RemoveAll(d)
		}
	}
	df.ratio = ratioText(hand.median()/df.median(), "go")
	df.target, hand.ratio = "≥ 0.70× go", "reference"
}

// loadPostgresProject loads the one-way dataflow with the shop in PostgreSQL.
func loadPostgresProject(ctx context.Context, td, erpDB, dsn string) (*mapping.Project, error) {
	env := map[string]string{"BENCH_ERP_DB": erpDB, "BENCH_SHOP_DSN": dsn}
	eng, err := engine.New(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		return nil, err
	}
	res, err := eng.Load(ctx, []string{filepath.Join(td, "systems", "erp.yaml"), filepath.Join(td, "postgres", "shop.yaml"), filepath.Join(td, "flows", "one-way.yaml")})
	if err != nil {
		return nil, err
	}
	if res.Diagnostics.HasErrors() {
		return nil, fmt.Errorf("the benchmark's mappings do not load: %v", res.Diagnostics)
	}
	return res.Project, nil
}

// dataflowPostgresRun is `dataflow run` of the one-way dataflow into PostgreSQL.
func dataflowPostgresRun(ctx context.Context, td, dir, dsn string) (*dsync.Report, error) {
	gctune.ForRun()
	proj, err := loadPostgresProject(ctx, td, filepath.Join(dir, "erp.db"), dsn)
	if err != nil {
		return nil, err
	}
	conns, err := openConns(ctx, proj, false, nil)
	if err != nil {
		return nil, err
	}
	defer closeConns(conns)
	st, err := state.Open(ctx, filepath.Join(dir, "state.db"), state.ReadWrite)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	runner := &dsync.Runner{Project: proj, Conns: conns, State: st}
	return runner.Run(ctx)
}

var itemColumns = []string{"id", "sku", "title", "description", "category", "brand", "barcode", "stock", "weight_kg", "visible", "price", "margin", "handle"}

func nullable[T any](v T, ok bool) any {
	if !ok {
		return nil
	}
	return v
}

// handPostgresFullSync copies every product into PostgreSQL with CopyFrom, 10,000 rows per
// transaction, and writes a link row per product in a SQLite link table (committed after the
// rows it links).
func handPostgresFullSync(ctx context.Context, dir, dsn string) (int, error) {
	src, err := sql.Open("sqlite3", "file:"+dir+"/erp.db?mode=ro")
	if err != nil {
		return 0, err
	}
	defer src.Close()
	st, err := durable(dir + "/hand-links.db")
	if err != nil {
		return 0, err
	}
	defer st.Close()
	if _, err := st.Exec(handLinksDDL); err != nil {
		return 0, err
	}
	pg, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer pg.Close(ctx)
	rows, err := src.QueryContext(ctx, "SELECT "+srcColumns+" FROM products ORDER BY id")
	if err != nil {
		return 0, err
	}
	defer rows.Close()

	type link struct{ source, target, base, sh, th string }
	items := make([][]any, 0, handTxRows)
	links := make([]link, 0, handTxRows)
	flush := func() error {
		if len(items) == 0 {
			return nil
		}
		tx, err := pg.Begin(ctx)
		if err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"items"}, itemColumns, pgx.CopyFromRows(items)); err != nil {
			tx.Rollback(ctx)
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		stx, err := st.Begin()
		if err != nil {
			return err
		}
		ins, err := stx.Prepare("INSERT INTO links (flow, source_id, target_id, base, source_hash, target_hash, updated) VALUES (?, ?, ?, ?, ?, ?, ?)")
		if err != nil {
			stx.Rollback()
			return err
		}
		for _, l := range links {
			if _, err := ins.Exec("products-to-items", l.source, l.target, l.base, l.sh, l.th, "2025-01-01T00:00:00Z"); err != nil {
				stx.Rollback()
				return err
			}
		}
		items, links = items[:0], links[:0]
		return stx.Commit()
	}
	n := 0
	var p srcProduct
	hashBuf := make([]byte, 0, 512)
	var base []byte
	for rows.Next() {
		if err := p.scan(rows); err != nil {
			return n, err
		}
		t := mapItem(&p)
		t.id = newTextID()
		items = append(items, []any{t.id, t.sku, t.title, nullable(t.description.String, t.description.Valid), t.category, t.brand,
			nullable(t.barcode.String, t.barcode.Valid), t.stock, nullable(t.weight.Float64, t.weight.Valid), t.visible, t.price, t.margin, t.handle})
		base = appendBase(base[:0], &t)
		links = append(links, link{strconv.FormatInt(p.id, 10), t.id, string(base), p.hash(hashBuf), t.hash(hashBuf)})
		n++
		if len(items) == handTxRows {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	return n, flush()
}
