package gctune

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestForRun(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))

	// Without GOGC in the environment, a run collects at gcPercent.
	t.Setenv("GOGC", "") // restores the variable after the test
	os.Unsetenv("GOGC")
	debug.SetGCPercent(100)
	ForRun()
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("without GOGC, ForRun set %d, want %d", got, gcPercent)
	}

	// The user's GOGC wins.
	t.Setenv("GOGC", "50")
	debug.SetGCPercent(50)
	ForRun()
	if got := debug.SetGCPercent(100); got != 50 {
		t.Errorf("with GOGC=50, ForRun left %d, want 50", got)
	}
}
