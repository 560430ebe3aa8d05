package sqlconn

import (
	"context"
	"errors"
	"fmt"
	"testing"
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
