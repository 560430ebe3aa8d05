package state

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
)

// BenchmarkPutLink writes 10,000 links in one Tx, the most a run writes at once.
// Run with: go test -run '^$' -bench PutLink ./engine/state/
func BenchmarkPutLink(b *testing.B) {
	const n = 10000
	s, _ := newStore(b)
	b.ResetTimer()
	cpu := startCPU()
	for i := 0; i < b.N; i++ {
		tx, err := s.Begin(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		for j := 0; j < n; j++ {
			l := testLink("f", j)
			l.SourceID = fmt.Sprintf("r%d-s%06d", i, j)
			l.TargetID = fmt.Sprintf("r%d-t%06d", i, j)
			if err := tx.PutLink(l); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "links/s")
	cpu.report(b, n, "link")
}

// BenchmarkLinksBySource looks up 1,000 links of 100,000, as a run does per page of records.
func BenchmarkLinksBySource(b *testing.B) {
	const total, page = 100000, 1000
	s, _ := newStore(b)
	for from := 0; from < total; from += 10000 {
		putLinks(b, s, "f", from, from+10000)
	}
	ids := make([]string, page)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range ids {
			ids[j] = fmt.Sprintf("s%06d", (i*page+j*97)%total)
		}
		links, err := s.LinksBySource(context.Background(), "f", ids)
		if err != nil {
			b.Fatal(err)
		}
		if len(links) != page {
			b.Fatalf("%d links, want %d", len(links), page)
		}
	}
	b.ReportMetric(float64(page*b.N)/b.Elapsed().Seconds(), "links/s")
}

// BenchmarkCreateCommits is the link state's part of creating 10,000 records as a run does,
// per batch of 500: a Tx of intents before the create, and a Tx that forgets them, puts the
// links and clears any dead letter or waiting entry of the records.
func BenchmarkCreateCommits(b *testing.B) {
	const n, batch = 10000, 500
	s, _ := newStore(b)
	data := json.RawMessage(`{"brand":"Nordic Roast","price":"50.90","sku":"P0000042","stock":"42","title":"Espresso Roast 250 g"}`)
	round := 0
	cpu := startCPU()
	for b.Loop() {
		round++
		for start := 0; start < n; start += batch {
			ids := make([]int64, batch)
			write(b, s, func(tx Tx) error {
				for i := range ids {
					id, err := tx.AddIntent(&Intent{Flow: "f", Side: Target, FromID: fmt.Sprint(start + i), Data: data})
					if err != nil {
						return err
					}
					ids[i] = id
				}
				return nil
			})
			write(b, s, func(tx Tx) error {
				for i, id := range ids {
					if err := tx.DeleteIntent(id); err != nil {
						return err
					}
					l := testLink("f", start+i)
					l.SourceID = fmt.Sprintf("r%d-s%06d", round, start+i)
					l.TargetID = fmt.Sprintf("r%d-t%06d", round, start+i)
					if err := tx.PutLink(l); err != nil {
						return err
					}
					if err := tx.ClearDeadLetter("f", Source, l.SourceID); err != nil {
						return err
					}
					if err := tx.ClearWaiting("f", Source, l.SourceID); err != nil {
						return err
					}
				}
				return nil
			})
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
	cpu.report(b, n, "record")
}

// BenchmarkPutProductLinks writes 10,000 links shaped like the benchmark's products (see
// benchProductLink) in one Tx, built before the clock runs: the store's own cost of a batch.
func BenchmarkPutProductLinks(b *testing.B) {
	const n = 10000
	s, _ := newStore(b)
	rng := rand.New(rand.NewPCG(1, 2))
	links := make([]*Link, n)
	round := 0
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		b.StopTimer()
		cpu.stop()
		for j := range links {
			links[j] = benchProductLink(rng, round*n+j+1)
		}
		round++
		runtime.GC() // the garbage of making the links is not the store's
		cpu.start()
		b.StartTimer()
		tx, err := s.Begin(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		for _, l := range links {
			if err := tx.PutLink(l); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "links/s")
	cpu.report(b, n, "link")
}

// BenchmarkAddIntent records 500 intents in a Tx one by one and commits: the Tx a run makes
// before it creates a batch of records.
func BenchmarkAddIntent(b *testing.B) {
	const batch = 500
	s, _ := newStore(b)
	data := json.RawMessage(`{"brand":"Nordic Roast","price":"50.90","sku":"P0000042","stock":"42","title":"Espresso Roast 250 g"}`)
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		write(b, s, func(tx Tx) error {
			for i := range batch {
				if _, err := tx.AddIntent(&Intent{Flow: "f", Side: Target, FromID: strconv.Itoa(i), Data: data}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "intents/s")
	cpu.report(b, batch, "intent")
}

// BenchmarkEncodeBinaryBase encodes the bases of 1,000 links shaped like the benchmark's
// products, their keys numbered: the encoding of a base on the path of PutLink.
func BenchmarkEncodeBinaryBase(b *testing.B) {
	s, _ := newStore(b)
	rng := rand.New(rand.NewPCG(1, 2))
	links := make([]*Link, 1000)
	for i := range links {
		links[i] = benchProductLink(rng, i+1)
	}
	tx, err := s.Begin(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	st := tx.(*sqliteTx)
	if _, err := st.encodeBase(links[0]); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		for _, l := range links {
			if _, err := st.encodeBase(l); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(links)*b.N)/b.Elapsed().Seconds(), "bases/s")
	cpu.report(b, len(links), "base")
}

// BenchmarkEncodeBase encodes the bases of 1,000 product links as JSON text, the form the
// PostgreSQL store keeps, with one BaseEncoder as a Tx of that store does (it called
// EncodeBase, a new encoder per link, before issue 19).
func BenchmarkEncodeBase(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	links := make([]*Link, 1000)
	for i := range links {
		links[i] = benchProductLink(rng, i+1)
	}
	var enc BaseEncoder
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		for _, l := range links {
			if _, err := enc.Encode(l.Base); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(links)*b.N)/b.Elapsed().Seconds(), "bases/s")
	cpu.report(b, len(links), "base")
}

// BenchmarkPutLinks is BenchmarkPutLink with the links put by PutLinks, 1,000 at a time.
func BenchmarkPutLinks(b *testing.B) {
	const n, batch = 10000, 1000
	s, _ := newStore(b)
	links := make([]*Link, 0, batch)
	b.ReportAllocs()
	cpu := startCPU()
	for i := 0; i < b.N; i++ {
		tx, err := s.Begin(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		for j := 0; j < n; j++ {
			l := testLink("f", j)
			l.SourceID = fmt.Sprintf("r%d-s%06d", i, j)
			l.TargetID = fmt.Sprintf("r%d-t%06d", i, j)
			if links = append(links, l); len(links) == batch {
				if err := tx.PutLinks(links); err != nil {
					b.Fatal(err)
				}
				links = links[:0]
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "links/s")
	cpu.report(b, n, "link")
}

// BenchmarkPutProductLinksBatched is BenchmarkPutProductLinks with one PutLinks.
func BenchmarkPutProductLinksBatched(b *testing.B) {
	const n = 10000
	s, _ := newStore(b)
	rng := rand.New(rand.NewPCG(1, 2))
	links := make([]*Link, n)
	round := 0
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		b.StopTimer()
		cpu.stop()
		for j := range links {
			links[j] = benchProductLink(rng, round*n+j+1)
		}
		round++
		runtime.GC() // the garbage of making the links is not the store's
		cpu.start()
		b.StartTimer()
		write(b, s, func(tx Tx) error { return tx.PutLinks(links) })
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "links/s")
	cpu.report(b, n, "link")
}

// BenchmarkAddIntents is BenchmarkAddIntent with one AddIntents.
func BenchmarkAddIntents(b *testing.B) {
	const batch = 500
	s, _ := newStore(b)
	data := json.RawMessage(`{"brand":"Nordic Roast","price":"50.90","sku":"P0000042","stock":"42","title":"Espresso Roast 250 g"}`)
	ins := make([]Intent, batch)
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		for i := range ins {
			ins[i] = Intent{Flow: "f", Side: Target, FromID: strconv.Itoa(i), Data: data}
		}
		write(b, s, func(tx Tx) error {
			_, err := tx.AddIntents(ins)
			return err
		})
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "intents/s")
	cpu.report(b, batch, "intent")
}

// BenchmarkCreateCommitsBatched is BenchmarkCreateCommits with the intents and the links of
// a batch written by AddIntents and PutLinks.
func BenchmarkCreateCommitsBatched(b *testing.B) {
	const n, batch = 10000, 500
	s, _ := newStore(b)
	data := json.RawMessage(`{"brand":"Nordic Roast","price":"50.90","sku":"P0000042","stock":"42","title":"Espresso Roast 250 g"}`)
	round := 0
	ins := make([]Intent, batch)
	links := make([]*Link, batch)
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		round++
		for start := 0; start < n; start += batch {
			for i := range ins {
				ins[i] = Intent{Flow: "f", Side: Target, FromID: strconv.Itoa(start + i), Data: data}
			}
			var ids []int64
			write(b, s, func(tx Tx) error {
				var err error
				ids, err = tx.AddIntents(ins)
				return err
			})
			write(b, s, func(tx Tx) error {
				if err := tx.DeleteIntents(ids); err != nil {
					return err
				}
				for i := range links {
					l := testLink("f", start+i)
					l.SourceID = fmt.Sprintf("r%d-s%06d", round, start+i)
					l.TargetID = fmt.Sprintf("r%d-t%06d", round, start+i)
					links[i] = l
				}
				if err := tx.PutLinks(links); err != nil {
					return err
				}
				for _, l := range links {
					if err := tx.ClearDeadLetter("f", Source, l.SourceID); err != nil {
						return err
					}
					if err := tx.ClearWaiting("f", Source, l.SourceID); err != nil {
						return err
					}
				}
				return nil
			})
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
	cpu.report(b, n, "record")
}
