//go:build race

package sync

// raceEnabled: the race detector makes sync.Pool drop what it is given, so counts of
// allocations say nothing.
const raceEnabled = true
