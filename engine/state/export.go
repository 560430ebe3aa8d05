package state

import (
	"encoding/json"
	"time"
)

// What another Store (engine/state/pgstate) needs of this package's internals, so that every
// Store keeps links, bases and JSON the same way and the engine cannot tell them apart.

// EncodeBase returns the stored text of a link's base: the bytes SQLite keeps, which another
// Store keeps too, so that a state moved between databases reads the same.
func EncodeBase(b map[string]Base) (string, error) {
	var c baseCodec
	return c.encode(b)
}

// BaseEncoder encodes bases as EncodeBase does, reusing its buffers between calls: one per
// Tx, not for concurrent use.
type BaseEncoder struct{ c baseCodec }

// Encode returns the stored text of a link's base (see EncodeBase).
func (e *BaseEncoder) Encode(b map[string]Base) (string, error) { return e.c.encode(b) }

// StoredLink marks l as read from a Store, with its base in stored form (rawBase, "" for an
// empty one): Bases decodes it on first use, and saving the link with its target id unchanged
// is an update in place (see StoredTarget).
func StoredLink(l *Link, rawBase []byte) *Link {
	l.raw, l.storedTarget = rawBase, l.TargetID
	if len(rawBase) == 0 {
		l.raw = []byte("{}")
	}
	return l
}

// StoredTarget returns the target id l had when it was read from a Store ("" for a link made
// in memory): while it is l.TargetID, a Store may rewrite the link's row in place.
func StoredTarget(l *Link) string { return l.storedTarget }

// BaseOf returns the base of a link made in memory as a map: Base, or the list SetBaseList or
// SetBaseForms gave.
func BaseOf(l *Link) map[string]Base {
	if l.list != nil {
		return l.list.bases()
	}
	return l.Base
}

// JSONText checks a JSON value for storing: nil for none, else its text; invalid JSON is an
// error, as SQLite refuses it.
func JSONText(v json.RawMessage) (*string, error) {
	t, err := jsonText(v)
	if err != nil || t == nil {
		return nil, err
	}
	s := t.(string)
	return &s, nil
}

// CheckSide refuses a side that is neither Source nor Target, with the message SQLite gives.
func CheckSide(side string) error { return checkSide(side) }

// SetWorker names the process in the runs it starts from now on (Run.Worker): a service sets
// its worker name, `dataflow run` leaves it "".
func (s *SQLite) SetWorker(name string) { s.worker.Store(&name) }

// SetClock replaces the store's clock, for tests that compare the times it records.
func (s *SQLite) SetClock(now func() time.Time) { s.now = now }

// IntentEncoder encodes the intents of a row as SQLite keeps them (see intentbatch.go), so
// that every Store keeps a batch of intents as one row, the same way. It reuses its buffer
// between calls: one per Tx, not for concurrent use.
type IntentEncoder struct{ e intentEncoder }

// CheckIntent refuses an intent AddIntent refuses, with its message.
func CheckIntent(in *Intent) error { return checkIntent(in) }

// Encode returns the row of checked intents of one flow whose ids are ids (ascending, ids[i]
// for ins[i]); a zero Created is now(). The bytes are valid until the next call.
func (e *IntentEncoder) Encode(ins []Intent, ids []int64, now func() time.Time) []byte {
	e.e.reset()
	e.e.grow(ins)
	for i := range ins {
		e.e.add(&ins[i], ids[i]-ids[0], now)
	}
	return e.e.buf
}

// Without returns the row (of flow, first id first) less the intents of the sorted ids gone,
// empty when none is left; valid until the next call.
func (e *IntentEncoder) Without(flow string, first int64, items []byte, gone []int64) ([]byte, error) {
	b, _, err := e.e.without(flow, first, items, gone)
	return b, err
}

// DecodeIntents returns the intents of a row of flow whose first id is first, in order.
func DecodeIntents(flow string, first int64, items []byte) ([]Intent, error) {
	return decodeIntents(flow, first, items, nil)
}
