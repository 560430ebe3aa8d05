package sync

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// build computes the record to create on the other side from a record of side and, for a
// source record, the canonical value of each property in target form: the S half of the new
// link's base (rebase), computed here once.
func (fr *flowRun) build(side Side, rec connector.Record) (map[string]any, propValues, error) {
	data, s, _, err := fr.buildForms(side, rec)
	return data, s, err
}

// buildForms is build that also gives the canonical form of the record built, which its
// create's intent records: for a source record, put together from its values' forms
// (mapping.Flow.BuildTargetForms), each value encoded once.
func (fr *flowRun) buildForms(side Side, rec connector.Record) (map[string]any, propValues, []byte, error) {
	if side == Target {
		data, err := fr.f.BuildSource(rec.Data, fr.refs)
		if err != nil {
			return nil, nil, nil, err
		}
		return data, nil, mapping.Canonical(data), nil
	}
	return fr.f.BuildTargetForms(rec.Data, fr.refs) // only the error, on an error
}

// prebuilt is a record built for its create, with the canonical form its intent records.
type prebuilt struct {
	data    map[string]any
	s       propValues
	err     error
	encoded []byte
}

// prebuild builds a record for its create.
func (fr *flowRun) prebuild(side Side, rec connector.Record) *prebuilt {
	b := &prebuilt{}
	b.data, b.s, b.encoded, b.err = fr.buildForms(side, rec)
	return b
}

// prepareCreates returns, for a pass of side that will create nearly every record it reads
// (a first sync: the flow had no link when the run began, and the run has linked nothing
// yet, as it has before a two-way sync's second pass), the work that builds the records for
// their creates on the scan's goroutine, while the batch before is written: nil otherwise.
// Only a pure flow's records are built there: their mapping reads nothing but the record (no
// reference to translate through links this run is making).
func (fr *flowRun) prepareCreates(side Side) func([]connector.Record) []*prebuilt {
	linked := fr.stats.CreatedTarget + fr.stats.CreatedSource + fr.stats.Merged + fr.stats.Recovered
	if !fr.pure || fr.check == nil || fr.check.hadLinks || linked > 0 || fr.r.Opts.DryRun {
		return nil
	}
	return func(recs []connector.Record) []*prebuilt {
		built := make([]*prebuilt, len(recs))
		for i, rec := range recs {
			built[i] = fr.prebuild(side, rec)
		}
		return built
	}
}

// creations are the records of a batch to be created on the other side: with what the scan
// built for each (nil where it did not) and its digest as read ("" where the scan gave none),
// aligned with recs.
type creations struct {
	recs    []connector.Record
	built   []*prebuilt
	digests []string
}

func (c *creations) add(rec connector.Record, built *prebuilt, digest string) {
	c.recs = append(c.recs, rec)
	c.built = append(c.built, built)
	c.digests = append(c.digests, digest)
}

// toCreate is a batch of creates: the records they are made from, the records to create
// (datas), what build gave for each (sVals, nil entries allowed), the canonical form of each
// of datas (encoded; nil: made here), and the digest of each of from as read (digests; nil or
// "" where unknown: computed when the link is made). All are aligned with from.
type toCreate struct {
	from    []connector.Record
	datas   []map[string]any
	sVals   []propValues
	encoded [][]byte
	digests []string
}

// create creates, on the other side, the records of side that have no partner. The intent to
// create is committed first; a run killed after the create and before the link finds the
// record at its next start (recoverIntents) instead of creating it again.
func (fr *flowRun) create(ctx context.Context, side Side, c *creations, out *outcome) error {
	recs := c.recs
	all := make([]*prebuilt, len(recs))
	copy(all, c.built)
	fr.split(len(recs), func(lo, hi int, _ *digesters) {
		for i := lo; i < hi; i++ {
			if all[i] == nil {
				all[i] = fr.prebuildReferences(ctx, side, recs[i])
			}
		}
	})
	n := len(recs)
	tc := &toCreate{from: make([]connector.Record, 0, n), datas: make([]map[string]any, 0, n),
		sVals: make([]propValues, 0, n), encoded: make([][]byte, 0, n), digests: make([]string, 0, n)}
	for i, rec := range recs {
		if all[i].err != nil {
			fr.fail(out, side, rec.ID, all[i].err)
			continue
		}
		tc.from = append(tc.from, rec)
		tc.datas = append(tc.datas, all[i].data)
		tc.sVals = append(tc.sVals, all[i].s)
		tc.encoded = append(tc.encoded, all[i].encoded)
		tc.digests = append(tc.digests, c.digests[i])
	}
	if len(tc.datas) == 0 {
		return nil
	}
	if fr.r.Opts.DryRun {
		for i, rec := range tc.from {
			fr.dryCreate(side, rec.ID, tc.datas[i], "")
		}
		return nil
	}
	_, err := fr.createMany(ctx, side, tc, true)
	return err
}

