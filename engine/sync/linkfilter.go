package sync

import (
	"hash/maphash"
	mathbits "math/bits"
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
// follows the number of ids (10 bits each) instead of being sized for the largest flow. The
// first level holds as many ids as the run expects (the records the sides held when it began,
// when the systems count them), so that a first sync has one level: a lookup of an id not
// held, nearly every lookup of a first sync, reads every level, and at a million ids a chain
// from 8,192 had eight levels, whose lookups took twenty times the CPU of those at 200,000 (bench
// i). Each level is blocked: an id's bits are in one block of 512 (a cache line), so a level
// costs a lookup one cache miss. A full level takes about 2 % of other ids for held, a chain
// of levels more. It is safe for concurrent use: links are written on the goroutine that
// commits them while the flow run's looks them up.
type linkFilter struct {
	mu     gosync.Mutex
	seed   maphash.Seed
	first  int // the first level's capacity
	levels []filterLevel
}

type filterLevel struct {
	blocks   [][filterBlockWords]uint64
	ids, max int
}

const (
	filterFirstIDs    = 8192    // the first level's capacity, at least
	filterMaxFirstIDs = 1 << 24 // and at most (20 MiB), whatever the counts say
	filterBitsPer     = 10      // bits per id
	filterHashes      = 3
	filterBlockWords  = 8 // 512 bits
)

// newLinkFilter returns a filter whose first level holds expect ids (at least filterFirstIDs).
func newLinkFilter(expect int) *linkFilter {
	return &linkFilter{seed: maphash.MakeSeed(), first: min(max(expect, filterFirstIDs), filterMaxFirstIDs)}
}

// place returns the block of an id of hash h in a level of n blocks (by a multiplication,
// Lemire's fast range, instead of a division) and its filterHashes bits in the block, from
// the hash's low 27 bits, 9 bits each.
func place(h uint64, n int) (block int, bits [filterHashes]uint16) {
	hi, _ := mathbits.Mul64(h, uint64(n))
	for i := range bits {
		bits[i] = uint16(h>>(9*i)) & 511
	}
	return int(hi), bits
}

func (f *linkFilter) add(id string) {
	h := maphash.String(f.seed, id)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.levels) == 0 || f.levels[len(f.levels)-1].ids >= f.levels[len(f.levels)-1].max {
		max := f.first << len(f.levels)
		f.levels = append(f.levels, filterLevel{blocks: make([][filterBlockWords]uint64, (max*filterBitsPer+511)/512), max: max})
	}
	l := &f.levels[len(f.levels)-1]
	b, bits := place(h, len(l.blocks))
	for _, p := range bits {
		l.blocks[b][p/64] |= 1 << (p % 64)
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
		b, bits := place(h, len(l.blocks))
		block := &l.blocks[b]
		held := true
		for _, p := range bits {
			if block[p/64]&(1<<(p%64)) == 0 {
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

// newLinkFilters returns filters sized for expect ids each.
func newLinkFilters(expect int) *linkFilters {
	return &linkFilters{source: newLinkFilter(expect), target: newLinkFilter(expect)}
}

// maybeLinked returns the ids of side that may have a link (the others have none).
func (lf *linkFilters) maybeLinked(side Side, ids []string) []string {
	if side == Target {
		return lf.target.maybeHeld(ids)
	}
	return lf.source.maybeHeld(ids)
}
