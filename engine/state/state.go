// Package state keeps what a sync remembers between runs: the links between records of two
// systems with the last synced value of every property (the base of the three-way merge),
// write intents recorded before creates (crash recovery), watermarks of incremental reads,
// records that wait for a reference, dead letters, and a log of runs. Store is the contract
// the sync engine uses; SQLite implements it (one file, WAL, durable commits), and another
// database can implement it when several machines share the work.
package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Sides of a flow.
const (
	Source = "source"
	Target = "target"
)

// Link says that a source record and a target record are the same thing.
type Link struct {
	Flow     string
	SourceID string
	TargetID string
	// Base holds, per property key, the values last synced: both in target form, as computed
	// from the source record (S) and as the target held it (T). Comparing the current values
	// with these tells which side changed; keeping both makes writes echo-free when a system
	// reformats a value.
	Base map[string]Base
	// SourceHash and TargetHash are digests of the records as last seen, to skip unchanged
	// records without merging.
	SourceHash string
	TargetHash string
	Updated    time.Time
	// LinkedIn is the run that made the link, MergedIn the run whose merge (or create) last
	// saved it (0: not merged since it was adopted after a crash), and Made the side of the
	// record that LinkedIn's run created ("" when the records were linked by merge criteria or
	// adopted). They tell a run what it has already done to a link without holding a set of
	// the records it touched, which would grow with the records.
	LinkedIn int64
	MergedIn int64
	Made     string
	// raw is the base as stored, for a link read from a Store: Bases decodes it on first use,
	// a binary one with keys, the property keys by number as the Store had them.
	raw  []byte
	keys keyNames
	// list is the base as SetBaseList or SetBaseForms gave it, for a Store to encode without
	// a map.
	list *baseList
	// storedTarget is the target id of the link as read from a Store ("" for a link made in
	// memory). While it is TargetID, saving the link rewrites its row in place and leaves the
	// index of target ids alone.
	storedTarget string
}

// Bases returns the link's base. A link read from a Store carries its base as stored, and
// this decodes it on first use: a run compares the records' digests first and needs the base
// of the records that changed only. It is not safe for concurrent use on one Link.
func (l *Link) Bases() (map[string]Base, error) {
	if l.list != nil {
		l.Base, l.list = l.list.bases(), nil
	}
	if l.raw != nil {
		var (
			base map[string]Base
			err  error
		)
		if l.raw[0] == binaryBase {
			base, err = decodeBinary(l.raw, l.keys)
		} else {
			var codec baseCodec
			base, err = codec.decode(l.raw)
		}
		if err != nil {
			return nil, fmt.Errorf("link of source %q: %w", l.SourceID, err)
		}
		l.Base, l.raw, l.keys = base, nil, nil
	}
	if l.Base == nil {
		l.Base = map[string]Base{}
	}
	return l.Base, nil
}

// SetBaseList sets the link's base: values[i] is the base of the property keys[i]. A Store
// encodes it as it is, without the map Base would be (a first sync makes one per record);
// Bases gives it as a map. keys may be shared by many links, and neither slice may change.
func (l *Link) SetBaseList(keys []string, values []Base) {
	l.Base, l.raw, l.keys = nil, nil, nil
	l.list = &baseList{keys: keys, values: values}
}

// SetBaseForms is SetBaseList of a base given by side: the base of keys[i] has S s[i] and T
// t[i], or S's own value (the same slice) where t is nil or t[i] is nil. A first sync's links
// have most of their values the same on both sides, and this needs no Base per property.
// keys may be shared by many links, and none of the slices may change.
func (l *Link) SetBaseForms(keys []string, s, t [][]byte) {
	l.Base, l.raw, l.keys = nil, nil, nil
	l.list = &baseList{keys: keys, s: s, t: t}
}

// baseList is a base set by SetBaseList (values) or SetBaseForms (s and t).
type baseList struct {
	keys   []string
	values []Base
	s, t   [][]byte
}

// at is the base of keys[i].
func (b *baseList) at(i int) Base {
	if b.values != nil {
		return b.values[i]
	}
	v := Base{S: b.s[i], T: b.s[i]}
	if b.t != nil && b.t[i] != nil {
		v.T = b.t[i]
	}
	return v
}

// size is the number of its values, len(keys) when it is well made.
func (b *baseList) size() int {
	if b.values != nil {
		return len(b.values)
	}
	if b.t != nil && len(b.t) != len(b.s) {
		return -1
	}
	return len(b.s)
}

