package connector

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// NewTextID returns an id for a record created without one in a text id column: 24 hex
// digits, the first 12 the time t in milliseconds and the last 12 random, as a MongoDB
// ObjectId or a ULID leads with its time. The ids a run makes sort by when they were made, so
// that their inserts into the table's id index (and the link state's index of target ids)
// append to its last pages instead of writing a random page each: a first sync of 200,000
// records into random ids rewrote most of both indexes in every batch's commit.
func NewTextID(t time.Time) string {
	var b [12]byte
	ms := uint64(t.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	if _, err := rand.Read(b[6:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b[:])
}
