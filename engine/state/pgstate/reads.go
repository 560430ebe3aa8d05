package pgstate

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dataflow-sync/dataflow/engine/state"
	"github.com/jackc/pgx/v5"
)

// scanBatch is the page size of ScanLinks: memory stays flat however many links a flow has.
const scanBatch = 1000

const linkColumns = "flow, source_id, target_id, base, source_hash, target_hash, updated, linked_in, merged_in, made"

// LinksBySource returns the links of flow whose source ids are among ids, by source id.
func (s *Store) LinksBySource(ctx context.Context, flow string, ids []string) (map[string]*state.Link, error) {
	return s.linksBy(ctx, "source_id", flow, ids)
}

// LinksByTarget returns the links of flow whose target ids are among ids, by target id.
func (s *Store) LinksByTarget(ctx context.Context, flow string, ids []string) (map[string]*state.Link, error) {
	return s.linksBy(ctx, "target_id", flow, ids)
}

// linksBy looks all ids up in one statement (an array parameter has no size limit), which is
// one snapshot.
func (s *Store) linksBy(ctx context.Context, column, flow string, ids []string) (map[string]*state.Link, error) {
	found := make(map[string]*state.Link, len(ids))
	if len(ids) == 0 {
		return found, nil
	}
	rows, err := s.pool.Query(ctx, "SELECT "+linkColumns+" FROM "+schema+".links WHERE flow = $1 AND "+column+" = ANY($2)", flow, ids)
	if err != nil {
		return nil, fmt.Errorf("links of flow %q: %w", flow, err)
	}
	err = eachLink(rows, func(l *state.Link) {
		if column == "source_id" {
			found[l.SourceID] = l
		} else {
			found[l.TargetID] = l
		}
	})
	if err != nil {
		return nil, fmt.Errorf("links of flow %q: %w", flow, err)
	}
	return found, nil
}

// ScanLinks calls fn with batches of the flow's links, in source id order (byte order, as
// SQLite's:), by keyset pagination; no query is open while fn runs.
func (s *Store) ScanLinks(ctx context.Context, flow string, fn func([]*state.Link) error) error {
	const (
		first = "SELECT " + linkColumns + " FROM " + schema + `.links WHERE flow = $1 AND source_id >= $2 ORDER BY source_id LIMIT $3`
		next  = "SELECT " + linkColumns + " FROM " + schema + `.links WHERE flow = $1 AND source_id > $2 ORDER BY source_id LIMIT $3`
	)
	query, after := first, ""
	for {
		rows, err := s.pool.Query(ctx, query, flow, after, scanBatch)
		if err != nil {
			return fmt.Errorf("links of flow %q: %w", flow, err)
		}
		batch := make([]*state.Link, 0, scanBatch)
		if err := eachLink(rows, func(l *state.Link) { batch = append(batch, l) }); err != nil {
			return fmt.Errorf("links of flow %q: %w", flow, err)
		}
		if len(batch) == 0 {
			return nil
		}
		if err := fn(batch); err != nil {
			return err
		}
		if len(batch) < scanBatch {
			return nil
		}
		query, after = next, batch[len(batch)-1].SourceID
	}
}

func eachLink(rows pgx.Rows, fn func(*state.Link)) error {
	defer rows.Close()
	for rows.Next() {
		var (
			l       state.Link
			base    string
			updated *time.Time
		)
		if err := rows.Scan(&l.Flow, &l.SourceID, &l.TargetID, &base, &l.SourceHash, &l.TargetHash, &updated, &l.LinkedIn, &l.MergedIn, &l.Made); err != nil {
			return err
		}
		if updated != nil {
			l.Updated = updated.UTC()
		}
		fn(state.StoredLink(&l, []byte(base)))
	}
	return rows.Err()
}

// CountLinks counts the flow's links ("" for all flows).
func (s *Store) CountLinks(ctx context.Context, flow string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, "SELECT count(*) FROM "+schema+".links WHERE $1 IN ('', flow)", flow).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count links: %w", err)
	}
	return n, nil
}

// HasLinks reports whether the flow has a link.
func (s *Store) HasLinks(ctx context.Context, flow string) (bool, error) {
	var any bool
	if err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+schema+".links WHERE flow = $1)", flow).Scan(&any); err != nil {
		return false, fmt.Errorf("links of flow %q: %w", flow, err)
	}
	return any, nil
}

