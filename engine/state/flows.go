package state

import (
	"context"
	"fmt"
	"sort"
)

// FlowLister is the optional ability of a Store to list the flows it holds anything of:
// links, waiting records or dead letters. The commands that report on the state (status,
// links, deadletters) use it when there are no mapping files to name the flows.
type FlowLister interface {
	Flows(ctx context.Context) ([]string, error)
}

// Flows lists the flows that have links, waiting records or dead letters, sorted. A flow has
// links when the links' primary key (flow, source_id) has an entry of its number: one index
// seek per numbered flow, not a read of every link.
func (s *SQLite) Flows(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT name FROM flows WHERE EXISTS (SELECT 1 FROM link_rows WHERE flow = flows.id)
		UNION SELECT flow FROM waiting
		UNION SELECT flow FROM dead_letters`)
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
	sort.Strings(out)
	return out, nil
}
