package pgstate

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dataflow-sync/dataflow/engine/state"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pgTx is a write transaction. Its statements run with the context of Begin, as SQLite's.
// A failed statement aborts a PostgreSQL transaction, so the checks SQLite makes by a failing
// statement (a target linked to another source) are made before the statement here, and the
// Tx stays usable after them.
type pgTx struct {
	s      *Store
	ctx    context.Context
	tx     pgx.Tx
	writer chan struct{}
	fence  *Lease // nil for an exclusive store's Tx

	mu   sync.Mutex
	done bool
	// failed is the first statement error: the transaction is aborted, and Commit says why.
	failed error
	// bases encodes the bases of the links put, with its buffers kept between them.
	bases state.BaseEncoder
	// intents encodes the rows of AddIntents and of a partial DeleteIntents.
	intents state.IntentEncoder
}

var errTxDone = errors.New("the link state transaction has already been committed or rolled back")

func (t *pgTx) exec(query string, args ...any) (pgconn.CommandTag, error) {
	if t.done {
		return pgconn.CommandTag{}, errTxDone
	}
	tag, err := t.tx.Exec(t.ctx, query, args...)
	if err != nil && t.failed == nil {
		t.failed = err
	}
	return tag, err
}

func (t *pgTx) queryRow(query string, args []any, dest ...any) error {
	if t.done {
		return errTxDone
	}
	err := t.tx.QueryRow(t.ctx, query, args...).Scan(dest...)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) && t.failed == nil {
		t.failed = err
	}
	return err
}

// nullTime is the value to store for a time, NULL for the zero time.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// PutLink inserts or replaces the link of l.SourceID. A target already linked to another
// source record of the flow gives an error wrapping state.ErrTargetLinked; the Tx stays
// usable.
func (t *pgTx) PutLink(l *state.Link) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l == nil || l.Flow == "" || l.SourceID == "" || l.TargetID == "" {
		return errLinkIDs
	}
	base, err := t.bases.Encode(state.BaseOf(l))
	if err != nil {
		return fmt.Errorf("put link of flow %q, source %q: base: %w", l.Flow, l.SourceID, err)
	}
	return t.put(l, base)
}

var errLinkIDs = errors.New("put link: a link needs a flow, a source id and a target id")

