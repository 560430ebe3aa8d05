package sync

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

// aheadConn scans batches of one record each, from a goroutine when concurrent, and fails
// after failAt batches when failAt > 0.
type aheadConn struct {
	connector.Conn
	concurrent bool
	batches    int
	failAt     int
	read       chan int // the number of each batch read, as it is read
}

func (c *aheadConn) Capabilities() connector.Capabilities {
	return connector.Capabilities{ConcurrentScan: c.concurrent}
}

func (c *aheadConn) Scan(ctx context.Context, entity, since string, fn func([]connector.Record) error) error {
	for i := range c.batches {
		if c.failAt > 0 && i == c.failAt {
			return errors.New("disk I/O error")
		}
		if c.read != nil {
			c.read <- i
		}
		if err := fn([]connector.Record{{ID: fmt.Sprint(i)}}); err != nil {
			return err
		}
	}
	return nil
}

func collect(t *testing.T, c *aheadConn, stopAt int) ([]string, error) {
	t.Helper()
	var got []string
	err := scan(context.Background(), c, "e", "", nil, func(recs []connector.Record, digests []string, _ []*prebuilt) error {
		if digests != nil && (len(digests) != len(recs) || digests[0] == "") {
			t.Fatalf("digests %v for %d records", digests, len(recs))
		}
		got = append(got, recs[0].ID)
		if len(got) == stopAt {
			return errors.New("stop")
		}
		return nil
	})
	return got, err
}

func TestScanAheadKeepsOrderAndErrors(t *testing.T) {
	for _, concurrent := range []bool{false, true} {
		t.Run(fmt.Sprint("concurrent=", concurrent), func(t *testing.T) {
			before := runtime.NumGoroutine()
			got, err := collect(t, &aheadConn{concurrent: concurrent, batches: 50}, 0)
			want := make([]string, 50)
			for i := range want {
				want[i] = fmt.Sprint(i)
			}
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("scan: %v, %v; want every batch in order", got, err)
			}

			// The callback's error stops the reader and is what scan returns.
			got, err = collect(t, &aheadConn{concurrent: concurrent, batches: 50}, 3)
			if err == nil || err.Error() != "stop" || !slices.Equal(got, want[:3]) {
				t.Errorf("scan stopped by fn: %v, %v; want 0..2 and the error stop", got, err)
			}

			// A read error comes after the batches read before it, as without the goroutine.
			got, err = collect(t, &aheadConn{concurrent: concurrent, batches: 50, failAt: 4}, 0)
			if err == nil || err.Error() != "disk I/O error" || !slices.Equal(got, want[:4]) {
				t.Errorf("scan with a read error: %v, %v; want 0..3 and the error", got, err)
			}

			deadline := time.Now().Add(5 * time.Second)
			for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if n := runtime.NumGoroutine(); n > before {
				t.Errorf("%d goroutines left running, %d before", n, before)
			}
		})
	}
}

// The reader of a concurrent scan works one batch ahead of the callback, no more.
func TestScanAheadReadsOneBatchAhead(t *testing.T) {
	c := &aheadConn{concurrent: true, batches: 10, read: make(chan int, 10)}
	release := make(chan struct{})
	done := make(chan error)
	go func() {
		first := true
		done <- scan(context.Background(), c, "e", "", nil, func([]connector.Record, []string, []*prebuilt) error {
			if first {
				first = false
				<-release
			}
			return nil
		})
	}()
	// While the callback holds batch 0, the reader reads batch 1 (queued) and batch 2 (waiting
	// to be queued), and no further.
	for want := range 3 {
		if got := <-c.read; got != want {
			t.Fatalf("read batch %d, want %d", got, want)
		}
	}
	select {
	case got := <-c.read:
		t.Fatalf("the reader read batch %d while the callback still held batch 0", got)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// The scan's goroutine builds creates only in a pass that will create nearly every record it
// reads: a first sync of a pure flow (no link when the run began, none made yet: not the
// second pass of a two-way first sync), and not in a dry run.
func TestPrepareCreatesOnlyBeforeAnyLink(t *testing.T) {
	run, dry := &Runner{}, &Runner{Opts: Options{DryRun: true}}
	for _, tc := range []struct {
		name string
		fr   *flowRun
		want bool
	}{
		{"the first pass of a first sync", &flowRun{r: run, pure: true, check: &deleteCheck{}, stats: &FlowStats{}}, true},
		{"links when the run began", &flowRun{r: run, pure: true, check: &deleteCheck{hadLinks: true}, stats: &FlowStats{}}, false},
		{"the second pass, after creates", &flowRun{r: run, pure: true, check: &deleteCheck{}, stats: &FlowStats{CreatedTarget: 1}}, false},
		{"the second pass, after merges", &flowRun{r: run, pure: true, check: &deleteCheck{}, stats: &FlowStats{Merged: 1}}, false},
		{"records adopted after a crash", &flowRun{r: run, pure: true, check: &deleteCheck{}, stats: &FlowStats{Recovered: 1}}, false},
		{"a flow with references or lists", &flowRun{r: run, check: &deleteCheck{}, stats: &FlowStats{}}, false},
		{"a dry run", &flowRun{r: dry, pure: true, check: &deleteCheck{}, stats: &FlowStats{}}, false},
	} {
		if got := tc.fr.prepareCreates("source") != nil; got != tc.want {
			t.Errorf("%s: builds ahead %v, want %v", tc.name, got, tc.want)
		}
	}
}