// dryCreate counts a create a dry run plans, and links the record to a placeholder so that
// records referring to it are planned as the run would do them.
func (fr *flowRun) dryCreate(side Side, id string, data map[string]any, reason string) string {
	fr.countCreate(side)
	fr.dryLinked[Key{side, id}] = true
	if side == Source {
		fr.dryProcessed[id] = true
	}
	placeholder := "(new from " + id + ")"
	if side == Source {
		fr.refs.remember(fr.f, id, placeholder)
	} else {
		fr.refs.remember(fr.f, placeholder, id)
	}
	fr.change(Change{Action: "create", Side: string(other(side)), FromID: id, New: string(mapping.Canonical(data)), Reason: reason})
	return placeholder
}

func (fr *flowRun) countCreate(fromSide Side) {
	if fromSide == Source {
		fr.stats.CreatedTarget++
	} else {
		fr.stats.CreatedSource++
	}
}

// createNow records intents, creates the records, and links them. It returns the new ids, ""
// for a record that failed. sVals holds what build gave for each record (nil entries allowed),
// encoded the canonical form of each record of datas (nil: made here). stage leaves the links
// to be committed later, as stage.go describes; without it they are committed before createNow
// returns.
func (fr *flowRun) createNow(ctx context.Context, side Side, from []connector.Record, datas []map[string]any, sVals []propValues, encoded [][]byte, stage bool) ([]string, error) {
	return fr.createMany(ctx, side, &toCreate{from: from, datas: datas, sVals: sVals, encoded: encoded}, stage)
}

// createMany is createNow of a batch that may know the digests of its records as read.
func (fr *flowRun) createMany(ctx context.Context, side Side, tc *toCreate, stage bool) ([]string, error) {
	from, datas, sVals := tc.from, tc.datas, tc.sVals
	toSide := other(side)
	conn, entity := fr.on(toSide)
	digests := make([]string, len(from)) // flowBack forgets those of the records it writes
	copy(digests, tc.digests)
	intents, err := fr.addIntents(ctx, toSide, from, datas, tc.encoded)
	if err != nil {
		return nil, err
	}
	intentIDs := make([]int64, len(intents))
	for i := range intents {
		intentIDs[i] = intents[i].ID
	}
	var results []connector.Result
	if kc := fr.keyed(toSide); kc != nil {
		// The keys are derived from the intents only for a system that honours them: a
		// digest per record is no small part of a create into one that does not.
		keys := make([]string, len(intents))
		for i := range intents {
			keys[i] = idempotencyKey(intents[i])
		}
		results, err = kc.CreateKeyed(ctx, entity, datas, keys)
	} else {
		results, err = conn.Create(ctx, entity, datas)
	}
	// A call that failed as a whole may have created some of the records: those are linked
	// now, the intents of the others stay for the next run to recover.
	results, failedCall := partialResults(results, len(datas), err)
	callErr := err
	if err = readBack(ctx, conn, entity, results); err != nil {
		if failedCall {
			err = callErr
		}
		return nil, err // the intents stay: the next run recovers whatever was created
	}
	from = append([]connector.Record(nil), from...) // flowBack replaces the records it writes
	unsynced, unsyncedWhy, err := fr.flowBack(ctx, side, from, results, sVals, digests)
	if err != nil {
		return nil, err // the intents stay: the next run recovers whatever was created
	}
	c := &createdBatch{fr: fr, side: side, results: results, outcomes: make([]createdOutcome, len(results))}
	made, unbased := fr.linkCreated(c, stage, from, datas, sVals, digests, unsynced)
	newIDs, links, accepted, undone := fr.sortCreated(c, entity, from, made, unbased)
	for i, reason := range unsyncedWhy {
		c.outcomes[i].reason = reason
	}
	// Only the intents of the records the connection answered for are settled; the others
	// stay for the next run to recover.
	c.settled = intentIDs[:min(len(results), len(intentIDs))]
	if undone > 0 {
		c.settled = nil
		for i, res := range results {
			if res.Err != errUndone {
				c.settled = append(c.settled, intentIDs[i])
			}
		}
	}
	for _, l := range links {
		fr.refs.remember(fr.f, l.SourceID, l.TargetID)
	}
	var partialErr error
	if failedCall {
		partialErr = &undoneError{err: callErr, entity: entity, made: accepted, undone: undone}
	}
	link := func(tx state.Tx) error { return c.write(tx, fr.f.ID()) }
	if stage {
		fr.stage(link, links, c)
		return newIDs, partialErr
	}
	if err := fr.commit(ctx, link); err != nil {
		return nil, err
	}
	return newIDs, partialErr
}