// put writes a link whose base is encoded.
func (t *pgTx) put(l *state.Link, base string) error {
	if state.StoredTarget(l) == l.TargetID {
		// Saved again with its ids (a merge): rewritten in place.
		tag, err := t.exec(`UPDATE `+schema+`.links SET base = $1, source_hash = $2, target_hash = $3, updated = $4, linked_in = $5, merged_in = $6, made = $7
			WHERE flow = $8 AND source_id = $9 AND target_id = $10`,
			base, l.SourceHash, l.TargetHash, nullTime(l.Updated), l.LinkedIn, l.MergedIn, l.Made, l.Flow, l.SourceID, l.TargetID)
		if err != nil {
			return fmt.Errorf("put link of flow %q, source %q: %w", l.Flow, l.SourceID, err)
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
	}
	// One statement: the insert happens unless another source holds the target, whose id it
	// returns then.
	var other *string
	err := t.queryRow(`WITH other AS (
			SELECT source_id FROM `+schema+`.links WHERE flow = $1 AND target_id = $3 AND source_id <> $2
		), put AS (
			INSERT INTO `+schema+`.links (flow, source_id, target_id, base, source_hash, target_hash, updated, linked_in, merged_in, made)
			SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 WHERE NOT EXISTS (SELECT 1 FROM other)
			ON CONFLICT (flow, source_id) DO UPDATE SET target_id = excluded.target_id, base = excluded.base,
				source_hash = excluded.source_hash, target_hash = excluded.target_hash, updated = excluded.updated,
				linked_in = excluded.linked_in, merged_in = excluded.merged_in, made = excluded.made
			RETURNING 1
		)
		SELECT (SELECT source_id FROM other LIMIT 1)`,
		[]any{l.Flow, l.SourceID, l.TargetID, base, l.SourceHash, l.TargetHash, nullTime(l.Updated), l.LinkedIn, l.MergedIn, l.Made}, &other)
	if err != nil {
		return fmt.Errorf("put link of flow %q, source %q: %w", l.Flow, l.SourceID, err)
	}
	if other != nil {
		return fmt.Errorf("link flow %q source %q to target %q: the target is already linked to source %q: %w",
			l.Flow, l.SourceID, l.TargetID, *other, state.ErrTargetLinked)
	}
	return nil
}

// sqlInsertLinks inserts the links of arrays of their columns.
const sqlInsertLinks = `INSERT INTO ` + schema + `.links (flow, source_id, target_id, base, source_hash, target_hash, updated, linked_in, merged_in, made)
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::bigint[], $9::bigint[], $10::text[])`

// linkBatch holds the links of a PutLinks to insert, by column.
type linkBatch struct {
	links                                              []*state.Link
	flow, source, target, base, sourceHash, targetHash []string
	updated                                            []*time.Time
	linkedIn, mergedIn                                 []int64
	made                                               []string
}

func (c *linkBatch) add(l *state.Link, base string) {
	c.links = append(c.links, l)
	c.flow, c.source, c.target = append(c.flow, l.Flow), append(c.source, l.SourceID), append(c.target, l.TargetID)
	c.base, c.sourceHash, c.targetHash = append(c.base, base), append(c.sourceHash, l.SourceHash), append(c.targetHash, l.TargetHash)
	c.updated, c.linkedIn, c.mergedIn = append(c.updated, nullTime(l.Updated)), append(c.linkedIn, l.LinkedIn), append(c.mergedIn, l.MergedIn)
	c.made = append(c.made, l.Made)
}

// PutLinks puts links as PutLink puts each, in order. The links to insert (all of a first
// sync) go in one statement, under a savepoint: a failed statement would abort the
// transaction, so one that fails (a source linked already, a target linked to another source,
// a link twice) is undone to the savepoint, and its links are put one by one, as PutLink puts
// them, which refuses a target linked to another source without failing a statement.
func (t *pgTx) PutLinks(links []*state.Link) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var pending linkBatch
	flush := func() error {
		batch := pending
		pending = linkBatch{}
		switch len(batch.links) {
		case 0:
			return nil
		case 1:
			return t.put(batch.links[0], batch.base[0])
		}
		// A Tx that is done or failed gives PutLink's error, from the first link.
		if !t.done && t.failed == nil {
			inserted, err := t.insertLinks(&batch)
			if err != nil || inserted {
				return err
			}
		}
		for i, l := range batch.links {
			if err := t.put(l, batch.base[i]); err != nil {
				return err
			}
		}
		return nil
	}
	for _, l := range links {
		if l == nil || l.Flow == "" || l.SourceID == "" || l.TargetID == "" {
			if err := flush(); err != nil {
				return err
			}
			return errLinkIDs
		}
		base, err := t.bases.Encode(state.BaseOf(l))
		if err != nil {
			if ferr := flush(); ferr != nil {
				return ferr
			}
			return fmt.Errorf("put link of flow %q, source %q: base: %w", l.Flow, l.SourceID, err)
		}
		if state.StoredTarget(l) == l.TargetID {
			// A merge's link is updated in place (see put), in its turn.
			if err := flush(); err != nil {
				return err
			}
			if err := t.put(l, base); err != nil {
				return err
			}
			continue
		}
		pending.add(l, base)
	}
	return flush()
}

// insertLinks inserts the links of c in one statement under a savepoint; inserted is false
// when the statement failed and was undone.
func (t *pgTx) insertLinks(c *linkBatch) (inserted bool, err error) {
	fail := func(err error) (bool, error) {
		if t.failed == nil {
			t.failed = err
		}
		return false, fmt.Errorf("put links of flow %q: %w", c.flow[0], err)
	}
	if _, err := t.tx.Exec(t.ctx, "SAVEPOINT put_links"); err != nil {
		return fail(err)
	}
	_, ierr := t.tx.Exec(t.ctx, sqlInsertLinks, c.flow, c.source, c.target, c.base, c.sourceHash, c.targetHash, c.updated, c.linkedIn, c.mergedIn, c.made)
	if ierr != nil {
		if _, err := t.tx.Exec(t.ctx, "ROLLBACK TO SAVEPOINT put_links"); err != nil {
			return fail(err)
		}
	}
	if _, err := t.tx.Exec(t.ctx, "RELEASE SAVEPOINT put_links"); err != nil {
		return fail(err)
	}
	return ierr == nil, nil
}