func (b *baseList) bases() map[string]Base {
	m := make(map[string]Base, len(b.keys))
	for i, k := range b.keys {
		m[k] = b.at(i)
	}
	return m
}

// Base is the last synced value of one property.
type Base struct {
	S json.RawMessage `json:"s,omitempty"`
	T json.RawMessage `json:"t,omitempty"`
	// E says, for a list, which element is which, so that lists are merged element by element.
	E *Elements `json:"e,omitempty"`
}

// Elements identifies the elements of a list's base: Source[i] is the id of the source element
// whose value is element i of S, Target[j] the id of the target element whose value is element
// j of T ("" where the system gives its elements no id), and Pairs[i] the index in T of the
// element synced with element i of S (-1 for none).
type Elements struct {
	Source []string `json:"s,omitempty"`
	Target []string `json:"t,omitempty"`
	Pairs  []int    `json:"p,omitempty"`
}

// Intent is recorded before a record is created, so that a run killed between the create and
// the link finds the created record and links it instead of creating it again.
type Intent struct {
	ID      int64
	Flow    string
	Side    string // where the record is created: Source or Target
	FromID  string // the id of the record it is created from, on the other side
	Data    json.RawMessage
	Created time.Time
}

// DeadLetter is a record that failed, with the reason; it is retried on every run until it
// succeeds or is dropped.
type DeadLetter struct {
	Flow     string
	Side     string // the side the record was read from
	RecordID string
	Reason   string
	Attempts int
	First    time.Time
	Last     time.Time
}

// Waiting is a record that waits for something (a referenced record not linked yet); it is
// looked at again on every run, even when incremental reads would not return it.
type Waiting struct {
	Flow     string
	Side     string
	RecordID string
	Reason   string
	Since    time.Time
}

// Counts is what a flow's delete check remembers between runs: the number of records each side
// held at the end of the flow's last run that left no link to a deleted record behind (-1 for a
// side that was not counted), and the number of runs since the check last read the partners of
// every link. Comparing the counts with those of the next run tells whether a linked record
// can have been deleted meanwhile. SourceDeletions and TargetDeletions are, for a side whose
// system counts deletions as they happen (connector.DeleteCounter), its number when that run
// began (-1: not counted); an equal number in the next run proves that no record was deleted.
type Counts struct {
	Source, Target                   int64
	Skipped                          int
	SourceDeletions, TargetDeletions int64
}

// Side returns the count and the number of deletions of side (Source or Target).
func (c Counts) Side(side string) (count, deletions int64) {
	if side == Target {
		return c.Target, c.TargetDeletions
	}
	return c.Source, c.SourceDeletions
}

// SetSide sets the count and the number of deletions of side (Source or Target).
func (c *Counts) SetSide(side string, count, deletions int64) {
	if side == Target {
		c.Target, c.TargetDeletions = count, deletions
	} else {
		c.Source, c.SourceDeletions = count, deletions
	}
}

// Run is one entry of the run log.
type Run struct {
	ID       int64
	Started  time.Time
	Finished time.Time // zero while running or when the run was killed
	Status   string    // running, ok, failed (records failed), error (the run stopped)
	Summary  json.RawMessage
	// Worker names the process that made the run ("" for `dataflow run`): several `dataflow
	// serve` processes share a PostgreSQL state.
	Worker string
}

// ErrLocked is returned by Open for writing when another process holds the state.
var ErrLocked = errors.New("the link state is in use by another run")