// Watermark returns the side's watermark, "" when none was set.
func (s *Store) Watermark(ctx context.Context, flow, side string) (string, error) {
	var v string
	err := s.pool.QueryRow(ctx, "SELECT value FROM "+schema+".watermarks WHERE flow = $1 AND side = $2", flow, side).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("watermark of flow %q: %w", flow, err)
	}
	return v, nil
}

// Reconciled returns when the flow last read both its sides whole.
func (s *Store) Reconciled(ctx context.Context, flow string) (time.Time, bool, error) {
	var at time.Time
	err := s.pool.QueryRow(ctx, "SELECT at FROM "+schema+".reconciles WHERE flow = $1", flow).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("last reconcile of flow %q: %w", flow, err)
	}
	return at.UTC(), true, nil
}

// Counts returns the flow's counts; ok is false when none are recorded.
func (s *Store) Counts(ctx context.Context, flow string) (state.Counts, bool, error) {
	var c state.Counts
	err := s.pool.QueryRow(ctx, "SELECT source, target, skipped, source_deletions, target_deletions FROM "+schema+".counts WHERE flow = $1", flow).Scan(
		&c.Source, &c.Target, &c.Skipped, &c.SourceDeletions, &c.TargetDeletions)
	if errors.Is(err, pgx.ErrNoRows) {
		return state.Counts{}, false, nil
	}
	if err != nil {
		return state.Counts{}, false, fmt.Errorf("counts of flow %q: %w", flow, err)
	}
	return c, true, nil
}

