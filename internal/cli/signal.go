package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Interrupted is the cause of a context that a signal canceled: a run stopped by it finished
// the batch in hand and committed, but did not do all it was asked to, which its exit status
// tells a wrapper (128 + the signal's number, as shells report a process killed by it).
type Interrupted struct{ Signal syscall.Signal }

func (i Interrupted) Error() string { return fmt.Sprintf("interrupted by %v", i.Signal) }

// WithSignals returns a context that the first SIGINT or SIGTERM cancels with an Interrupted
// cause; stop releases the signals.
func WithSignals(parent context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			sig, _ := s.(syscall.Signal)
			cancel(Interrupted{Signal: sig})
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(context.Canceled)
	}
}

// exitInterrupted is the exit status of a command that ctx's cancellation stopped: 130 for
// SIGINT, 143 for SIGTERM, and 130 when it was canceled otherwise (an embedder's cancel).
func exitInterrupted(ctx context.Context) int {
	var i Interrupted
	if errors.As(context.Cause(ctx), &i) && i.Signal > 0 {
		return 128 + int(i.Signal)
	}
	return 128 + int(syscall.SIGINT)
}
