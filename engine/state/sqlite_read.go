package state

// The SQLite store's reads: links, watermarks, counts, intents, dead letters, waiting records
// and runs.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// linkColumns are the columns eachLink reads, in order.
const linkColumns = "source_id, target_id, base, source_hash, target_hash, updated, linked_in, merged_in, made"

// ofFlow selects the rows of the flow named by the first parameter (none for a flow that has
// no number).
const ofFlow = "flow = (SELECT id FROM flows WHERE name = ?)"

// LinksBySource returns the links of flow whose source ids are among ids, by source id.
func (s *SQLite) LinksBySource(ctx context.Context, flow string, ids []string) (map[string]*Link, error) {
	return s.linksBy(ctx, "source_id", flow, ids)
}

// LinksByTarget returns the links of flow whose target ids are among ids, by target id.
func (s *SQLite) LinksByTarget(ctx context.Context, flow string, ids []string) (map[string]*Link, error) {
	return s.linksBy(ctx, "target_id", flow, ids)
}

// linksBy looks ids up in chunks of maxParams, in one read transaction when there are several
// chunks so that the answer is one consistent snapshot.
func (s *SQLite) linksBy(ctx context.Context, column, flow string, ids []string) (map[string]*Link, error) {
	ids = unique(ids)
	found := make(map[string]*Link, len(ids))
	if len(ids) == 0 {
		return found, nil
	}
	query := func(n int) string {
		return "SELECT " + linkColumns + " FROM link_rows WHERE " + ofFlow + " AND " + column +
			" IN (?" + strings.Repeat(", ?", n-1) + ")"
	}
	var q interface {
		QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	} = s.db
	if len(ids) > maxParams {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return nil, fmt.Errorf("links of flow %q: %w", flow, err)
		}
		defer tx.Rollback()
		q = tx
	}
	args := make([]any, 0, maxParams+1)
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), maxParams)]
		ids = ids[len(chunk):]
		args = append(args[:0], flow)
		for _, id := range chunk {
			if column == "target_id" {
				args = append(args, packID(id))
			} else {
				args = append(args, id)
			}
		}
		rows, err := q.QueryContext(ctx, query(len(chunk)), args...)
		if err != nil {
			return nil, fmt.Errorf("links of flow %q: %w", flow, err)
		}
		err = s.eachLink(ctx, flow, rows, func(l *Link) {
			if column == "source_id" {
				found[l.SourceID] = l
			} else {
				found[l.TargetID] = l
			}
		})
		if err != nil {
			return nil, fmt.Errorf("links of flow %q: %w", flow, err)
		}
	}
	return found, nil
}

// ScanLinks calls fn with batches of the flow's links, in source id order. Batches are read
// by keyset pagination, each as committed when it is read, and no query is open while fn
// runs, so fn may use the Store and commit Txs.
func (s *SQLite) ScanLinks(ctx context.Context, flow string, fn func([]*Link) error) error {
	const (
		first = "SELECT " + linkColumns + " FROM link_rows WHERE " + ofFlow + " AND source_id >= ? ORDER BY source_id LIMIT ?"
		next  = "SELECT " + linkColumns + " FROM link_rows WHERE " + ofFlow + " AND source_id > ? ORDER BY source_id LIMIT ?"
	)
	query, after := first, ""
	for {
		rows, err := s.db.QueryContext(ctx, query, flow, after, scanBatch)
		if err != nil {
			return fmt.Errorf("links of flow %q: %w", flow, err)
		}
		batch := make([]*Link, 0, scanBatch)
		if err := s.eachLink(ctx, flow, rows, func(l *Link) { batch = append(batch, l) }); err != nil {
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

// eachLink scans rows of linkColumns of flow, closes them, and calls fn with each link.
func (s *SQLite) eachLink(ctx context.Context, flow string, rows *sql.Rows, fn func(*Link)) error {
	var (
		links   []*Link
		highest int64 // the highest key number of the bases read
	)
	err := func() error {
		defer rows.Close()
		for rows.Next() {
			var (
				l                             = Link{Flow: flow}
				base                          []byte // a copy, which the base's values are slices of
				target, sh, th, updated, made any
			)
			if err := rows.Scan(&l.SourceID, &target, &base, &sh, &th, &updated, &l.LinkedIn, &l.MergedIn, &made); err != nil {
				return err
			}
			var err error
			if l.TargetID, err = unpackDigest(target); err != nil {
				return fmt.Errorf("link of source %q: %w", l.SourceID, err)
			}
			l.raw, l.storedTarget = base, l.TargetID
			if len(base) == 0 {
				l.raw = []byte("{}")
			}
			highest = max(highest, highestKey(base))
			if l.SourceHash, err = unpackDigest(sh); err == nil {
				if l.TargetHash, err = unpackDigest(th); err == nil {
					if l.Updated, err = unpackTime(updated); err == nil {
						l.Made, err = unpackMade(made)
					}
				}
			}
			if err != nil {
				return fmt.Errorf("link of source %q: %w", l.SourceID, err)
			}
			links = append(links, &l)
		}
		return rows.Err()
	}()
	if err != nil || len(links) == 0 {
		return err
	}
	// The bases decode on first use (Link.Bases), with the keys as numbered now: they cover
	// every number of the bases read.
	names, err := s.namesCovering(ctx, highest)
	if err != nil {
		return err
	}
	for _, l := range links {
		if len(l.raw) > 0 && l.raw[0] == binaryBase {
			l.keys = names
		}
		fn(l)
	}
	return nil
}

// CountLinks counts the flow's links ("" for all flows).
func (s *SQLite) CountLinks(ctx context.Context, flow string) (int, error) {
	var n int
	var err error
	if flow == "" {
		err = s.db.QueryRowContext(ctx, "SELECT count(*) FROM link_rows").Scan(&n)
	} else {
		err = s.db.QueryRowContext(ctx, "SELECT count(*) FROM link_rows WHERE "+ofFlow, flow).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("count links: %w", err)
	}
	return n, nil
}

// Overlaps implements Overlapping: readers have connections of their own beside the one
// writer (WAL), and Begin waits for the writer's turn.
func (s *SQLite) Overlaps() bool { return s.mode == ReadWrite }

// HasLinks reports whether the flow has a link.
func (s *SQLite) HasLinks(ctx context.Context, flow string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, "SELECT 1 FROM link_rows WHERE "+ofFlow+" LIMIT 1", flow).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("links of flow %q: %w", flow, err)
	}
	return true, nil
}

// Watermark returns the side's watermark, "" when none was set.
func (s *SQLite) Watermark(ctx context.Context, flow, side string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, "SELECT value FROM watermarks WHERE flow = ? AND side = ?", flow, side).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("watermark of flow %q: %w", flow, err)
	}
	return v, nil
}

