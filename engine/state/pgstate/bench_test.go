package pgstate

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/state"
	"github.com/dataflow-sync/dataflow/internal/pgtest"
)

// benchLinks are n links of round r, with a base of a few properties.
func benchLinks(r, n int) []*state.Link {
	links := make([]*state.Link, n)
	for i := range links {
		name := json.RawMessage(fmt.Sprintf(`"Name %d"`, i))
		links[i] = &state.Link{
			Flow: "f", SourceID: fmt.Sprintf("r%d-s%06d", r, i), TargetID: fmt.Sprintf("r%d-t%06d", r, i),
			Base: map[string]state.Base{
				"name":   {S: name, T: name},
				"amount": {S: json.RawMessage(`10`), T: json.RawMessage(`"10.00"`)},
				"tags":   {S: json.RawMessage(`["a","b"]`), T: json.RawMessage(`["a","b"]`)},
			},
			SourceHash: "0123456789abcdef0123456789abcdef", TargetHash: "fedcba9876543210fedcba9876543210",
			LinkedIn: 1, MergedIn: 1, Made: state.Target,
		}
	}
	return links
}

func benchStore(b *testing.B) *Store {
	st, err := Open(context.Background(), pgtest.New(b).DSN(), Options{Mode: state.ReadWrite})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// BenchmarkPutLinks puts 1,000 links in a Tx, by PutLinks or one by one by PutLink.
func BenchmarkPutLinks(b *testing.B) {
	for _, batched := range []bool{false, true} {
		b.Run(fmt.Sprintf("batched=%v", batched), func(b *testing.B) {
			const n = 1000
			st := benchStore(b)
			round := 0
			for b.Loop() {
				b.StopTimer()
				links := benchLinks(round, n)
				round++
				b.StartTimer()
				tx, err := st.Begin(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				if batched {
					err = tx.PutLinks(links)
				} else {
					for _, l := range links {
						if err = tx.PutLink(l); err != nil {
							break
						}
					}
				}
				if err == nil {
					err = tx.Commit()
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "links/s")
		})
	}
}

// BenchmarkAddIntents records 500 intents in a Tx, by AddIntents or one by one by AddIntent.
func BenchmarkAddIntents(b *testing.B) {
	for _, batched := range []bool{false, true} {
		b.Run(fmt.Sprintf("batched=%v", batched), func(b *testing.B) {
			const n = 500
			st := benchStore(b)
			data := json.RawMessage(`{"brand":"Nordic Roast","price":"50.90","sku":"P0000042"}`)
			ins := make([]state.Intent, n)
			for i := range ins {
				ins[i] = state.Intent{Flow: "f", Side: state.Target, FromID: fmt.Sprint(i), Data: data}
			}
			for b.Loop() {
				tx, err := st.Begin(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				if batched {
					_, err = tx.AddIntents(ins)
				} else {
					for i := range ins {
						if _, err = tx.AddIntent(&ins[i]); err != nil {
							break
						}
					}
				}
				if err == nil {
					err = tx.Commit()
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "intents/s")
		})
	}
}
