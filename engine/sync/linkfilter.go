package sync

import (
	"hash/maphash"
	"math/bits"
	gosync "sync"
)

// A flow's first sync looks up the links of every record it reads, and finds none: the flow
// had none when the run began, and the run links each record once. Each lookup still costs
// the link state an index search per record (at a million links, more than the link's own
// insert). So while a flow that had no link at the start of the run runs, the run keeps a
// Bloom filter of the ids of each side whose links it wrote (every link write goes through a
// flow run's transaction: trackedTx), and the link state is asked only for the ids the filter
// may hold. A false positive costs the lookup it would have cost anyway; there are no false
// negatives, so no record is taken for unlinked while it has a link (which would create its
// partner twice). Other writers of the flow's links are kept out for the run: a SQLite link
// state by its lock, a shared one by the flow's lease.

// linkFilter is a scalable Bloom filter of ids: a chain of filters, each twice the size of
// the one before, the last taking the new ids once the others are full, so that its memory
// follows the number of ids (10 bits each) instead of being sized for the largest flow. A
// full level takes about 2 % of other ids for held, the chain about 6 % at 100,000 ids. It is
// safe for concurrent use: links are written on the goroutine that commits them while the
// flow run's looks them up.
type linkFilter struct {
	mu     gosync.Mutex
	seed   maphash.Seed
	levels []filterLevel
}

type filterLevel struct {
	bits     []uint64
	ids, max int
}

const (
	filterFirstIDs = 8192 // the first level's capacity
	filterBitsPer  = 10   // bits per id
	filterHashes   = 3
)

func newLinkFilter() *linkFilter { return &linkFilter{seed: maphash.MakeSeed()} }

// positions returns the filterHashes bit positions of an id of hash h in a level of n bits,
// derived from the one hash (Kirsch and Mitzenmacher), each mapped onto [0, n) by a
// multiplication (Lemire's fast range) instead of a division.
func positions(h, n uint64) [filterHashes]uint64 {
	h2 := h>>32 | h<<32 | 1
	var pos [filterHashes]uint64
	for i := range pos {
		pos[i], _ = bits.Mul64(h+uint64(i)*h2, n)
	}
	return pos
}

func (f *linkFilter) add(id string) {
	h := maphash.String(f.seed, id)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.levels) == 0 || f.levels[len(f.levels)-1].ids >= f.levels[len(f.levels)-1].max {
		max := filterFirstIDs << len(f.levels)
		f.levels = append(f.levels, filterLevel{bits: make([]uint64, max*filterBitsPer/64), max: max})
	}
	l := &f.levels[len(f.levels)-1]
	for _, p := range positions(h, uint64(len(l.bits))*64) {
		l.bits[p/64] |= 1 << (p % 64)
	}
	l.ids++
}

// maybeHeld returns the ids of ids that may have been added: the others were not.
func (f *linkFilter) maybeHeld(ids []string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, id := range ids {
		if f.mayHold(maphash.String(f.seed, id)) {
			out = append(out, id)
		}
	}
	return out
}

// mayHold reports whether an id of hash h may have been added; f.mu is held.
func (f *linkFilter) mayHold(h uint64) bool {
	for i := range f.levels {
		l := &f.levels[i]
		held := true
		for _, p := range positions(h, uint64(len(l.bits))*64) {
			if l.bits[p/64]&(1<<(p%64)) == 0 {
				held = false
				break
			}
		}
		if held {
			return true
		}
	}
	return false
}

// linkFilters are a fresh flow's filters of the source and the target ids it linked.
type linkFilters struct{ source, target *linkFilter }

func newLinkFilters() *linkFilters {
	return &linkFilters{source: newLinkFilter(), target: newLinkFilter()}
}

// maybeLinked returns the ids of side that may have a link (the others have none).
func (lf *linkFilters) maybeLinked(side Side, ids []string) []string {
	if side == Target {
		return lf.target.maybeHeld(ids)
	}
	return lf.source.maybeHeld(ids)
}
