package state

// The stored form of a batch of intents: the intents AddIntents records in one call are one
// row (a run records an intent per record it creates, and a row per intent cost a cgo crossing,
// six boxed values and a copy of the data per record). A row holds its intents one after
// another, each as
//
//	uvarint  the intent's id less the row's first id
//	byte     flags: intentTarget (else its side is the source), intentData, intentCreated
//	uvarint  length, then the bytes of FromID
//	         with intentData: uvarint length, then the JSON of Data
//	         with intentCreated: uvarint length, then the time as formatTime writes it;
//	         without, the time of the intent before it (the first intent always has it)
//
// so that the intents of a batch, made at one time, store their time once.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

const (
	intentTarget  = 1 << 0
	intentData    = 1 << 1
	intentCreated = 1 << 2
)

// intentEncoder encodes the intents of a row, reusing its buffer between rows.
type intentEncoder struct {
	buf []byte
	// the time of the intent before, as given and as stored
	last     time.Time
	lastText string
}

// reset starts a row.
func (e *intentEncoder) reset() { e.buf, e.lastText = e.buf[:0], "" }

// grow makes room for the row of ins at once, rather than by doubling as it is written.
func (e *intentEncoder) grow(ins []Intent) {
	n := len(timeFormat) + 1
	for i := range ins {
		n += 3*binary.MaxVarintLen32 + 1 + len(ins[i].FromID) + len(ins[i].Data)
	}
	e.buf = slices.Grow(e.buf, n)
}

// checkIntent refuses what AddIntent refuses, with its messages.
func checkIntent(in *Intent) error {
	if in.Flow == "" {
		return errors.New("add intent: an intent needs a flow")
	}
	if err := checkSide(in.Side); err != nil {
		return fmt.Errorf("add intent of flow %q: %w", in.Flow, err)
	}
	if len(in.Data) > 0 && !compactJSON(in.Data) && !json.Valid(in.Data) {
		return fmt.Errorf("add intent of flow %q: data: not valid JSON", in.Flow)
	}
	return nil
}

// add appends a checked intent, of id first+offset; a zero Created is now.
func (e *intentEncoder) add(in *Intent, offset int64, now func() time.Time) {
	created := in.Created
	if created.IsZero() {
		created = now()
	}
	text := e.lastText
	if text == "" || !created.Equal(e.last) { // stored in UTC: the same instant is the same text
		text = formatTime(created)
	}
	var data []byte // nil for none, as an empty Data was stored (NULL)
	if len(in.Data) > 0 {
		data = in.Data
	}
	e.appendEntry(offset, in.Side, in.FromID, data, text)
	e.last = created
}

// appendEntry appends an intent whose time is text as stored.
func (e *intentEncoder) appendEntry(offset int64, side, fromID string, data []byte, created string) {
	var flags byte
	if side == Target {
		flags |= intentTarget
	}
	if data != nil {
		flags |= intentData
	}
	if len(e.buf) == 0 || created != e.lastText {
		flags |= intentCreated
	}
	e.buf = binary.AppendUvarint(e.buf, uint64(offset))
	e.buf = append(e.buf, flags)
	e.buf = binary.AppendUvarint(e.buf, uint64(len(fromID)))
	e.buf = append(e.buf, fromID...)
	if data != nil {
		e.buf = binary.AppendUvarint(e.buf, uint64(len(data)))
		e.buf = append(e.buf, data...)
	}
	if flags&intentCreated != 0 {
		e.buf = binary.AppendUvarint(e.buf, uint64(len(created)))
		e.buf = append(e.buf, created...)
	}
	e.lastText = created
}

var errIntentRow = errors.New("the stored intents are corrupt")

// decodeIntents returns the intents of a row of flow whose first id is first, in the order
// they were added. created, when not nil, receives the time of each intent as stored.
func decodeIntents(flow string, first int64, items []byte, created *[]string) ([]Intent, error) {
	var (
		out      []Intent
		lastText string
		last     time.Time
	)
	field := func() ([]byte, bool) {
		n, k := binary.Uvarint(items)
		if k <= 0 || n > uint64(len(items)-k) {
			return nil, false
		}
		b := items[k : k+int(n)]
		items = items[k+int(n):]
		return b, true
	}
	for len(items) > 0 {
		off, k := binary.Uvarint(items)
		if k <= 0 || len(items) <= k || off > 1<<62 {
			return nil, errIntentRow
		}
		flags := items[k]
		items = items[k+1:]
		from, ok := field()
		if !ok {
			return nil, errIntentRow
		}
		in := Intent{ID: first + int64(off), Flow: flow, Side: Source, FromID: string(from)}
		if flags&intentTarget != 0 {
			in.Side = Target
		}
		if flags&intentData != 0 {
			data, ok := field()
			if !ok {
				return nil, errIntentRow
			}
			in.Data = append([]byte{}, data...)
		}
		if flags&intentCreated != 0 {
			text, ok := field()
			if !ok {
				return nil, errIntentRow
			}
			lastText = string(text)
			var err error
			if last, err = parseTime(lastText); err != nil {
				return nil, fmt.Errorf("intent %d: %w", in.ID, err)
			}
		} else if len(out) == 0 {
			return nil, errIntentRow
		}
		in.Created = last
		if created != nil {
			*created = append(*created, lastText)
		}
		out = append(out, in)
	}
	return out, nil
}

// without returns the row of intents (of flow, whose first id is first) less those of the
// sorted ids gone, in e's buffer, with each one's time as it was stored, and the number of
// intents it keeps (0: none is left).
func (e *intentEncoder) without(flow string, first int64, items []byte, gone []int64) ([]byte, int, error) {
	var times []string
	ins, err := decodeIntents(flow, first, items, &times)
	if err != nil {
		return nil, 0, err
	}
	e.reset()
	kept := 0
	for i, in := range ins {
		if _, found := slices.BinarySearch(gone, in.ID); !found {
			e.appendEntry(in.ID-first, in.Side, in.FromID, in.Data, times[i])
			kept++
		}
	}
	return e.buf, kept, nil
}
