package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Pending is a change a run refused to make on its own and that waits for a person: a larger
// share of a flow's linked records than the circuit breaker allows went missing in one run
// (an expired token that makes a list come back empty looks the same as a mass delete).
// `dataflow pending` lists them, `dataflow approve ID` lets the next run make the change, and
// `dataflow reject ID` drops it and keeps the links.
type Pending struct {
	ID      int64
	Flow    string
	Created time.Time
	// Status is PendingWaiting until a person approves the change (PendingApproved).
	Status string
	// Summary says in a sentence what the run would have done, for the listing.
	Summary string
	// Links are the links whose records were missing.
	Links []PendingLink
}

// PendingLink is a link one of whose records was missing.
type PendingLink struct {
	SourceID string `json:"s"`
	TargetID string `json:"t"`
	// Missing is the side whose record was missing (Source or Target), "" for both.
	Missing string `json:"m,omitempty"`
}

// The statuses of a pending change.
const (
	PendingWaiting  = "pending"
	PendingApproved = "approved"
)

// ErrNoPending is wrapped by the error of a decision about a pending change that is not there.
var ErrNoPending = errors.New("no such pending change")

// Pending returns the pending changes of a flow ("" for all flows), oldest first.
func (s *SQLite) Pending(ctx context.Context, flow string) ([]Pending, error) {
	rows, err := s.db.QueryContext(ctx,
		"SELECT id, flow, created, status, summary, links FROM pending WHERE ? IN ('', flow) ORDER BY id", flow)
	if err != nil {
		return nil, fmt.Errorf("pending changes: %w", err)
	}
	defer rows.Close()
	var out []Pending
	for rows.Next() {
		var (
			p              Pending
			created, links string
		)
		if err := rows.Scan(&p.ID, &p.Flow, &created, &p.Status, &p.Summary, &links); err != nil {
			return nil, fmt.Errorf("pending changes: %w", err)
		}
		if p.Created, err = parseTime(created); err != nil {
			return nil, fmt.Errorf("pending change %d: %w", p.ID, err)
		}
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

// PutPending records a pending change waiting for a decision and returns its id. A change of
// the same flow still waiting is replaced (a run that trips again describes what is missing
// now); an approved one is kept.
func (t *sqliteTx) PutPending(p *Pending) (int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p == nil || p.Flow == "" {
		return 0, errors.New("put pending change: it needs a flow")
	}
	links, err := json.Marshal(p.Links)
	if err != nil {
		return 0, fmt.Errorf("put pending change of flow %q: %w", p.Flow, err)
	}
	if _, err := t.exec("DELETE FROM pending WHERE flow = ? AND status = ?", p.Flow, PendingWaiting); err != nil {
		return 0, fmt.Errorf("put pending change of flow %q: %w", p.Flow, err)
	}
	created := p.Created
	if created.IsZero() {
		created = t.s.now()
	}
	res, err := t.exec("INSERT INTO pending (flow, created, status, summary, links) VALUES (?, ?, ?, ?, ?)",
		p.Flow, formatTime(created), PendingWaiting, p.Summary, string(links))
	if err != nil {
		return 0, fmt.Errorf("put pending change of flow %q: %w", p.Flow, err)
	}
	return res.LastInsertId()
}

// ApprovePending marks a pending change approved: the next run of its flow makes it.
func (t *sqliteTx) ApprovePending(id int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	res, err := t.exec("UPDATE pending SET status = ? WHERE id = ?", PendingApproved, id)
	if err != nil {
		return fmt.Errorf("approve pending change %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("approve pending change %d: %w", id, ErrNoPending)
	}
	return nil
}

// DeletePending forgets a pending change: rejected, or made by a run.
func (t *sqliteTx) DeletePending(id int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	res, err := t.exec("DELETE FROM pending WHERE id = ?", id)
	if err != nil {
		return fmt.Errorf("delete pending change %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("delete pending change %d: %w", id, ErrNoPending)
	}
	return nil
}

// Fingerprint returns the fingerprint recorded for a flow's property table, "" for none.
func (s *SQLite) Fingerprint(ctx context.Context, flow string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, "SELECT value FROM fingerprints WHERE flow = ?", flow).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("fingerprint of flow %q: %w", flow, err)
	}
	return v, nil
}

// SetFingerprint records the fingerprint of a flow's property table.
func (t *sqliteTx) SetFingerprint(flow, value string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.exec("INSERT INTO fingerprints (flow, value) VALUES (?, ?) ON CONFLICT (flow) DO UPDATE SET value = excluded.value", flow, value); err != nil {
		return fmt.Errorf("set fingerprint of flow %q: %w", flow, err)
	}
	return nil
}
