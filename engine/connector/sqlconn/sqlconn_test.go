package sqlconn

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// A driver's error that quotes the DSN loses the password, and keeps its chain.
func TestScrub(t *testing.T) {
	err := Scrub(fmt.Errorf("cannot parse `postgres://crm:Canary-1@db/crm`: %w", context.DeadlineExceeded), "Canary-1")
	if got := err.Error(); got != "cannot parse `postgres://crm:xxxxx@db/crm`: context deadline exceeded" {
		t.Fatalf("scrubbed: %s", got)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("the chain is lost")
	}
	plain := errors.New("no secret here")
	if Scrub(plain, "Canary-1") != plain || Scrub(plain, "") != plain || Scrub(nil, "x") != nil {
		t.Fatal("an error without the secret is changed")
	}
}

// The text ids the connector makes for a record created without one lead with the time they
// were made, as the sqlite connector's do: the records a run creates append to the table's id
// index and to the link state's index of target ids, instead of writing a random page of each.
func TestTextIDsLeadWithTheTime(t *testing.T) {
	before := time.Now().UnixMilli()
	id := newTextID()
	after := time.Now().UnixMilli()
	if len(id) != 24 {
		t.Fatalf("id %q is not 24 hex digits", id)
	}
	ms, err := strconv.ParseInt(id[:12], 16, 64)
	if err != nil || ms < before || ms > after {
		t.Fatalf("id %q leads with %d (%v), want the time it was made, %d to %d ms", id, ms, err, before, after)
	}
	if other := newTextID(); other == id {
		t.Fatalf("two ids made one after the other are both %q", id)
	}
}
