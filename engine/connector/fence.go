package connector

import "context"

type fenceKey struct{}

// WithFence returns ctx carrying check, the fence of a leased run's writes (engine/serve): it
// says whether the run may still write. A connection whose writes are transactions calls it
// through Fence just before it commits one.
func WithFence(ctx context.Context, check func() error) context.Context {
	return context.WithValue(ctx, fenceKey{}, check)
}

// Fence returns the error of ctx's fence: nil when ctx has none or the fence holds. A worker
// stopped in the middle of a write (SIGSTOP, a pause of the machine) past its lease would, when
// it wakes, commit values planned before it stopped, over those the worker that took the flow
// over wrote since. Checked before the commit, the write rolls back instead; what is left is
// the instant between the check and the commit.
func Fence(ctx context.Context) error {
	if check, ok := ctx.Value(fenceKey{}).(func() error); ok {
		return check()
	}
	return nil
}
