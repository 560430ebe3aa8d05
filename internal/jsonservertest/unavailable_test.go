package jsonservertest

import (
	"fmt"
	"runtime"
	"testing"
)

// skipRecorder is a testing.TB that records how unavailable ends the test.
type skipRecorder struct {
	testing.TB
	skipped, failed string
}

// Skipf and Fatalf end the goroutine, as testing's do.
func (r *skipRecorder) Helper() {}
func (r *skipRecorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *skipRecorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// record runs unavailable as a test would, on a goroutine of its own.
func record(t *testing.T, format string, args ...any) *skipRecorder {
	r := &skipRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		unavailable(r, format, args...)
	}()
	<-done
	return r
}

// A test that skips for want of json-server says how to run it (issue 13 item 9): the script
// that installs it, and the variable that makes the skip a failure.
func TestUnavailableSaysHowToRunTheTest(t *testing.T) {
	t.Setenv(RequireEnv, "")
	r := record(t, "json-server is not installed in %s; run: %s", "x/node_modules", InstallCommand("x"))
	want := "json-server is not installed in x/node_modules; run: (cd x && npm ci --no-audit --no-fund); ./test.sh installs it and runs every test (DATAFLOW_REQUIRE_JSONSERVER=1 makes this skip a failure)"
	if r.skipped != want || r.failed != "" {
		t.Errorf("skipped %q, failed %q; want skipped %q", r.skipped, r.failed, want)
	}
	t.Setenv(RequireEnv, "1")
	r = record(t, "json-server is not installed")
	if want := "json-server is not installed (DATAFLOW_REQUIRE_JSONSERVER=1: the json-server tests must run)"; r.failed != want || r.skipped != "" {
		t.Errorf("failed %q, skipped %q; want failed %q", r.failed, r.skipped, want)
	}
}