// Counts returns the flow's counts; ok is false when none are recorded.
func (s *SQLite) Counts(ctx context.Context, flow string) (Counts, bool, error) {
	var c Counts
	err := s.db.QueryRowContext(ctx, "SELECT source, target, skipped, source_deletions, target_deletions FROM counts WHERE flow = ?", flow).Scan(
		&c.Source, &c.Target, &c.Skipped, &c.SourceDeletions, &c.TargetDeletions)
	if errors.Is(err, sql.ErrNoRows) {
		return Counts{}, false, nil
	}
	if err != nil {
		return Counts{}, false, fmt.Errorf("counts of flow %q: %w", flow, err)
	}
	return c, true, nil
}

// Intents returns the flow's intents ("" for all flows) in the order they were added.
func (s *SQLite) Intents(ctx context.Context, flow string) ([]Intent, error) {
	rows, err := s.db.QueryContext(ctx,
		"SELECT last_id, count, flow, items FROM intent_batches WHERE ? IN ('', flow) ORDER BY last_id", flow)
	if err != nil {
		return nil, fmt.Errorf("intents: %w", err)
	}
	defer rows.Close()
	var out []Intent
	for rows.Next() {
		var (
			last, count int64
			rowFlow     string
			items       []byte
		)
		if err := rows.Scan(&last, &count, &rowFlow, &items); err != nil {
			return nil, fmt.Errorf("intents: %w", err)
		}
		ins, err := decodeIntents(rowFlow, last-count+1, items, nil)
		if err != nil {
			return nil, fmt.Errorf("intents %d to %d: %w", last-count+1, last, err)
		}
		out = append(out, ins...)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("intents: %w", err)
	}
	return out, nil
}

// DeadLetters returns the flow's dead letters ("" for all flows), by flow, side and record id.
func (s *SQLite) DeadLetters(ctx context.Context, flow string) ([]DeadLetter, error) {
	rows, err := s.db.QueryContext(ctx,
		"SELECT flow, side, record_id, reason, attempts, first, last FROM dead_letters WHERE ? IN ('', flow) ORDER BY flow, side, record_id", flow)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	defer rows.Close()
	var out []DeadLetter
	for rows.Next() {
		var (
			d           DeadLetter
			first, last string
		)
		if err := rows.Scan(&d.Flow, &d.Side, &d.RecordID, &d.Reason, &d.Attempts, &first, &last); err != nil {
			return nil, fmt.Errorf("dead letters: %w", err)
		}
		if d.First, err = parseTime(first); err == nil {
			d.Last, err = parseTime(last)
		}
		if err != nil {
			return nil, fmt.Errorf("dead letter %q: %w", d.RecordID, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	return out, nil
}

// Waiting returns the flow's waiting records ("" for all flows), by flow, side and record id.
func (s *SQLite) Waiting(ctx context.Context, flow string) ([]Waiting, error) {
	rows, err := s.db.QueryContext(ctx,
		"SELECT flow, side, record_id, reason, since FROM waiting WHERE ? IN ('', flow) ORDER BY flow, side, record_id", flow)
	if err != nil {
		return nil, fmt.Errorf("waiting records: %w", err)
	}
	defer rows.Close()
	var out []Waiting
	for rows.Next() {
		var (
			w     Waiting
			since string
		)
		if err := rows.Scan(&w.Flow, &w.Side, &w.RecordID, &w.Reason, &since); err != nil {
			return nil, fmt.Errorf("waiting records: %w", err)
		}
		if w.Since, err = parseTime(since); err != nil {
			return nil, fmt.Errorf("waiting record %q: %w", w.RecordID, err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("waiting records: %w", err)
	}
	return out, nil
}

// Runs returns the last limit runs, newest first (all of them when limit <= 0).
func (s *SQLite) Runs(ctx context.Context, limit int) ([]Run, error) {
	if limit <= 0 {
		limit = -1 // no limit, to SQLite
	}
	rows, err := s.db.QueryContext(ctx,
		"SELECT id, started, finished, status, summary, worker FROM runs ORDER BY id DESC LIMIT ?", limit)
	if err != nil {
		return nil, fmt.Errorf("runs: %w", err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		var (
			r                 Run
			started           string
			finished, summary sql.NullString
		)
		if err := rows.Scan(&r.ID, &started, &finished, &r.Status, &summary, &r.Worker); err != nil {
			return nil, fmt.Errorf("runs: %w", err)
		}
		if r.Started, err = parseTime(started); err == nil {
			r.Finished, err = parseTime(finished.String)
		}
		if err != nil {
			return nil, fmt.Errorf("run %d: %w", r.ID, err)
		}
		if summary.Valid {
			r.Summary = json.RawMessage(summary.String)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("runs: %w", err)
	}
	return out, nil
}