// Intents returns the flow's intents ("" for all flows) in the order they were added.
func (s *Store) Intents(ctx context.Context, flow string) ([]state.Intent, error) {
	rows, err := s.pool.Query(ctx, "SELECT id, flow, side, from_id, data, created FROM "+schema+".intents WHERE $1 IN ('', flow) ORDER BY id", flow)
	if err != nil {
		return nil, fmt.Errorf("intents: %w", err)
	}
	defer rows.Close()
	var out []state.Intent
	for rows.Next() {
		var (
			in   state.Intent
			data *string
		)
		if err := rows.Scan(&in.ID, &in.Flow, &in.Side, &in.FromID, &data, &in.Created); err != nil {
			return nil, fmt.Errorf("intents: %w", err)
		}
		if data != nil {
			in.Data = json.RawMessage(*data)
		}
		in.Created = in.Created.UTC()
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("intents: %w", err)
	}
	rows.Close()
	// The rows of intents of schema 2 and after (see AddIntents), beside those of schema 1.
	batches, err := s.pool.Query(ctx, "SELECT first_id, flow, items FROM "+schema+".intent_batches WHERE $1 IN ('', flow) ORDER BY first_id", flow)
	if err != nil {
		return nil, fmt.Errorf("intents: %w", err)
	}
	defer batches.Close()
	for batches.Next() {
		var (
			first   int64
			rowFlow string
			items   []byte
		)
		if err := batches.Scan(&first, &rowFlow, &items); err != nil {
			return nil, fmt.Errorf("intents: %w", err)
		}
		ins, err := state.DecodeIntents(rowFlow, first, items)
		if err != nil {
			return nil, fmt.Errorf("intents from %d: %w", first, err)
		}
		out = append(out, ins...)
	}
	if err := batches.Err(); err != nil {
		return nil, fmt.Errorf("intents: %w", err)
	}
	// In the order of the ids: the rows of several workers interleave.
	slices.SortFunc(out, func(a, b state.Intent) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// DeadLetters returns the flow's dead letters ("" for all flows), by flow, side and record id.
func (s *Store) DeadLetters(ctx context.Context, flow string) ([]state.DeadLetter, error) {
	rows, err := s.pool.Query(ctx, `SELECT flow, side, record_id, reason, attempts, first, last FROM `+schema+
		`.dead_letters WHERE $1 IN ('', flow) ORDER BY flow, side, record_id`, flow)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	defer rows.Close()
	var out []state.DeadLetter
	for rows.Next() {
		var d state.DeadLetter
		if err := rows.Scan(&d.Flow, &d.Side, &d.RecordID, &d.Reason, &d.Attempts, &d.First, &d.Last); err != nil {
			return nil, fmt.Errorf("dead letters: %w", err)
		}
		d.First, d.Last = d.First.UTC(), d.Last.UTC()
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	return out, nil
}

// Waiting returns the flow's waiting records ("" for all flows), by flow, side and record id.
func (s *Store) Waiting(ctx context.Context, flow string) ([]state.Waiting, error) {
	rows, err := s.pool.Query(ctx, `SELECT flow, side, record_id, reason, since FROM `+schema+
		`.waiting WHERE $1 IN ('', flow) ORDER BY flow, side, record_id`, flow)
	if err != nil {
		return nil, fmt.Errorf("waiting records: %w", err)
	}
	defer rows.Close()
	var out []state.Waiting
	for rows.Next() {
		var w state.Waiting
		if err := rows.Scan(&w.Flow, &w.Side, &w.RecordID, &w.Reason, &w.Since); err != nil {
			return nil, fmt.Errorf("waiting records: %w", err)
		}
		w.Since = w.Since.UTC()
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("waiting records: %w", err)
	}
	return out, nil
}

// Runs returns the last limit runs, newest first (all of them when limit <= 0).
func (s *Store) Runs(ctx context.Context, limit int) ([]state.Run, error) {
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	rows, err := s.pool.Query(ctx, "SELECT id, started, finished, status, summary, worker FROM "+schema+".runs ORDER BY id DESC LIMIT $1", lim)
	if err != nil {
		return nil, fmt.Errorf("runs: %w", err)
	}
	defer rows.Close()
	var out []state.Run
	for rows.Next() {
		var (
			r        state.Run
			finished *time.Time
			summary  *string
		)
		if err := rows.Scan(&r.ID, &r.Started, &finished, &r.Status, &summary, &r.Worker); err != nil {
			return nil, fmt.Errorf("runs: %w", err)
		}
		r.Started = r.Started.UTC()
		if finished != nil {
			r.Finished = finished.UTC()
		}
		if summary != nil {
			r.Summary = json.RawMessage(*summary)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("runs: %w", err)
	}
	return out, nil
}

// Pending returns the pending changes of a flow ("" for all flows), oldest first.
func (s *Store) Pending(ctx context.Context, flow string) ([]state.Pending, error) {
	rows, err := s.pool.Query(ctx, "SELECT id, flow, created, status, summary, links FROM "+schema+".pending WHERE $1 IN ('', flow) ORDER BY id", flow)
	if err != nil {
		return nil, fmt.Errorf("pending changes: %w", err)
	}
	defer rows.Close()
	var out []state.Pending
	for rows.Next() {
		var (
			p     state.Pending
			links string
		)
		if err := rows.Scan(&p.ID, &p.Flow, &p.Created, &p.Status, &p.Summary, &links); err != nil {
			return nil, fmt.Errorf("pending changes: %w", err)
		}
		p.Created = p.Created.UTC()
		if err := json.Unmarshal([]byte(links), &p.Links); err != nil {
			return nil, fmt.Errorf("pending change %d: links: %w", p.ID, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pending changes: %w", err)
	}
	return out, nil
}

// Fingerprint returns the fingerprint recorded for a flow's property table, "" for none.
func (s *Store) Fingerprint(ctx context.Context, flow string) (string, error) {
	var v string
	err := s.pool.QueryRow(ctx, "SELECT value FROM "+schema+".fingerprints WHERE flow = $1", flow).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("fingerprint of flow %q: %w", flow, err)
	}
	return v, nil
}

// Systems returns the recorded identities of the systems, by system id.
func (s *Store) Systems(ctx context.Context) (map[string]state.SystemIdentity, error) {
	rows, err := s.pool.Query(ctx, "SELECT system, connector, location FROM "+schema+".systems")
	if err != nil {
		return nil, fmt.Errorf("systems: %w", err)
	}
	defer rows.Close()
	out := map[string]state.SystemIdentity{}
	for rows.Next() {
		var id string
		var si state.SystemIdentity
		if err := rows.Scan(&id, &si.Connector, &si.Location); err != nil {
			return nil, fmt.Errorf("systems: %w", err)
		}
		out[id] = si
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("systems: %w", err)
	}
	return out, nil
}

// Flows lists the flows that have links, waiting records or dead letters, sorted.
func (s *Store) Flows(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `
		WITH RECURSIVE f(flow) AS (
			SELECT min(flow) FROM `+schema+`.links
			UNION ALL
			SELECT (SELECT min(flow) FROM `+schema+`.links WHERE flow > f.flow) FROM f WHERE f.flow IS NOT NULL
		)
		SELECT flow FROM f WHERE flow IS NOT NULL
		UNION SELECT flow FROM `+schema+`.waiting
		UNION SELECT flow FROM `+schema+`.dead_letters
		ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("list flows: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			return nil, fmt.Errorf("list flows: %w", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list flows: %w", err)
	}
	return out, nil
}
