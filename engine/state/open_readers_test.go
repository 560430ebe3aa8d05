package state

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLocked(t *testing.T) {
	ctx := context.Background()
	s, path := newStore(t)

	_, err := Open(ctx, path, ReadWrite)
	want := fmt.Sprintf("the link state %s is in use by another run (pid %d); wait for it to finish", path, os.Getpid())
	if err == nil || err.Error() != want {
		t.Fatalf("second writer: got %v\nwant %s", err, want)
	}
	if !errors.Is(err, ErrLocked) {
		t.Errorf("errors.Is(%v, ErrLocked) = false", err)
	}

	// A reader does not need the lock.
	r, err := Open(ctx, path, ReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	// Without a pid in the lock file the message just leaves it out.
	if err := os.Truncate(path+".lock", 0); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, path, ReadWrite)
	if want := fmt.Sprintf("the link state %s is in use by another run; wait for it to finish", path); err == nil || err.Error() != want {
		t.Errorf("no pid: got %v\nwant %s", err, want)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	s2, err := Open(ctx, path, ReadWrite)
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	s2.Close()
}

func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	missing := filepath.Join(dir, ".dataflow", "state.db")

	_, err := Open(ctx, missing, ReadOnly)
	want := fmt.Sprintf("the link state %s does not exist; no run has written it yet", missing)
	if err == nil || err.Error() != want {
		t.Errorf("missing file: got %v\nwant %s", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadOnly created %s", filepath.Dir(missing))
	}

	// An empty file (a writer killed before it wrote anything) holds no state either.
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, empty, ReadOnly)
	if want := fmt.Sprintf("the link state %s is empty: no run has written it yet", empty); err == nil || err.Error() != want {
		t.Errorf("empty file: got %v\nwant %s", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
	}

	s, path := newStore(t)
	putLinks(t, s, "f", 0, 3)
	r, err := Open(ctx, path, ReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.Begin(ctx)
	if want := fmt.Sprintf("the link state %s is open read-only; it cannot be written", path); err == nil || err.Error() != want {
		t.Errorf("Begin: got %v\nwant %s", err, want)
	}
	if n, err := r.CountLinks(ctx, "f"); err != nil || n != 3 {
		t.Errorf("CountLinks = %d, %v; want 3", n, err)
	}
}

// TestReaderBesideOpenTx: a reader sees the committed state only, while a Tx holds
// uncommitted writes, and never waits for it.
func TestReaderBesideOpenTx(t *testing.T) {
	ctx := context.Background()
	s, path := newStore(t)
	putLinks(t, s, "f", 0, 10)
	write(t, s, func(tx Tx) error { return tx.SetWatermark("f", Source, "w1") })

	r, err := Open(ctx, path, ReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for i := 10; i < 20; i++ {
		if err := tx.PutLink(testLink("f", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.DeleteLink("f", "s000000"); err != nil {
		t.Fatal(err)
	}
	if err := tx.SetWatermark("f", Source, "w2"); err != nil {
		t.Fatal(err)
	}

	check := func(name string, st Store, wantCount int, wantMark string, wantFirst bool) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second) // a reader that waits fails
		defer cancel()
		n, err := st.CountLinks(ctx, "f")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		mark, err := st.Watermark(ctx, "f", Source)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		links, err := st.LinksBySource(ctx, "f", []string{"s000000", "s000015"})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, first := links["s000000"]
		_, new := links["s000015"]
		if n != wantCount || mark != wantMark || first != wantFirst || new == wantFirst {
			t.Errorf("%s: %d links, watermark %q, s000000 linked %v, s000015 linked %v; want %d, %q, %v, %v",
				name, n, mark, first, new, wantCount, wantMark, wantFirst, !wantFirst)
		}
	}
	// The reads of the writing Store itself do not wait for its own Tx either.
	check("reader during Tx", r, 10, "w1", true)
	check("writer's Store during Tx", s, 10, "w1", true)
	// A reader opened while the Tx is open, too.
	r2, err := Open(ctx, path, ReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	check("reader opened during Tx", r2, 10, "w1", true)

	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	check("reader after Commit", r, 19, "w2", false)
}

// TestReaderLoopBesideWriter: readers, including new ones, never fail while a writer commits.
func TestReaderLoopBesideWriter(t *testing.T) {
	ctx := context.Background()
	s, path := newStore(t)
	putLinks(t, s, "f", 0, 1)
	r, err := Open(ctx, path, ReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	var (
		done  atomic.Bool
		reads atomic.Int64
		wg    sync.WaitGroup
		errs  = make(chan error, 4)
	)
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			last := 0
			for i := 0; !done.Load(); i++ {
				st := r
				if g == 0 && i%5 == 0 { // open a reader now and then, during commits
					var err error
					if st, err = Open(ctx, path, ReadOnly); err != nil {
						errs <- err
						return
					}
				}
				n, err := st.CountLinks(ctx, "f")
				if err == nil {
					_, err = st.LinksBySource(ctx, "f", []string{"s000000", fmt.Sprintf("s%06d", n-1)})
				}
				if err == nil {
					err = st.ScanLinks(ctx, "f", func([]*Link) error { return nil })
				}
				if st != r {
					st.Close()
				}
				if err != nil {
					errs <- err
					return
				}
				if n < last {
					errs <- fmt.Errorf("count went back from %d to %d", last, n)
					return
				}
				last = n
				reads.Add(1)
			}
		}(g)
	}
	for c := 0; c < 50; c++ {
		putLinks(t, s, "f", 1+c*20, 1+(c+1)*20)
	}
	done.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("reader: %v", err)
	}
	if reads.Load() < 10 {
		t.Errorf("only %d reads during the commits", reads.Load())
	}
	if n, _ := r.CountLinks(ctx, "f"); n != 1001 {
		t.Errorf("%d links, want 1001", n)
	}
}