// DeleteLink forgets the link of a source record; a missing link is not an error.
func (t *pgTx) DeleteLink(flow, sourceID string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.exec("DELETE FROM "+schema+".links WHERE flow = $1 AND source_id = $2", flow, sourceID); err != nil {
		return fmt.Errorf("delete link of flow %q, source %q: %w", flow, sourceID, err)
	}
	return nil
}

// AddIntent records an intent and returns its id, which is never reused.
func (t *pgTx) AddIntent(in *state.Intent) (int64, error) {
	if in == nil {
		return 0, errors.New("add intent: an intent needs a flow")
	}
	ids, err := t.AddIntents([]state.Intent{*in})
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// AddIntents records intents as AddIntent records each and returns their ids in order: the
// ids are taken from the sequence of intents in one statement, and the intents of a flow, one
// after another, are one row (see the migration of schema 2). Every intent is checked before
// any is written.
func (t *pgTx) AddIntents(ins []state.Intent) ([]int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(ins) == 0 {
		return []int64{}, nil
	}
	for i := range ins {
		if err := state.CheckIntent(&ins[i]); err != nil {
			return nil, err
		}
	}
	if t.done {
		return nil, fmt.Errorf("add intents of flow %q: %w", ins[0].Flow, errTxDone)
	}
	now := sync.OnceValue(t.s.now) // one time for the intents of a call that have none
	if len(ins) == 1 {
		// The row of one intent does not depend on its id: one statement takes the id too.
		var id int64
		if err := t.queryRow("INSERT INTO "+schema+".intent_batches (first_id, last_id, flow, ids, items) "+
			"SELECT id, id, $1, ARRAY[id], $2 FROM (SELECT nextval(pg_get_serial_sequence('"+schema+".intents', 'id')) AS id) n RETURNING first_id",
			[]any{ins[0].Flow, t.intents.Encode(ins, []int64{0}, now)}, &id); err != nil {
			return nil, fmt.Errorf("add intents of flow %q: %w", ins[0].Flow, err)
		}
		return []int64{id}, nil
	}
	var ids []int64
	if err := t.queryRow("SELECT array_agg(nextval(pg_get_serial_sequence('"+schema+".intents', 'id'))) FROM generate_series(1, $1)",
		[]any{len(ins)}, &ids); err != nil {
		return nil, fmt.Errorf("add intents of flow %q: %w", ins[0].Flow, err)
	}
	if len(ids) != len(ins) {
		return nil, fmt.Errorf("add intents of flow %q: %d ids for %d intents", ins[0].Flow, len(ids), len(ins))
	}
	// The order of the sequence, whatever the order in which the query called it.
	slices.Sort(ids)
	for from := 0; from < len(ins); {
		to := from + 1
		for to < len(ins) && ins[to].Flow == ins[from].Flow {
			to++
		}
		items := t.intents.Encode(ins[from:to], ids[from:to], now)
		if _, err := t.exec("INSERT INTO "+schema+".intent_batches (first_id, last_id, flow, ids, items) VALUES ($1, $2, $3, $4, $5)",
			ids[from], ids[to-1], ins[from].Flow, ids[from:to], items); err != nil {
			return nil, fmt.Errorf("add intents of flow %q: %w", ins[from].Flow, err)
		}
		from = to
	}
	return ids, nil
}

// DeleteIntent forgets an intent; a missing one is not an error.
func (t *pgTx) DeleteIntent(id int64) error {
	return t.DeleteIntents([]int64{id})
}

// DeleteIntents deletes intents by id: in one statement the rows all of whose intents go (a
// batch whose creates all settled) and the intents of schema 1, which returns the rows that
// keep some; those are rewritten without the others, so that the rest stay for the recovery
// of a killed run.
func (t *pgTx) DeleteIntents(ids []int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	if err := t.deleteIntents(ids); err != nil {
		if len(ids) == 1 {
			return fmt.Errorf("delete intent %d: %w", ids[0], err)
		}
		return fmt.Errorf("delete intents: %w", err)
	}
	return nil
}

func (t *pgTx) deleteIntents(ids []int64) error {
	if t.done {
		return errTxDone
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	// The statements of a data-modifying WITH see the rows as they were: the rows deleted
	// whole are left out of those returned by name.
	rows, err := t.tx.Query(t.ctx, `WITH old AS (DELETE FROM `+schema+`.intents WHERE id = ANY($1)),
		gone AS (DELETE FROM `+schema+`.intent_batches WHERE first_id <= $3 AND last_id >= $2 AND ids <@ $1 RETURNING first_id)
		SELECT first_id, flow, items FROM `+schema+`.intent_batches
		WHERE first_id <= $3 AND last_id >= $2 AND ids && $1 AND first_id NOT IN (SELECT first_id FROM gone)`,
		sorted, sorted[0], sorted[len(sorted)-1])
	if err != nil {
		t.failed = cmp.Or(t.failed, err)
		return err
	}
	type partial struct {
		first int64
		flow  string
		items []byte
	}
	var left []partial
	for rows.Next() {
		var p partial
		if err := rows.Scan(&p.first, &p.flow, &p.items); err != nil {
			rows.Close()
			t.failed = cmp.Or(t.failed, err)
			return err
		}
		left = append(left, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		t.failed = cmp.Or(t.failed, err)
		return err
	}
	for _, p := range left {
		kept, err := t.intents.Without(p.flow, p.first, p.items, sorted)
		if err != nil {
			return fmt.Errorf("intents from %d: %w", p.first, err)
		}
		if len(kept) == 0 { // not reached: a row of only ids deleted was deleted whole
			_, err = t.exec("DELETE FROM "+schema+".intent_batches WHERE first_id = $1", p.first)
		} else {
			_, err = t.exec("UPDATE "+schema+".intent_batches SET items = $2, ids = array(SELECT unnest(ids) EXCEPT SELECT unnest($3::bigint[]) ORDER BY 1) WHERE first_id = $1",
				p.first, kept, sorted)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// SetWatermark sets the watermark of a side of a flow.
func (t *pgTx) SetWatermark(flow, side, value string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := state.CheckSide(side); err != nil {
		return fmt.Errorf("set watermark of flow %q: %w", flow, err)
	}
	if _, err := t.exec("INSERT INTO "+schema+".watermarks (flow, side, value) VALUES ($1, $2, $3) ON CONFLICT (flow, side) DO UPDATE SET value = excluded.value",
		flow, side, value); err != nil {
		return fmt.Errorf("set watermark of flow %q: %w", flow, err)
	}
	return nil
}

// ClearWatermarks forgets the watermarks of both sides of a flow.
func (t *pgTx) ClearWatermarks(flow string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.exec("DELETE FROM "+schema+".watermarks WHERE flow = $1", flow); err != nil {
		return fmt.Errorf("reset the watermarks of flow %q: %w", flow, err)
	}
	return nil
}

// SetReconciled records when the flow last read both its sides whole.
func (t *pgTx) SetReconciled(flow string, at time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if at.IsZero() {
		return fmt.Errorf("set the last reconcile of flow %q: no time", flow)
	}
	if _, err := t.exec("INSERT INTO "+schema+".reconciles (flow, at) VALUES ($1, $2) ON CONFLICT (flow) DO UPDATE SET at = excluded.at", flow, at.UTC()); err != nil {
		return fmt.Errorf("set the last reconcile of flow %q: %w", flow, err)
	}
	return nil
}

// SetCounts records the counts of a flow.
func (t *pgTx) SetCounts(flow string, c state.Counts) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.exec(`INSERT INTO `+schema+`.counts (flow, source, target, skipped, source_deletions, target_deletions) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (flow) DO UPDATE SET source = excluded.source, target = excluded.target, skipped = excluded.skipped,
			source_deletions = excluded.source_deletions, target_deletions = excluded.target_deletions`,
		flow, c.Source, c.Target, c.Skipped, c.SourceDeletions, c.TargetDeletions); err != nil {
		return fmt.Errorf("set counts of flow %q: %w", flow, err)
	}
	return nil
}

// ClearCounts forgets the counts of a flow; none recorded is not an error.
func (t *pgTx) ClearCounts(flow string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.exec("DELETE FROM "+schema+".counts WHERE flow = $1", flow); err != nil {
		return fmt.Errorf("clear counts of flow %q: %w", flow, err)
	}
	return nil
}

// PutDeadLetter records a failure: a new dead letter with one attempt, or one more attempt
// of a known one, which keeps its first time and takes the latest reason.
func (t *pgTx) PutDeadLetter(flow, side, recordID, reason string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := state.CheckSide(side); err != nil {
		return fmt.Errorf("put dead letter of flow %q: %w", flow, err)
	}
	now := t.s.now().UTC()
	if _, err := t.exec(`INSERT INTO `+schema+`.dead_letters (flow, side, record_id, reason, attempts, first, last) VALUES ($1, $2, $3, $4, 1, $5, $5)
		ON CONFLICT (flow, side, record_id) DO UPDATE SET reason = excluded.reason, attempts = dead_letters.attempts + 1, last = excluded.last`,
		flow, side, recordID, reason, now); err != nil {
		return fmt.Errorf("put dead letter of flow %q, record %q: %w", flow, recordID, err)
	}
	return nil
}

// ClearDeadLetter forgets a failure; a missing one is not an error.
func (t *pgTx) ClearDeadLetter(flow, side, recordID string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.exec("DELETE FROM "+schema+".dead_letters WHERE flow = $1 AND side = $2 AND record_id = $3", flow, side, recordID); err != nil {
		return fmt.Errorf("clear dead letter of flow %q, record %q: %w", flow, recordID, err)
	}
	return nil
}

// PutWaiting records that a record waits, since now or since it started waiting.
func (t *pgTx) PutWaiting(flow, side, recordID, reason string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := state.CheckSide(side); err != nil {
		return fmt.Errorf("put waiting record of flow %q: %w", flow, err)
	}
	if _, err := t.exec(`INSERT INTO `+schema+`.waiting (flow, side, record_id, reason, since) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (flow, side, record_id) DO UPDATE SET reason = excluded.reason`,
		flow, side, recordID, reason, t.s.now().UTC()); err != nil {
		return fmt.Errorf("put waiting record of flow %q, record %q: %w", flow, recordID, err)
	}
	return nil
}

// ClearWaiting forgets a waiting record; a missing one is not an error.
func (t *pgTx) ClearWaiting(flow, side, recordID string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.exec("DELETE FROM "+schema+".waiting WHERE flow = $1 AND side = $2 AND record_id = $3", flow, side, recordID); err != nil {
		return fmt.Errorf("clear waiting record of flow %q, record %q: %w", flow, recordID, err)
	}
	return nil
}

// PutPending records a pending change waiting for a decision and returns its id; a change of
// the same flow still waiting is replaced, an approved one kept.
func (t *pgTx) PutPending(p *state.Pending) (int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p == nil || p.Flow == "" {
		return 0, errors.New("put pending change: it needs a flow")
	}
	links, err := json.Marshal(p.Links)
	if err != nil {
		return 0, fmt.Errorf("put pending change of flow %q: %w", p.Flow, err)
	}
	if _, err := t.exec("DELETE FROM "+schema+".pending WHERE flow = $1 AND status = $2", p.Flow, state.PendingWaiting); err != nil {
		return 0, fmt.Errorf("put pending change of flow %q: %w", p.Flow, err)
	}
	created := p.Created
	if created.IsZero() {
		created = t.s.now()
	}
	var id int64
	if err := t.queryRow("INSERT INTO "+schema+".pending (flow, created, status, summary, links) VALUES ($1, $2, $3, $4, $5) RETURNING id",
		[]any{p.Flow, created.UTC(), state.PendingWaiting, p.Summary, string(links)}, &id); err != nil {
		return 0, fmt.Errorf("put pending change of flow %q: %w", p.Flow, err)
	}
	return id, nil
}

// ApprovePending marks a pending change approved: the next run of its flow makes it.
func (t *pgTx) ApprovePending(id int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	tag, err := t.exec("UPDATE "+schema+".pending SET status = $1 WHERE id = $2", state.PendingApproved, id)
	if err != nil {
		return fmt.Errorf("approve pending change %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("approve pending change %d: %w", id, state.ErrNoPending)
	}
	return nil
}

// DeletePending forgets a pending change: rejected, or made by a run.
func (t *pgTx) DeletePending(id int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	tag, err := t.exec("DELETE FROM "+schema+".pending WHERE id = $1", id)
	if err != nil {
		return fmt.Errorf("delete pending change %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete pending change %d: %w", id, state.ErrNoPending)
	}
	return nil
}

// SetFingerprint records the fingerprint of a flow's property table.
func (t *pgTx) SetFingerprint(flow, value string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.exec("INSERT INTO "+schema+".fingerprints (flow, value) VALUES ($1, $2) ON CONFLICT (flow) DO UPDATE SET value = excluded.value", flow, value); err != nil {
		return fmt.Errorf("set fingerprint of flow %q: %w", flow, err)
	}
	return nil
}

// PutSystem records the identity of a system. An identity already recorded is not written
// again: the runs of every flow put their systems, and workers running flows of the same
// systems side by side would otherwise queue on the row locks (or deadlock, taking the rows
// of two systems in opposite orders).
func (t *pgTx) PutSystem(id string, si state.SystemIdentity) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if id == "" {
		return errors.New("put system: it needs an id")
	}
	if _, err := t.exec(`INSERT INTO `+schema+`.systems (system, connector, location)
		SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM `+schema+`.systems WHERE system = $1 AND connector = $2 AND location = $3)
		ON CONFLICT (system) DO UPDATE SET connector = excluded.connector, location = excluded.location`, id, si.Connector, si.Location); err != nil {
		return fmt.Errorf("put system %q: %w", id, err)
	}
	return nil
}

// StartRun logs a run with status "running", started now, with the worker (and, for a
// leased run, its flows and fencing tokens), and returns its id.
func (t *pgTx) StartRun() (int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	flows, tokens := []string{}, []int64{}
	if t.fence != nil {
		flows, tokens = t.fence.flows, t.fence.tokens
	}
	var id int64
	if err := t.queryRow("INSERT INTO "+schema+".runs (started, status, worker, flows, tokens) VALUES ($1, 'running', $2, $3, $4) RETURNING id",
		[]any{t.s.now().UTC(), t.s.opts.Worker, flows, tokens}, &id); err != nil {
		return 0, fmt.Errorf("start run: %w", err)
	}
	return id, nil
}

// FinishRun records the end of a run, now.
func (t *pgTx) FinishRun(id int64, status string, summary json.RawMessage) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	sum, err := state.JSONText(summary)
	if err != nil {
		return fmt.Errorf("finish run %d: summary: %w", id, err)
	}
	tag, err := t.exec("UPDATE "+schema+".runs SET finished = $1, status = $2, summary = $3 WHERE id = $4", t.s.now().UTC(), status, sum, id)
	if err != nil {
		return fmt.Errorf("finish run %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("finish run %d: there is no such run", id)
	}
	return nil
}

// Commit checks the lease (for a leased run) and commits durably, not interrupted by the end
// of the Begin context. A failed Commit rolls back.
func (t *pgTx) Commit() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return errTxDone
	}
	defer t.end()
	ctx := context.WithoutCancel(t.ctx)
	if t.failed != nil {
		t.tx.Rollback(ctx)
		return fmt.Errorf("commit the link state: a statement of the transaction failed: %w", t.failed)
	}
	if t.fence != nil {
		if err := t.fence.check(ctx, t.tx); err != nil {
			t.tx.Rollback(ctx)
			return err
		}
	}
	if err := t.tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit the link state: %w", err)
	}
	return nil
}

// Rollback discards the Tx; after Commit or Rollback it does nothing.
func (t *pgTx) Rollback() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return nil
	}
	defer t.end()
	if err := t.tx.Rollback(context.WithoutCancel(t.ctx)); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return fmt.Errorf("roll back the link state: %w", err)
	}
	return nil
}

func (t *pgTx) end() {
	t.done = true
	<-t.writer
}
