package connector

import "context"

type interruptKey struct{}

// Finishing returns a context for work that is finished although ctx ends (a batch in hand,
// whose writes are committed when SIGINT or SIGTERM stops the run), like
// context.WithoutCancel, but which still carries ctx's end as an interrupt: a connection
// waiting on it (a back-off, a Retry-After, a slow answer) stops waiting at once when ctx
// ends, through Interruptible. What the waits had not done yet is not done, and the run
// stops; the next run does it (creates are made safe by their intents).
func Finishing(ctx context.Context) context.Context {
	return context.WithValue(context.WithoutCancel(ctx), interruptKey{}, ctx)
}

// Interruptible returns a context that ends when ctx does or when the context ctx was made
// Finishing from ends, whichever is first, with that context's cause. Call stop when done.
func Interruptible(ctx context.Context) (c context.Context, stop func()) {
	parent, ok := ctx.Value(interruptKey{}).(context.Context)
	if !ok {
		return ctx, func() {}
	}
	c, cancel := context.WithCancelCause(ctx)
	unhook := context.AfterFunc(parent, func() { cancel(context.Cause(parent)) })
	return c, func() {
		unhook()
		cancel(nil)
	}
}
