package state

import (
	"context"
	"errors"
	"fmt"
)

// SystemIdentity says which database or service a system of the links is: its connector and
// its location (a file's absolute path, a URL without credentials). A run against another
// location whose records have the ids of linked ones would pair records that were never
// synced, so the engine compares them before it runs.
type SystemIdentity struct {
	Connector string
	Location  string
}

// Systems returns the recorded identities of the systems, by system id.
func (s *SQLite) Systems(ctx context.Context) (map[string]SystemIdentity, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT system, connector, location FROM systems")
	if err != nil {
		return nil, fmt.Errorf("systems: %w", err)
	}
	defer rows.Close()
	out := map[string]SystemIdentity{}
	for rows.Next() {
		var id string
		var si SystemIdentity
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

// PutSystem records the identity of a system.
func (t *sqliteTx) PutSystem(id string, si SystemIdentity) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if id == "" {
		return errors.New("put system: it needs an id")
	}
	if _, err := t.exec(`INSERT INTO systems (system, connector, location) VALUES (?, ?, ?)
		ON CONFLICT (system) DO UPDATE SET connector = excluded.connector, location = excluded.location`, id, si.Connector, si.Location); err != nil {
		return fmt.Errorf("put system %q: %w", id, err)
	}
	return nil
}
