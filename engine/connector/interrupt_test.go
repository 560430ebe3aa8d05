package connector

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestFinishingCarriesTheInterrupt(t *testing.T) {
	cause := errors.New("SIGINT")
	parent, cancel := context.WithCancelCause(context.Background())
	finishing := Finishing(parent)
	waits, stop := Interruptible(finishing)
	defer stop()
	cancel(cause)
	if finishing.Err() != nil {
		t.Fatalf("the finishing context ended with its parent: %v", finishing.Err())
	}
	select {
	case <-waits.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("the interruptible context did not end with the parent")
	}
	if got := context.Cause(waits); !errors.Is(got, cause) {
		t.Errorf("cause %v, want %v", got, cause)
	}
}

func TestInterruptibleWithoutFinishingIsTheContext(t *testing.T) {
	ctx := context.Background()
	if got, stop := Interruptible(ctx); got != ctx {
		t.Errorf("Interruptible of a plain context made another one")
	} else {
		stop()
	}
}
