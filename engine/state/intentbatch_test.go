package state

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestIntentRowCorrupt: a row of intents that does not decode is an error of Intents naming
// its ids, and no cut of a row panics.
func TestIntentRowCorrupt(t *testing.T) {
	s, _ := newStore(t)
	write(t, s, func(tx Tx) error {
		_, err := tx.AddIntents([]Intent{
			{Flow: "f", Side: Target, FromID: "s1", Data: json.RawMessage(`{"a":1}`)},
			{Flow: "f", Side: Source, FromID: "t2", Created: time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)},
			{Flow: "f", Side: Target, FromID: "s3"},
		})
		return err
	})
	var items []byte
	if err := s.db.QueryRow("SELECT items FROM intent_batches").Scan(&items); err != nil {
		t.Fatal(err)
	}
	for n := range len(items) {
		decodeIntents("f", 1, items[:n], nil) // an error or fewer intents, never a panic
	}
	if _, err := s.db.Exec("UPDATE intent_batches SET items = x'00'"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Intents(context.Background(), "f")
	if want := "intents 1 to 3: the stored intents are corrupt"; err == nil || err.Error() != want {
		t.Errorf("Intents of a corrupt row: %v, want %s", err, want)
	}
}

// FuzzDecodeIntents: no row of bytes makes decodeIntents panic.
func FuzzDecodeIntents(f *testing.F) {
	var e intentEncoder
	e.reset()
	e.add(&Intent{Flow: "f", Side: Target, FromID: "s1", Data: json.RawMessage(`{"a":1}`)}, 0, time.Now)
	e.add(&Intent{Flow: "f", Side: Source, FromID: "t2"}, 5, time.Now)
	f.Add(append([]byte{}, e.buf...))
	f.Fuzz(func(t *testing.T, items []byte) {
		decodeIntents("f", 1, items, nil)
	})
}