// Store is the link state. Reads may run beside a writer; only one process writes.
type Store interface {
	// LinksBySource returns the links of flow whose source ids are among ids, by source id.
	LinksBySource(ctx context.Context, flow string, ids []string) (map[string]*Link, error)
	// LinksByTarget returns the links of flow whose target ids are among ids, by target id.
	LinksByTarget(ctx context.Context, flow string, ids []string) (map[string]*Link, error)
	// ScanLinks calls fn with batches of the flow's links, in source id order.
	ScanLinks(ctx context.Context, flow string, fn func([]*Link) error) error
	// CountLinks counts the flow's links ("" for all flows).
	CountLinks(ctx context.Context, flow string) (int, error)
	// HasLinks reports whether the flow has a link, in constant time.
	HasLinks(ctx context.Context, flow string) (bool, error)
	Watermark(ctx context.Context, flow, side string) (string, error)
	// Reconciled returns when the flow last read both its sides whole (a reconcile); ok is
	// false when it never did.
	Reconciled(ctx context.Context, flow string) (at time.Time, ok bool, err error)
	// Counts returns the flow's counts; ok is false when none are recorded.
	Counts(ctx context.Context, flow string) (c Counts, ok bool, err error)
	Intents(ctx context.Context, flow string) ([]Intent, error)
	DeadLetters(ctx context.Context, flow string) ([]DeadLetter, error) // flow "" for all
	Waiting(ctx context.Context, flow string) ([]Waiting, error)        // flow "" for all
	Runs(ctx context.Context, limit int) ([]Run, error)                 // newest first
	// Pending returns the flow's pending changes ("" for all flows), oldest first.
	Pending(ctx context.Context, flow string) ([]Pending, error)
	// Fingerprint returns the fingerprint of the property table the flow's links were last
	// all merged under ("" when none is recorded).
	Fingerprint(ctx context.Context, flow string) (string, error)
	// Systems returns the systems the links are of, by system id.
	Systems(ctx context.Context) (map[string]SystemIdentity, error)
	// Begin starts a write transaction. Only a Store opened for writing can.
	Begin(ctx context.Context) (Tx, error)
	Close() error
}

// Overlapping is the optional ability of a Store to be read, and to open a Tx, on one
// goroutine while a Tx of another goroutine is open (the second Begin waits its turn). A run
// then commits a batch's links while the next batch's records are created.
type Overlapping interface {
	Overlaps() bool
}

// Deferring is the optional ability of a Store to open a Tx whose commit does not wait for the
// disk. Such a commit is safe from a killed process at once; a power loss or an OS crash may
// undo it until the next ordinary Tx of the store commits, whose durable commit makes every
// commit before it durable too (the store's log is written in order). It never undoes an
// ordinary commit, nor a deferred commit without those after it. A run defers only what the
// next run recovers when it is undone: the links of records created, whose intents an
// ordinary Tx made durable before the creates.
type Deferring interface {
	BeginDeferred(ctx context.Context) (Tx, error)
}

// Tx is a write transaction: everything in it is committed durably together, or not at all.
type Tx interface {
	PutLink(l *Link) error
	// PutLinks puts links in order, as PutLink puts each, in one call (PostgreSQL's in one
	// statement): at the first link PutLink would refuse, it returns PutLink's error for that
	// link, with the links before it put and none after it (a target already linked gives
	// the error wrapping ErrTargetLinked, and the Tx stays usable).
	PutLinks(links []*Link) error
	DeleteLink(flow, sourceID string) error
	AddIntent(in *Intent) (int64, error)
	// AddIntents records intents in order and returns their ids in order, as AddIntent
	// records each, in fewer statements. An intent AddIntent would refuse gives AddIntent's
	// error for it, and none of the intents is recorded.
	AddIntents(ins []Intent) ([]int64, error)
	DeleteIntent(id int64) error
	// DeleteIntents deletes the intents of a batch together.
	DeleteIntents(ids []int64) error
	SetWatermark(flow, side, value string) error
	// ClearWatermarks forgets the watermarks of a flow's sides: its next run reads them whole.
	ClearWatermarks(flow string) error
	// SetReconciled records when the flow last read both its sides whole.
	SetReconciled(flow string, at time.Time) error
	// SetCounts records the flow's counts; ClearCounts forgets them (a flow run that may not
	// finish must not leave the counts of the run before it).
	SetCounts(flow string, c Counts) error
	ClearCounts(flow string) error
	// PutDeadLetter records a failure (a new one, or one more attempt of a known one).
	PutDeadLetter(flow, side, recordID, reason string) error
	// ClearDeadLetter forgets a failure, after the record succeeded or was dropped.
	ClearDeadLetter(flow, side, recordID string) error
	PutWaiting(flow, side, recordID, reason string) error
	ClearWaiting(flow, side, recordID string) error
	// PutPending records a change that waits for a person (see Pending); ApprovePending
	// lets the next run make it; DeletePending forgets it (rejected, or made).
	PutPending(p *Pending) (int64, error)
	ApprovePending(id int64) error
	DeletePending(id int64) error
	SetFingerprint(flow, value string) error
	PutSystem(id string, s SystemIdentity) error
	StartRun() (int64, error)
	FinishRun(id int64, status string, summary json.RawMessage) error
	Commit() error
	Rollback() error
}
