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

// Flows lists the flows that have links, waiting records or dead letters, sorted. The flows
// of the links are found by a skip-scan of the links' primary key (flow, source_id), one
// index seek per flow, not a read of every link.
func (s *SQLite) Flows(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `
		WITH RECURSIVE f(flow) AS (
			SELECT min(flow) FROM links
			UNION ALL
			SELECT (SELECT min(flow) FROM links WHERE flow > f.flow) FROM f WHERE f.flow IS NOT NULL
		)
		SELECT flow FROM f WHERE flow IS NOT NULL
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