// sortCreated gives each record of c.side a batch of creates was made from its outcome: the
// link of its copy, or why it failed, or nothing when the connection left its create undone.
// It returns the new ids ("" where none), the links, and the numbers of records created and
// left undone.
func (fr *flowRun) sortCreated(c *createdBatch, entity string, from []connector.Record, made []*state.Link, unbased []error) (newIDs []string, links []*state.Link, accepted, undone int) {
	newIDs = make([]string, len(from))
	for i, res := range c.results {
		o := &c.outcomes[i]
		o.id = from[i].ID
		if res.Err == errUndone {
			undone++
			fr.stats.Undone++
			continue
		}
		if res.Err == nil {
			accepted++
		}
		switch {
		case res.Err != nil:
			o.reason = fmt.Sprintf("creating %s: %v", entity, res.Err)
			fr.stats.Failed++
			fr.failedNow[Key{c.side, o.id}] = true
		case made[i] == nil:
			o.reason = unbased[i].Error()
		default:
			o.link = made[i]
			links = append(links, made[i])
			newIDs[i] = res.Record.ID
			fr.countCreate(c.side)
		}
	}
	return newIDs, links, accepted, undone
}

// addIntents commits the intents of the creates of datas on toSide (from: the records they
// are made from; encoded: the canonical form of each of datas, nil: made here), before the
// create, and returns them with their ids (idempotencyKey derives a create's key from its
// intent).
func (fr *flowRun) addIntents(ctx context.Context, toSide Side, from []connector.Record, datas []map[string]any, encoded [][]byte) ([]state.Intent, error) {
	// The canonical form is JSON, written without encoding/json's reflection.
	if encoded == nil {
		encoded = make([][]byte, len(datas))
		fr.split(len(datas), func(lo, hi int, _ *digesters) {
			for i := lo; i < hi; i++ {
				encoded[i] = mapping.Canonical(datas[i])
			}
		})
	}
	created := fr.r.Opts.Now().UTC() // one time for the batch: the store formats it once
	ins := make([]state.Intent, len(datas))
	for i := range datas {
		ins[i] = state.Intent{Flow: fr.f.ID(), Side: string(toSide), FromID: from[i].ID, Data: encoded[i], Created: created}
	}
	err := fr.commitAhead(ctx, func(tx state.Tx) error {
		ids, err := tx.AddIntents(ins)
		if err != nil {
			return err
		}
		for i, id := range ids {
			ins[i].ID = id
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ins, nil
}

// linkCreated makes the links of the records created from those of c.side (c.results, aligned
// with from; digests: those of from as read, "" where unknown), with their bases, on two
// goroutines for a pure flow; made is nil where a create failed or its base could not be
// computed (unbased says why). unsynced holds, per record, the properties that did not reach
// its origin: they are left out of the base, and the digests with them, so that the next
// merge of the pair writes them.
//
// When the links are staged for a commit on another goroutine (stage, with an overlapping link
// state), a pure flow's links whose bases cannot fail (build gave every value in target form)
// get their bases and digests on a goroutine of their own (deferredBase), not on the flow
// run's goroutine, which then goes on to the next batch's creates.
func (fr *flowRun) linkCreated(c *createdBatch, stage bool, from []connector.Record, datas []map[string]any, sVals []propValues, digests []string, unsynced map[int][]string) (made []*state.Link, unbased []error) {
	side, results := c.side, c.results
	made = make([]*state.Link, len(results))
	unbased = make([]error, len(results))
	if stage && fr.overlap && fr.pure {
		c.deferred = make([]deferredBase, 0, len(results))
		for i, res := range results {
			if res.Err != nil || len(unsynced[i]) > 0 || !fr.plan.complete(sVals[i]) {
				continue
			}
			l := fr.createdLink(side)
			src, tgt, hashes := createdPair(side, from[i], res.Record, digests[i])
			l.SourceID, l.TargetID = src.ID, tgt.ID
			db := deferredBase{link: l, src: src, tgt: tgt, sVals: sVals[i], hashes: hashes}
			db.asBuilt = side == Source && i < len(datas) && sameMap(tgt.Data, datas[i])
			c.deferred = append(c.deferred, db)
			made[i] = l
		}
	}
	fr.split(len(results), func(lo, hi int, d *digesters) {
		for i := lo; i < hi; i++ {
			if results[i].Err != nil || made[i] != nil {
				continue
			}
			src, tgt, hashes := createdPair(side, from[i], results[i].Record, digests[i])
			l := fr.createdLink(side)
			if unbased[i] = fr.rebaseWith(l, src, tgt, nil, sVals[i], hashes, d); unbased[i] == nil {
				made[i] = l
				if keys := unsynced[i]; len(keys) > 0 {
					for _, k := range keys {
						delete(l.Base, k)
					}
					l.SourceHash, l.TargetHash = "", ""
				}
			}
		}
	})
	return made, unbased
}

// createdPair orients a record of side and the record created from it as a link's source and
// target, with the digest of the one read (digest, "" when unknown) in its place in hashes.
func createdPair(side Side, from, created connector.Record, digest string) (src, tgt connector.Record, hashes [2]string) {
	if side == Target {
		return created, from, [2]string{"", digest}
	}
	return from, created, [2]string{digest, ""}
}

// createdLink is the link of a record created from one of side, made and merged by this run.
func (fr *flowRun) createdLink(side Side) *state.Link {
	return &state.Link{Flow: fr.f.ID(), LinkedIn: fr.runID, MergedIn: fr.runID, Made: string(other(side))}
}

// createdBatch is what the transaction after a batch of creates writes: the intents it
// settles and, per record of side created from, its link or why it failed. Only this is kept
// when the links are staged, not the records.
type createdBatch struct {
	fr       *flowRun
	side     Side
	results  []connector.Result
	outcomes []createdOutcome
	settled  []int64
	deferred []deferredBase // links whose bases are computed on a goroutine of their own
	based    chan struct{}  // closed when they are (nil: none are deferred)
	basedErr error
	linkedAt time.Time // the links' time, taken on the flow run's goroutine (Options.Now)
}

// deferredBase is a created record's link whose base and digests are computed off the flow
// run's goroutine (createdBatch.startBases), from the records and the values build gave
// (sVals, complete: the base cannot fail).
type deferredBase struct {
	link     *state.Link
	src, tgt connector.Record
	sVals    propValues
	hashes   [2]string
	// asBuilt says that tgt's data is the record build made, which the target's connection
	// gave back as the record it stored (connector.Conn.Create): its values are build's.
	asBuilt bool
}

// sameMap reports whether a and b are the same map (not merely equal ones).
func sameMap(a, b map[string]any) bool {
	return a != nil && reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// startBases computes the bases and digests of the batch's deferred links on a goroutine of
// its own, with its own digesters, while the flow run's goroutine creates the next batch and
// another commits the links before: the three share the two cores better than when the
// commit computed them (its transaction is what the next batch's intents wait for). Whatever
// reads the links first waits for them (awaitBases): the commit, or a lookup of the staged
// links (stagedLinks.overlay). Nothing else touches the deferred links' bases or digests
// meanwhile, and the records they are computed from are not written after their create. A
// pass ends after them (flowRun.basing), whether its batches were committed or not.
func (c *createdBatch) startBases() {
	if len(c.deferred) == 0 {
		return
	}
	c.based = make(chan struct{})
	c.linkedAt = c.fr.r.Opts.Now().UTC()
	c.fr.basing.Add(1)
	go func() {
		defer c.fr.basing.Done()
		defer close(c.based)
		var d digesters
		c.basedErr = c.finish(&d)
	}()
}

// awaitBases waits for the bases startBases computes, and returns its error.
func (c *createdBatch) awaitBases() error {
	if c.based == nil {
		return nil
	}
	<-c.based
	return c.basedErr
}

// finish computes the bases and digests of the batch's deferred links, with d, the digesters
// of the goroutine it runs on.
func (c *createdBatch) finish(d *digesters) error {
	fr := c.fr
	for _, db := range c.deferred {
		// A list, not a map: the flow is pure, so its properties have no elements.
		sides, ts, err := fr.plan.baseForms(db.src, db.tgt, db.sVals, db.asBuilt)
		if err != nil {
			return fmt.Errorf("link of %s: %w", db.src.ID, err) // cannot happen: sVals is complete
		}
		db.link.SetBaseForms(fr.plan.keys, sides, ts)
		fr.stamp(db.link, db.src, db.tgt, db.hashes, d, c.linkedAt)
	}
	return nil
}

type createdOutcome struct {
	id     string
	link   *state.Link
	reason string
}

// write writes the batch's outcome in tx.
func (c *createdBatch) write(tx state.Tx, flow string) error {
	if err := c.awaitBases(); err != nil {
		return err
	}
	side := string(c.side)
	if err := tx.DeleteIntents(c.settled); err != nil {
		return err
	}
	links := make([]*state.Link, 0, len(c.outcomes))
	for i, o := range c.outcomes {
		if c.results[i].Err != errUndone && o.link != nil {
			links = append(links, o.link)
		}
	}
	if err := tx.PutLinks(links); err != nil {
		return err
	}
	for i, o := range c.outcomes {
		if c.results[i].Err == errUndone {
			continue // its intent stays
		}
		if o.link == nil {
			if err := tx.PutDeadLetter(flow, side, o.id, o.reason); err != nil {
				return err
			}
			continue
		}
		if o.reason != "" {
			// Linked, but what flows back did not reach it: retried by the next run.
			if err := tx.PutDeadLetter(flow, side, o.id, o.reason); err != nil {
				return err
			}
			continue
		}
		if err := tx.ClearDeadLetter(flow, side, o.id); err != nil {
			return err
		}
		if err := tx.ClearWaiting(flow, side, o.id); err != nil {
			return err
		}
	}
	return nil
}

// backProps lists the properties that may flow back to the records created from (of side):
// those that flow to side. A create sends what flows from side; the others, and those whose
// value was empty there, the other system may assign (an id, a default, a stamp).
func (pl *planner) backProps(side Side) []*mapping.Property {
	var out []*mapping.Property
	for _, prop := range pl.f.Properties {
		if len(prop.Elements) > 0 {
			continue // lists are left to the next merge
		}
		if (side == Target && prop.ToTargetSide()) || (side == Source && prop.ToSourceSide()) {
			out = append(out, prop)
		}
	}
	return out
}

// backPatch is what flows back to from, a record of side, from created, the record just
// created from it on the other side (props: backProps): the patch, and the keys of the
// properties in it.
func (pl *planner) backPatch(side Side, props []*mapping.Property, from, created connector.Record) (map[string]any, []string) {
	var desired map[string]any
	var changed []string
	for _, prop := range props {
		var v, now any
		var err error
		if side == Target {
			// Created in the source: what flows to the target comes from the new record.
			if prop.ToSourceSide() && !mapping.Empty(prop.View(from.Data)) {
				continue
			}
			v, err = prop.TargetValue(created.Data, pl.refs)
			now = prop.View(from.Data)
		} else {
			if prop.ToTargetSide() && !mapping.Empty(prop.SourceView(from.Data)) {
				continue
			}
			v, err = prop.SourceValue(created.Data, pl.refs)
			now = prop.SourceView(from.Data)
		}
		if err != nil || sameValue(v, now) || (mapping.Empty(v) && mapping.Empty(now)) {
			// An error is the next merge's to report; an empty value ("" for null) was not
			// assigned.
			continue
		}
		if desired == nil {
			desired = mapping.Clone(from.Data).(map[string]any)
		}
		if side == Target {
			prop.ApplyTarget(desired, v)
		} else {
			prop.ApplySource(desired, v)
		}
		changed = append(changed, prop.Key())
	}
	if desired == nil {
		return nil, nil
	}
	return patch(from.Data, desired), changed
}

// flowBack writes, to the records of side that records were just created from (from, aligned
// with results), the values that flow back to them from what the other system assigned when
// it created their partners: the id a source assigns a record created from a target record
// reaches the target's a_id in the same run, and the base records it. A property the create
// sent (it flows from side and side's value was not empty) is not written back, so that a
// system that reformats what it stores does not send its format back.
//
// from's records are replaced by what their system holds after the write. For a record whose
// write failed it returns the keys of the properties that did not reach it (left out of the
// link's base, so that the next merge writes them) and why, by index. The digests of the
// records it replaces (aligned with from) are forgotten: they are of the records as read.
func (fr *flowRun) flowBack(ctx context.Context, side Side, from []connector.Record, results []connector.Result, sVals []propValues, digests []string) (map[int][]string, map[int]string, error) {
	props := fr.plan.backProps(side)
	if len(props) == 0 {
		return nil, nil, nil
	}
	var idx []int
	var recs []connector.Record
	var keys [][]string
	for i, res := range results {
		if res.Err != nil || i >= len(from) {
			continue
		}
		if p, changed := fr.plan.backPatch(side, props, from[i], res.Record); len(p) > 0 {
			idx = append(idx, i)
			recs = append(recs, connector.Record{ID: from[i].ID, Data: p})
			keys = append(keys, changed)
		}
	}
	if len(recs) == 0 {
		return nil, nil, nil
	}
	conn, entity := fr.on(side)
	written, err := conn.Update(ctx, entity, recs)
	if err == nil {
		err = readBack(ctx, conn, entity, written)
	}
	if err != nil {
		return nil, nil, err
	}
	unsynced, why := map[int][]string{}, map[int]string{}
	for j, res := range written {
		i := idx[j]
		if res.Err != nil {
			unsynced[i] = keys[j]
			why[i] = fmt.Sprintf("writing %s %s: %v", entity, recs[j].ID, res.Err)
			fr.stats.Failed++
			fr.failedNow[Key{side, from[i].ID}] = true
			continue
		}
		from[i] = res.Record
		digests[i] = ""
		if side == Source {
			if i < len(sVals) {
				sVals[i] = nil // the source changed: its values in target form are computed again
			}
			fr.stats.UpdatedSource++
		} else {
			fr.stats.UpdatedTarget++
		}
	}
	return unsynced, why, nil
}

// prebuildReferences builds a record for its create as prebuild does, after creating the
// records it refers to that their flows create on reference (refs.withReferences). A pure
// flow refers to none: its records may be built on two goroutines.
func (fr *flowRun) prebuildReferences(ctx context.Context, side Side, rec connector.Record) *prebuilt {
	var b *prebuilt
	err := fr.refs.withReferences(ctx, func() error {
		b = fr.prebuild(side, rec)
		return b.err
	})
	b.err = err
	return b
}

// createReferenced creates, for a record that refers to it, the partner of record id (of the
// source side when fromSource) in a "create: referenced" flow, and returns the new id. It is
// apply's part of a reference to create (refs.withReferences): the records the new one refers
// to in turn are created first.
func (fr *flowRun) createReferenced(ctx context.Context, id string, fromSource bool) (string, bool, error) {
	side := Source
	if !fromSource {
		side = Target
	}
	conn, entity := fr.on(side)
	got, err := conn.Get(ctx, entity, []string{id})
	if err != nil {
		return "", false, err
	}
	rec, ok := got[id]
	if !ok {
		return "", false, nil
	}
	if fromSource {
		if pass, err := fr.f.Filter(rec.Data); err != nil || !pass {
			return "", false, nil
		}
	}
	var data map[string]any
	var s propValues
	err = fr.refs.withReferences(ctx, func() (err error) {
		data, s, err = fr.build(side, rec)
		return err
	})
	if err != nil {
		return "", false, err
	}
	if fr.r.Opts.DryRun {
		return fr.dryCreate(side, id, data, "referenced"), true, nil
	}
	ids, err := fr.createNow(ctx, side, []connector.Record{rec}, []map[string]any{data}, []propValues{s}, nil, false)
	if err != nil || ids[0] == "" {
		return "", false, err
	}
	return ids[0], true, nil
}
