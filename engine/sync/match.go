package sync

import (
	"context"
	"fmt"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// mergeIndex finds unlinked records of one side by the values of a merge alternative.
type mergeIndex struct {
	byKey []map[string][]string // per alternative: key → record ids
	recs  map[string]connector.Record
}

type ambiguousError struct {
	entity string
	ids    []string
	shared string // set when the ambiguity is on this side: these records all match shared
}

func (e *ambiguousError) Error() string {
	if e.shared != "" {
		return fmt.Sprintf("matches record %s, which %d %s records match by the merge criteria (%s); make the criteria stricter or the records distinct", e.shared, len(e.ids), e.entity, strings.Join(e.ids, ", "))
	}
	return fmt.Sprintf("matches %d %s records by the merge criteria (%s); make the criteria stricter or the records distinct", len(e.ids), e.entity, strings.Join(e.ids, ", "))
}

// match finds the unlinked record of the other side that matches rec by the first merge
// alternative that matches exactly one record.
func (fr *flowRun) match(ctx context.Context, side string, rec connector.Record) (*connector.Record, error) {
	otherSide := other(side)
	idx, err := fr.index(ctx, otherSide)
	if err != nil {
		return nil, err
	}
	entity := fr.tgtEntity
	if otherSide == state.Source {
		entity = fr.srcEntity
	}
	for a, alt := range fr.f.Merge {
		key, ok := mergeKey(rec.Data, alt, side)
		if !ok {
			continue
		}
		ids := idx.byKey[a][key]
		switch len(ids) {
		case 0:
			continue
		case 1:
			// A link needs a match that is unique from both sides: a record that several
			// records of this side match is ambiguous for each of them.
			same, err := fr.index(ctx, side)
			if err != nil {
				return nil, err
			}
			if rivals := same.byKey[a][key]; len(rivals) > 1 {
				sameEntity := fr.srcEntity
				if side == state.Target {
					sameEntity = fr.tgtEntity
				}
				return nil, &ambiguousError{entity: sameEntity, ids: rivals, shared: ids[0]}
			}
			found := idx.recs[ids[0]]
			idx.remove(found, fr.f.Merge, otherSide)
			same.remove(rec, fr.f.Merge, side)
			return &found, nil
		}
		return nil, &ambiguousError{entity: entity, ids: ids}
	}
	return nil, nil
}

// mergeKey is the text of a record's values for one merge alternative; ok is false when one
// of them is empty (empty values never match).
func mergeKey(data map[string]any, alt []mapping.Pair, side string) (string, bool) {
	parts := make([]string, len(alt))
	for i, p := range alt {
		path := p.Source
		if side == state.Target {
			path = p.Target
		}
		v := mapping.Get(data, path)
		if mapping.Empty(v) {
			return "", false
		}
		parts[i] = mapping.IDString(v)
	}
	return strings.Join(parts, "\x00"), true
}

func (idx *mergeIndex) remove(rec connector.Record, alts [][]mapping.Pair, side string) {
	for a, alt := range alts {
		key, ok := mergeKey(rec.Data, alt, side)
		if !ok {
			continue
		}
		ids := idx.byKey[a][key]
		for i, id := range ids {
			if id == rec.ID {
				idx.byKey[a][key] = append(ids[:i:i], ids[i+1:]...)
				break
			}
		}
	}
	delete(idx.recs, rec.ID)
}

// index builds, on first use, the index of the unlinked records of side.
func (fr *flowRun) index(ctx context.Context, side string) (*mergeIndex, error) {
	if side == state.Source && fr.srcIndex != nil {
		return fr.srcIndex, nil
	}
	if side == state.Target && fr.tgtIndex != nil {
		return fr.tgtIndex, nil
	}
	idx := &mergeIndex{byKey: make([]map[string][]string, len(fr.f.Merge)), recs: map[string]connector.Record{}}
	for i := range idx.byKey {
		idx.byKey[i] = map[string][]string{}
	}
	err := fr.scanUnlinked(ctx, side, func(r connector.Record) {
		if fr.dryLinked[side+"\x00"+r.ID] {
			return
		}
		if side == state.Source {
			if ok, err := fr.f.Filter(r.Data); err != nil || !ok {
				return
			}
		}
		idx.recs[r.ID] = r
		for a, alt := range fr.f.Merge {
			if key, ok := mergeKey(r.Data, alt, side); ok {
				idx.byKey[a][key] = append(idx.byKey[a][key], r.ID)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if side == state.Source {
		fr.srcIndex = idx
	} else {
		fr.tgtIndex = idx
	}
	return idx, nil
}

// scanUnlinked calls fn with every record of side that no link of the flow points at.
func (fr *flowRun) scanUnlinked(ctx context.Context, side string, fn func(connector.Record)) error {
	conn, entity := fr.on(side)
	return conn.Scan(ctx, entity, "", func(recs []connector.Record) error {
		ids := make([]string, len(recs))
		for i, r := range recs {
			ids[i] = r.ID
		}
		links, err := fr.linksOf(ctx, side, ids)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if links[r.ID] == nil {
				fn(r)
			}
		}
		return nil
	})
}
