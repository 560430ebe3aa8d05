package sync_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/state"
	dsync "github.com/dataflow-sync/dataflow/engine/sync"
)

// emptyConn answers every list and every read of products with no records, as an API whose
// token expired answers 200 {"items": []}.
type emptyConn struct{ connector.Conn }

func (c emptyConn) Scan(ctx context.Context, entity, since string, fn func([]connector.Record) error) error {
	if entity != "Product" {
		return c.Conn.Scan(ctx, entity, since, fn)
	}
	return nil
}

func (c emptyConn) Get(ctx context.Context, entity string, ids []string) (map[string]connector.Record, error) {
	if entity != "Product" {
		return c.Conn.Get(ctx, entity, ids)
	}
	return map[string]connector.Record{}, nil
}

// writeState opens the link state for writing and runs fn in a transaction, as the approve
// and reject commands do.
func (p *e2eProject) writeState(fn func(tx state.Tx) error) {
	p.t.Helper()
	st, err := state.Open(context.Background(), p.state, state.ReadWrite)
	if err != nil {
		p.t.Fatal(err)
	}
	defer st.Close()
	tx, err := st.Begin(context.Background())
	if err != nil {
		p.t.Fatal(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		p.t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		p.t.Fatal(err)
	}
}

func (p *e2eProject) pending(flow string) []state.Pending {
	p.t.Helper()
	var out []state.Pending
	p.store(func(st state.Store) (err error) {
		out, err = st.Pending(context.Background(), flow)
		return err
	})
	return out
}

// A side that answers with no records at all is a fault, whatever the delete policy: the run
// stops the flow with the breaker's error, unlinks, deletes and creates nothing, and records
// the change as pending; the other flows go on. Rejected, the change is dropped and the links
// stay: the next run with the shop back writes nothing.
func TestDivergenceEmptiedSideIsAFault(t *testing.T) {
	for _, policy := range []string{"keep", "unlink", "propagate"} {
		t.Run(policy, func(t *testing.T) {
			p := newE2E(t, "delete-"+policy+".yaml")
			p.sync()
			p.exec("crm", "UPDATE customers SET name = 'Chloé Martin-Dupont' WHERE id = 3")
			rep, err := p.run(e2eRunConfig{wrap: func(system string, c connector.Conn) connector.Conn {
				if system == "shop" {
					return emptyConn{c}
				}
				return c
			}})
			want := "flow products: circuit breaker: 10 of 10 linked records of Shop (Product) are missing, more than the limit of 1 (10%); " +
				"nothing was unlinked, deleted or created. If they were removed on purpose, approve the change (dataflow approve 1) and run again; " +
				"if not (an expired token, a wrong filter, an outage), fix the system and run again, or drop the change (dataflow reject 1)"
			if !errors.Is(err, dsync.ErrBreaker) || err.Error() != want {
				t.Fatalf("run: %v\nwant: %s", err, want)
			}
			st := e2eFlow(t, rep, "products")
			if st.Unlinked != 0 || st.CreatedTarget != 0 || st.CreatedSource != 0 || st.Deleted != 0 {
				t.Errorf("products: %+v; want nothing unlinked, created or deleted", *st)
			}
			if p.links("products") != 10 || p.count("shop", "products") != 10 || p.count("crm", "products") != 10 {
				t.Errorf("%d links, shop %d, CRM %d; want 10 each", p.links("products"), p.count("shop", "products"), p.count("crm", "products"))
			}
			pend := p.pending("")
			if len(pend) != 1 || pend[0].Flow != "products" || pend[0].Status != state.PendingWaiting || len(pend[0].Links) != 10 ||
				pend[0].Summary != "10 of 10 linked records of Shop (Product) are missing, more than the limit of 1 (10%); delete: "+policy {
				t.Errorf("pending = %+v", pend)
			}
			if st := e2eFlow(t, rep, "customers"); st.UpdatedTarget != 1 {
				t.Errorf("customers: %+v; the flow after the breaker did not run", *st)
			}
			p.writeState(func(tx state.Tx) error { return tx.DeletePending(pend[0].ID) })
			p.quiet("run after the reject, with the shop back")
			if p.links("products") != 10 || len(p.pending("")) != 0 {
				t.Errorf("after the reject: %d links, pending %v", p.links("products"), p.pending(""))
			}
		})
	}
}

// Records really deleted in bulk: the breaker stops the run and the change waits; approved,
// the next run makes it (under keep: unlinks and creates the shop's products again) and the
// approval is used up.
func TestDivergenceApprovedMassDeleteIsMade(t *testing.T) {
	p := newE2E(t, "delete-keep.yaml")
	p.sync()
	p.exec("shop", "DELETE FROM products")
	if _, err := p.run(e2eRunConfig{}); !errors.Is(err, dsync.ErrBreaker) {
		t.Fatalf("run: %v, want the breaker", err)
	}
	if p.count("shop", "products") != 0 || p.links("products") != 10 {
		t.Fatalf("the breaker's run changed something: shop %d, links %d", p.count("shop", "products"), p.links("products"))
	}
	pend := p.pending("products")
	if len(pend) != 1 {
		t.Fatalf("pending = %+v", pend)
	}
	p.writeState(func(tx state.Tx) error { return tx.ApprovePending(pend[0].ID) })
	rep := p.sync()
	if st := e2eFlow(t, rep, "products"); st.Unlinked != 10 || st.CreatedTarget != 10 {
		t.Errorf("the approved run: %+v; want 10 unlinked and created again", *st)
	}
	if p.count("shop", "products") != 10 || p.links("products") != 10 || len(p.pending("")) != 0 {
		t.Errorf("shop %d, links %d, pending %v", p.count("shop", "products"), p.links("products"), p.pending(""))
	}
	p.quiet("run after")
}

// throttledConn writes the first `accept` records of an Update or Create and then fails the
// call as a whole, as an API answering 429 after some PATCHes, returning the results of the
// records it wrote (partial) or none.
type throttledConn struct {
	connector.Conn
	accept  int
	partial bool
}

var errThrottled = errors.New("429 Too Many Requests")

func (c throttledConn) Update(ctx context.Context, entity string, recs []connector.Record) ([]connector.Result, error) {
	n := min(c.accept, len(recs))
	done, err := c.Conn.Update(ctx, entity, recs[:n])
	if err != nil {
		return nil, err
	}
	if !c.partial {
		return nil, errThrottled
	}
	return append(done, make([]connector.Result, len(recs)-n)...), errThrottled
}

func (c throttledConn) Create(ctx context.Context, entity string, data []map[string]any) ([]connector.Result, error) {
	n := min(c.accept, len(data))
	done, err := c.Conn.Create(ctx, entity, data[:n])
	if err != nil {
		return nil, err
	}
	if !c.partial {
		return nil, errThrottled
	}
	return append(done, make([]connector.Result, len(data)-n)...), errThrottled
}

// A run that fails on a 429 after some writes reports the writes the system accepted and the
// ones left undone, in its stats and its error; the next run makes the rest, once.
func TestDivergenceSummaryCountsWritesBeforeAFailure(t *testing.T) {
	for _, partial := range []bool{true, false} {
		t.Run(fmt.Sprintf("partial=%v", partial), func(t *testing.T) {
			p := newE2E(t, "basic.yaml")
			p.sync()
			p.exec("crm", "UPDATE products SET name = name || ' (new)', updated_at = '2024-02-01T00:00:00Z' WHERE id <= 5")
			p.exec("crm", "INSERT INTO products (id, sku, name, price, stock, updated_at) VALUES (11, 'P-11', 'Eleven', 1, 1, '2024-02-01T00:00:00Z'), (12, 'P-12', 'Twelve', 1, 1, '2024-02-01T00:00:00Z')")
			wrap := func(system string, c connector.Conn) connector.Conn {
				if system == "shop" {
					return throttledConn{c, 2, partial}
				}
				return c
			}
			rep, err := p.run(e2eRunConfig{wrap: wrap})
			if !errors.Is(err, errThrottled) {
				t.Fatalf("run: %v, want the 429", err)
			}
			// The shop took 2 updates. A connection that returns the results of the records
			// it wrote has them counted; one that returns none has all 5 counted undone.
			st := e2eFlow(t, rep, "products")
			made, undone := 2, 3
			if !partial {
				made, undone = 0, 5
			}
			if st.UpdatedTarget != made || st.Undone != undone || rep.Writes() != made || rep.Undone() != undone {
				t.Errorf("products: %+v, %d writes; want %d updates made, %d undone", *st, rep.Writes(), made, undone)
			}
			if partial {
				want := "flow products: 429 Too Many Requests (Product: 2 of 5 writes of the call were made; 3 left undone, for the next run)"
				if err.Error() != want {
					t.Errorf("error:\n%s\nwant:\n%s", err, want)
				}
			}
			rep = p.sync()
			st = e2eFlow(t, rep, "products")
			if st.UpdatedTarget != 3 || st.CreatedTarget != 2 || rep.Failed() != 0 {
				t.Errorf("the run after: %+v; want the 3 updates left and the 2 creates", *st)
			}
			if got := p.count("shop", "products", "title LIKE '% (new)'"); got != 5 {
				t.Errorf("the shop holds %d new titles, want 5", got)
			}
			if got := p.count("shop", "products"); got != 12 {
				t.Errorf("the shop holds %d products, want 12", got)
			}
			p.quiet("the third run")
		})
	}
}

// Creates the system accepted before a call failed are linked in that run and counted; the
// intents of the others stay, and the next run creates them once.
func TestDivergenceCreatesBeforeAFailureAreLinked(t *testing.T) {
	p := newE2E(t, "basic.yaml")
	p.sync()
	p.exec("crm", "INSERT INTO products (id, sku, name, price, stock, updated_at) VALUES (11, 'P-11', 'Eleven', 1, 1, '2024-02-01T00:00:00Z'), (12, 'P-12', 'Twelve', 1, 1, '2024-02-01T00:00:00Z'), (13, 'P-13', 'Thirteen', 1, 1, '2024-02-01T00:00:00Z')")
	rep, err := p.run(e2eRunConfig{wrap: func(system string, c connector.Conn) connector.Conn {
		if system == "shop" {
			return throttledConn{c, 1, true}
		}
		return c
	}})
	want := "flow products: 429 Too Many Requests (Product: 1 of 3 writes of the call were made; 2 left undone, for the next run)"
	if err == nil || err.Error() != want {
		t.Fatalf("run: %v\nwant: %s", err, want)
	}
	if st := e2eFlow(t, rep, "products"); st.CreatedTarget != 1 || st.Undone != 2 {
		t.Errorf("products: %+v; want 1 created, 2 undone", *st)
	}
	if p.links("products") != 11 {
		t.Errorf("%d links, want 11", p.links("products"))
	}
	rep = p.sync()
	if st := e2eFlow(t, rep, "products"); st.CreatedTarget+st.Recovered != 2 {
		t.Errorf("the run after: %+v; want the 2 left created", *st)
	}
	if got := p.count("shop", "products"); got != 13 || p.links("products") != 13 {
		t.Errorf("the shop holds %d products and %d links, want 13", got, p.links("products"))
	}
	p.quiet("the third run")
}

// A lost link state is not a new sync: with both systems holding the records of flows that
// create without merge criteria, a run on a state that never ran refuses and writes nothing;
// Options.AllowNewState (run --allow-new-state) runs it anyway.
func TestDivergenceLostStateRefused(t *testing.T) {
	p := newE2E(t, "basic.yaml")
	p.sync()
	lost := p.state + ".lost"
	if err := os.Rename(p.state, lost); err != nil {
		t.Fatal(err)
	}
	os.Remove(p.state + "-wal")
	os.Remove(p.state + "-shm")
	rep, err := p.run(e2eRunConfig{})
	want := "new link state: the link state has no links and no runs, but both systems of flow products (CRM Product and Shop Product), " +
		"flow customers (CRM Customer and Shop Customer), flow orders (CRM Order and Shop Order) already hold records, " +
		"and the flow creates records without merge criteria: this run would create a copy of every record on the other side. " +
		"If the link state was lost, restore it from a backup (or point --state at it); if the records were never synced, " +
		"run with --allow-new-state, or give the flow merge criteria that link the records both sides hold"
	if !errors.Is(err, dsync.ErrNewState) || err.Error() != want {
		t.Fatalf("run: %v\nwant: %s", err, want)
	}
	if rep != nil {
		t.Errorf("a refused run reported %s", e2eStats(rep))
	}
	if got := p.count("shop", "products"); got != 10 {
		t.Errorf("the shop holds %d products, want the 10 it had", got)
	}
	// A dry run shows what the run would do.
	if _, err := p.run(e2eRunConfig{opts: dsync.Options{DryRun: true}}); err != nil {
		t.Errorf("dry run: %v", err)
	}
	rep, err = p.run(e2eRunConfig{opts: dsync.Options{AllowNewState: true}})
	if err != nil {
		t.Fatal(err)
	}
	if got := e2eFlow(t, rep, "products").CreatedTarget; got != 10 {
		t.Errorf("allowed: created %d, want the 10 copies it was told to make", got)
	}
	// The state has run now: the next run is not refused.
	p.sync()
}

// The link state knows the systems its links are of: a run against another database whose
// records have linked ids (a copy, or another database that numbers its rows the same way) is
// refused unless told it is a copy; an empty one is not refused (the breaker holds its
// missing records), and never is its password recorded.
func TestDivergenceOtherSystemRefused(t *testing.T) {
	p := newE2E(t, "basic.yaml")
	p.sync()
	p.closeSQL()
	data, err := os.ReadFile(p.db("shop"))
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(p.dir, "other-shop.db")
	if err := os.WriteFile(other, data, 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for k, v := range p.env {
		env[k] = v
	}
	env["SHOP_DB"] = other
	file, _ := filepath.Abs(filepath.Join(e2eFixtures, "basic.yaml"))
	q := e2eLoad(t, p.dir, env, file)
	q.state = p.state
	_, err = q.run(e2eRunConfig{})
	linked := p.allLinks("products")
	want := fmt.Sprintf("another system: system shop: the links of the link state are of sqlite %s, and this run is against sqlite %s, "+
		"which holds Product records with the ids of linked ones (%s, %s, %s, ...): the links would pair records that were never synced. "+
		"Point the system at the database it was synced with, or use another link state (--state); if it is a copy of that database, run with --allow-new-systems",
		p.db("shop"), other, linked["1"], linked["10"], linked["2"]) // in the order of the source ids, as text
	if !errors.Is(err, dsync.ErrOtherSystem) || err.Error() != want {
		t.Fatalf("run: %v\nwant: %s", err, want)
	}
	rep, err := q.run(e2eRunConfig{opts: dsync.Options{AllowNewSystems: true}})
	if err != nil || rep.Writes() != 0 {
		t.Fatalf("allowed: %v, %d writes", err, rep.Writes())
	}
	// Recorded: the next run against the copy is not refused.
	q.quiet("the next run against the copy")
	p.store(func(st state.Store) error {
		systems, err := st.Systems(context.Background())
		if systems["shop"].Location != other {
			t.Errorf("shop recorded at %q, want %q", systems["shop"].Location, other)
		}
		return err
	})
}
