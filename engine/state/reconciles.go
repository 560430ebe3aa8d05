package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Reconciled returns when the flow last read both its sides whole; ok is false when it never
// did (or not since this state's schema 6).
func (s *SQLite) Reconciled(ctx context.Context, flow string) (time.Time, bool, error) {
	var v string
	err := s.db.QueryRowContext(ctx, "SELECT at FROM reconciles WHERE flow = ?", flow).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("last reconcile of flow %q: %w", flow, err)
	}
	at, err := parseTime(v)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("last reconcile of flow %q: %q is not a time: %w", flow, v, err)
	}
	return at, true, nil
}

const (
	sqlClearWatermarks = `DELETE FROM watermarks WHERE flow = ?`
	sqlSetReconciled   = `INSERT INTO reconciles (flow, at) VALUES (?, ?) ON CONFLICT (flow) DO UPDATE SET at = excluded.at`
)

// ClearWatermarks forgets the watermarks of both sides of a flow; none set is not an error.
func (t *sqliteTx) ClearWatermarks(flow string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.exec(sqlClearWatermarks, flow); err != nil {
		return fmt.Errorf("reset the watermarks of flow %q: %w", flow, err)
	}
	return nil
}

// SetReconciled records when the flow last read both its sides whole.
func (t *sqliteTx) SetReconciled(flow string, at time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if at.IsZero() {
		return fmt.Errorf("set the last reconcile of flow %q: no time", flow)
	}
	if _, err := t.exec(sqlSetReconciled, flow, formatTime(at)); err != nil {
		return fmt.Errorf("set the last reconcile of flow %q: %w", flow, err)
	}
	return nil
}
