package sync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
)

// mergeIndex finds unlinked records of one side by the values of a merge alternative.
type mergeIndex struct {
	byKey []map[string][]string // per alternative: key → record ids
	recs  map[string]connector.Record
	order []string // the ids of recs as found, for indexes built from Finders
	// refused holds, per alternative, the keys a Finder refused to search for
	// (connector.RecordError), with the reason: whether they match is not known.
	refused []map[string]error
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

// match links rec, a record of side without a link, with the record of the other side that
// the planner chose among the candidates the batch's read brought (prepareMatch), and takes
// both out of the candidates of the records after it: nil when none matches.
func (fr *flowRun) match(side Side, rec connector.Record) (*connector.Record, error) {
	return fr.plan.linkTaking(side, rec, fr.candidates(other(side)), fr.candidates(side))
}

// linkTaking decides the link of rec (link) and takes the two records it links out of the
// candidates, so that no record after it in the run is linked with either: nil when none
// matches.
func (pl *planner) linkTaking(side Side, rec connector.Record, others, same *mergeIndex) (*connector.Record, error) {
	id, err := pl.link(side, rec, others, same)
	if err != nil || id == "" {
		return nil, err
	}
	found := others.recs[id]
	others.remove(found, pl.f.Merge, other(side))
	same.remove(rec, pl.f.Merge, side)
	return &found, nil
}

// link decides which record of the other side a record of side without a link is linked with
// (its id, "" for none), among the unlinked candidates of the other side (others) and of its
// own (same, the rivals): the first merge alternative whose values match exactly one record,
// provided no other record of side matches that one too (docs/semantics.md §3.1). Several
// matches are an *ambiguousError: of this record (it fails), or, when the ambiguity is that
// of its match (shared), of that record (this one waits for it to be resolved). It reads
// nothing: same may be nil when no alternative matches exactly one record.
func (pl *planner) link(side Side, rec connector.Record, others, same *mergeIndex) (string, error) {
	if others == nil {
		return "", fmt.Errorf("the unlinked %s records were not read before the plan", pl.entity(other(side)))
	}
	for a, alt := range pl.f.Merge {
		key, ok := mergeKey(rec.Data, alt, side)
		if !ok {
			continue
		}
		ids := others.byKey[a][key]
		switch len(ids) {
		case 0:
			continue
		case 1:
			// A link needs a match that is unique from both sides: a record that several
			// records of this side match is ambiguous for each of them.
			if same == nil {
				return "", fmt.Errorf("the unlinked %s records were not read before the plan", pl.entity(side))
			}
			if rivals := same.byKey[a][key]; len(rivals) > 1 {
				return "", &ambiguousError{entity: pl.entity(side), ids: rivals, shared: ids[0]}
			}
			return ids[0], nil
		}
		return "", &ambiguousError{entity: pl.entity(other(side)), ids: ids}
	}
	return "", nil
}

// needsRivals reports whether linking recs (records of side without a link) needs the
// candidates of side too: whether one of them matches exactly one of others by the first
// alternative it matches any by (see link).
func (pl *planner) needsRivals(side Side, recs []connector.Record, others *mergeIndex) bool {
	for _, rec := range recs {
		for a, alt := range pl.f.Merge {
			if key, ok := mergeKey(rec.Data, alt, side); ok {
				if n := len(others.byKey[a][key]); n > 0 {
					if n == 1 {
						return true
					}
					break
				}
			}
		}
	}
	return false
}

// entity is the name of side's entity.
func (pl *planner) entity(side Side) string {
	if side == Source {
		return pl.f.Source.Name()
	}
	return pl.f.Target.Name()
}

// mergeKey is the text of a record's values for one merge alternative; ok is false when one
// of them is empty (empty values never match).
func mergeKey(data map[string]any, alt []mapping.Pair, side Side) (string, bool) {
	parts := make([]string, len(alt))
	for i, p := range alt {
		path := p.Source
		if side == Target {
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

func (idx *mergeIndex) remove(rec connector.Record, alts [][]mapping.Pair, side Side) {
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

// add indexes r, a record of side, by its values for each merge alternative.
func (idx *mergeIndex) add(r connector.Record, alts [][]mapping.Pair, side Side) {
	idx.recs[r.ID] = r
	for a, alt := range alts {
		if key, ok := mergeKey(r.Data, alt, side); ok {
			idx.byKey[a][key] = append(idx.byKey[a][key], r.ID)
		}
	}
}

func newMergeIndex(alts int) *mergeIndex {
	idx := &mergeIndex{byKey: make([]map[string][]string, alts), recs: map[string]connector.Record{}}
	for i := range idx.byKey {
		idx.byKey[i] = map[string][]string{}
	}
	return idx
}

// candidate reports whether a record of side may be linked by merge criteria: not linked in
// this run already, and, for a source record, taken by the flow's `when`.
func (fr *flowRun) candidate(side Side, r connector.Record) bool {
	if fr.dryLinked[Key{side, r.ID}] {
		return false
	}
	if side == Source {
		if ok, err := fr.f.Filter(r.Data); err != nil || !ok {
			return false
		}
	}
	return true
}

// candidates returns the index of the unlinked records of side that match searches, as the
// batch's read left it: while a batch is linked through Finders, the records with that
// batch's merge keys (batchIdx); else every unlinked record of side, nil until it is read.
func (fr *flowRun) candidates(side Side) *mergeIndex {
	if fr.batchIdx != nil {
		return fr.batchIdx[side]
	}
	if side == Source {
		return fr.srcIndex
	}
	return fr.tgtIndex
}

// index returns the index of every unlinked record of side, read once per flow run (or the
// batch's, while a batch is linked through Finders).
func (fr *flowRun) index(ctx context.Context, side Side) (*mergeIndex, error) {
	if fr.batchIdx != nil {
		return fr.batchIdx[side], nil
	}
	if side == Source && fr.srcIndex != nil {
		return fr.srcIndex, nil
	}
	if side == Target && fr.tgtIndex != nil {
		return fr.tgtIndex, nil
	}
	idx := newMergeIndex(len(fr.f.Merge))
	if fr.emptyAtStart(side) {
		fr.setIndex(side, idx)
		return idx, nil
	}
	err := fr.scanUnlinked(ctx, side, func(r connector.Record) {
		if fr.candidate(side, r) {
			idx.add(r, fr.f.Merge, side)
		}
	})
	if err != nil {
		return nil, err
	}
	fr.setIndex(side, idx)
	return idx, nil
}

func (fr *flowRun) setIndex(side Side, idx *mergeIndex) {
	if side == Source {
		fr.srcIndex = idx
	} else {
		fr.tgtIndex = idx
	}
}

// scanUnlinked calls fn with every record of side that no link of the flow points at.
func (fr *flowRun) scanUnlinked(ctx context.Context, side Side, fn func(connector.Record)) error {
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

// finder returns the connection of side when it can find records by property values and the
// flow has not found it unable to search by its merge criteria, else nil.
func (fr *flowRun) finder(side Side) connector.Finder {
	if fr.noFinder {
		return nil
	}
	conn, _ := fr.on(side)
	return conn.Capabilities().Finder
}

// prepareMatch reads the candidates that match searches for a batch of side's records
// without a link (recs): the read stage of linking, so that deciding a link (planner.link)
// reads nothing. When both connections are Finders: the records of the other side with the
// batch's merge keys, and the records of this side that share a key with exactly one of those
// (the rivals that make a match ambiguous); memory and lookups grow with the batch, not with
// the systems. Without Finders, every unlinked record of the other side, and of this side when
// a record of the batch has exactly one match, read once per flow run (scanFor).
//
// It returns, by id, the records of recs whose keys a Finder refused to search for: whether
// they match a record is not known, so they are neither linked nor created in this run.
func (fr *flowRun) prepareMatch(ctx context.Context, side Side, recs []connector.Record) (map[string]error, error) {
	fr.batchIdx = nil
	if len(fr.f.Merge) == 0 || len(recs) == 0 {
		return nil, nil
	}
	if fr.finder(side) == nil || fr.finder(other(side)) == nil {
		return nil, fr.scanFor(ctx, side, recs)
	}
	refused, err := fr.findFor(ctx, side, recs)
	if err == nil && fr.batchIdx == nil {
		err = fr.scanFor(ctx, side, recs) // a connection cannot search by the merge criteria
	}
	return refused, err
}

// scanFor reads, when the batch's records need them, the indexes of every unlinked record of
// each side: of the other side when one of recs may be linked by merge criteria (unlinked
// would ask match), of side when one of those matches exactly one record (the rivals).
func (fr *flowRun) scanFor(ctx context.Context, side Side, recs []connector.Record) error {
	var linkable []connector.Record
	for _, r := range recs {
		if fr.mayMatch(side, r) {
			linkable = append(linkable, r)
		}
	}
	if len(linkable) == 0 {
		return nil
	}
	others, err := fr.index(ctx, other(side))
	if err != nil || !fr.plan.needsRivals(side, linkable, others) {
		return err
	}
	_, err = fr.index(ctx, side)
	return err
}

// mayMatch reports whether unlinked looks for the partner of rec, a record of side without a
// link, by merge criteria: the flow takes it (an error is unlinked's to report) and this run
// has not linked or detached it.
func (fr *flowRun) mayMatch(side Side, rec connector.Record) bool {
	if side == Source {
		if ok, err := fr.f.Filter(rec.Data); err != nil || !ok {
			return false
		}
	}
	return !fr.dryLinked[Key{side, rec.ID}] && !fr.detached[Key{side, rec.ID}]
}

// findFor reads the candidates of a batch through the connections' Finders (see
// prepareMatch); batchIdx stays nil when a connection cannot search by the merge criteria.
func (fr *flowRun) findFor(ctx context.Context, side Side, recs []connector.Record) (map[string]error, error) {
	if fr.emptyAtStart(other(side)) {
		// Nothing to search for (findByKeys): no record there but the run's own, all linked.
		fr.batchIdx = map[Side]*mergeIndex{other(side): newMergeIndex(len(fr.f.Merge)), side: newMergeIndex(len(fr.f.Merge))}
		return nil, nil
	}
	keys := make([]map[string]bool, len(fr.f.Merge))
	for a, alt := range fr.f.Merge {
		keys[a] = map[string]bool{}
		for _, r := range recs {
			if k, ok := mergeKey(r.Data, alt, side); ok {
				keys[a][k] = true
			}
		}
	}
	others, err := fr.findUnlinked(ctx, other(side), keys)
	if err != nil || others == nil {
		return nil, err
	}
	rivalKeys := make([]map[string]bool, len(fr.f.Merge))
	for a := range fr.f.Merge {
		rivalKeys[a] = map[string]bool{}
		for k := range keys[a] {
			if len(others.byKey[a][k]) == 1 {
				rivalKeys[a][k] = true
			}
		}
	}
	same, err := fr.findUnlinked(ctx, side, rivalKeys)
	if err != nil || same == nil {
		return nil, err
	}
	fr.batchIdx = map[Side]*mergeIndex{other(side): others, side: same}
	var refused map[string]error
	if others.refused == nil && same.refused == nil {
		return nil, nil
	}
	for _, r := range recs {
		for a, alt := range fr.f.Merge {
			k, ok := mergeKey(r.Data, alt, side)
			if !ok {
				continue
			}
			for _, idx := range []*mergeIndex{others, same} {
				if idx.refused == nil || idx.refused[a][k] == nil {
					continue
				}
				if refused == nil {
					refused = map[string]error{}
				}
				refused[r.ID] = idx.refused[a][k]
			}
		}
	}
	return refused, nil
}

// findUnlinked indexes the unlinked candidates of side that have one of the given merge keys
// (per alternative), found through the side's Finder. It returns nil, and stops using Finders
// in this flow run, when the connection cannot search by a merge criterion.
func (fr *flowRun) findUnlinked(ctx context.Context, side Side, keys []map[string]bool) (*mergeIndex, error) {
	return fr.findByKeys(ctx, side, keys, fr.candidate)
}

// findByKeys indexes the records of side that no link points at, that have one of the given
// merge keys (per alternative) and that keep accepts, found through the side's Finder. It
// returns nil when the connection cannot search by a merge criterion (and stops using Finders
// in this flow run).
func (fr *flowRun) findByKeys(ctx context.Context, side Side, keys []map[string]bool, keep func(Side, connector.Record) bool) (*mergeIndex, error) {
	_, entity := fr.on(side)
	finder := fr.finder(side)
	idx := newMergeIndex(len(fr.f.Merge))
	if fr.emptyAtStart(side) {
		return idx, nil
	}
	for a, alt := range fr.f.Merge {
		if len(keys[a]) == 0 {
			continue
		}
		paths := make([]string, len(alt))
		for i, p := range alt {
			paths[i] = p.Source
			if side == Target {
				paths[i] = p.Target
			}
		}
		sorted := make([]string, 0, len(keys[a]))
		for k := range keys[a] {
			sorted = append(sorted, k)
		}
		slices.Sort(sorted) // the same keys give the same queries, and records in the same order
		tuples := make([][]string, len(sorted))
		for i, k := range sorted {
			tuples[i] = strings.Split(k, "\x00")
		}
		recs, refused, err := findSome(ctx, finder, entity, paths, tuples)
		if errors.Is(err, connector.ErrCannotFind) {
			fr.noFinder = true
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		for i, why := range refused {
			if idx.refused == nil {
				idx.refused = make([]map[string]error, len(fr.f.Merge))
			}
			if idx.refused[a] == nil {
				idx.refused[a] = map[string]error{}
			}
			idx.refused[a][sorted[i]] = why
		}
		ids := make([]string, len(recs))
		for i, r := range recs {
			ids[i] = r.ID
		}
		links, err := fr.linksOf(ctx, side, ids)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			// The connection may return more than matches: the key is compared here, as the
			// full index compares it.
			k, ok := mergeKey(r.Data, alt, side)
			if !ok || !keys[a][k] || links[r.ID] != nil || !keep(side, r) {
				continue
			}
			if !slices.Contains(idx.byKey[a][k], r.ID) {
				idx.byKey[a][k] = append(idx.byKey[a][k], r.ID)
			}
			if _, dup := idx.recs[r.ID]; !dup {
				idx.order = append(idx.order, r.ID)
			}
			idx.recs[r.ID] = r
		}
	}
	return idx, nil
}
