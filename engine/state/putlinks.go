package state

// PutLinks of many links encodes them on a goroutine of its own while the Tx inserts them.

import (
	stdsync "sync"
)

// A first sync's links were committed on a goroutine that the flow run waited for, and a
// third of its time was spent encoding the links' columns (the base above all), not in
// SQLite. So a long PutLinks encodes chunks of links ahead on another goroutine, with the
// numbers of flows and keys the Tx began with, while the Tx inserts the chunk before; a link
// it cannot encode so (a flow or a key numbered in this Tx, a base with more than plain
// values) the Tx encodes itself when its turn comes, as PutLink would.
const (
	// aheadChunk is the links of a chunk: enough that handing one over costs little per link,
	// few enough that the first is soon ready.
	aheadChunk = 64
	// aheadMin is the fewest links whose PutLinks encodes ahead.
	aheadMin = 2 * aheadChunk
)

// preparedLink is the stored forms of a link's columns, encoded ahead of its insert, in
// buffers of its own (SQLite copies what it binds, so they are reused for the next chunk).
type preparedLink struct {
	v       linkValues
	ok      bool // false: the Tx encodes the link itself
	columns linkBuffers
}

// boxedBytes is a buffer whose slice is boxed in an any once, for as long as its length and
// its array stay the same: a []byte put in an any is copied to the heap each time.
type boxedBytes struct {
	buf []byte
	box any
}

// set copies p into the buffer and returns the box of its bytes.
func (b *boxedBytes) set(p []byte) any {
	if b.box != nil && len(p) == len(b.buf) {
		copy(b.buf, p) // the bytes of the slice boxed
		return b.box
	}
	b.buf = append(b.buf[:0], p...)
	b.box = b.buf
	return b.box
}

// linkBuffers hold the stored forms of a link's columns (linkValues) that are bytes, boxed
// (boxedBytes), and the room to decode them in.
type linkBuffers struct {
	digests [2]boxedBytes
	target  boxedBytes
	base    boxedBytes
	digest  [16]byte
	id      []byte
}

// set sets v's columns but the flow and the base: the target id and the digests as bytes where
// they are hex (packID, packDigest), the time, and who made the link.
func (b *linkBuffers) set(l *Link, v *linkValues) {
	if id, ok := decodeIDInto(&b.id, l.TargetID); ok {
		v.target = b.target.set(id)
	} else {
		v.target = l.TargetID
	}
	v.sh, v.th = b.packDigest(0, l.SourceHash), b.packDigest(1, l.TargetHash)
	v.updated, v.made = packTime(l.Updated), packMade(l.Made)
}

// packDigest is packDigest into the buffer of digest i.
func (b *linkBuffers) packDigest(i int, s string) any {
	if !decodeDigest(b.digest[:], s) {
		return s
	}
	return b.digests[i].set(b.digest[:])
}

// binaryBaseOf encodes l's base in the binary form with c, with key the number of a property
// key: out is nil for a link without a base; ok is false for a base that is not plain (stored
// as JSON text), or when unknown lists keys that have no number (binaryCodec.encode). m is the
// base as a map when encoding it made or used one (for the JSON form). The bytes are c's.
func binaryBaseOf(c *binaryCodec, l *Link, key func(string) (int64, bool)) (out []byte, m map[string]Base, unknown []string, ok bool) {
	switch {
	case l.list != nil && len(l.list.keys) > 0:
		if out, ok = c.encodeList(l.list); ok {
			return out, nil, nil, true
		}
		m = l.list.bases()
	case len(l.Base) > 0:
		m = l.Base
	default:
		return nil, nil, nil, true
	}
	out, unknown, ok = c.encode(m, key)
	return out, m, unknown, ok && len(unknown) == 0
}

// aheadEncoder encodes links for putAhead with the dictionary the Tx began with; it shares
// nothing the Tx writes.
type aheadEncoder struct {
	dict   *dictionary
	binary binaryCodec
}

func (e *aheadEncoder) knownKey(name string) (int64, bool) {
	id, ok := e.dict.keys[name]
	return id, ok
}

// prepare encodes l into p, as sqliteTx.values does, or sets p.ok false.
func (e *aheadEncoder) prepare(l *Link, p *preparedLink) {
	p.ok = false
	if l == nil || l.Flow == "" || l.SourceID == "" || l.TargetID == "" {
		return
	}
	flow, known := e.dict.flows[l.Flow]
	if !known {
		return
	}
	out, _, _, ok := binaryBaseOf(&e.binary, l, e.knownKey)
	if !ok {
		return
	}
	p.v = linkValues{flow: flow, base: emptyBase}
	if out != nil {
		p.v.base = p.columns.base.set(out)
	}
	p.columns.set(l, &p.v)
	p.ok = true
}

// putAhead is PutLinks of many links (see aheadMin), with the Tx's lock held: chunks of
// links are encoded on another goroutine while the Tx inserts those before. It returns once
// that goroutine has stopped.
func (t *sqliteTx) putAhead(links []*Link) error {
	var chunks [2][aheadChunk]preparedLink
	ready := make(chan int, len(chunks)) // a chunk encoded, by index
	free := make(chan int, len(chunks))  // a chunk the Tx is done with
	quit := make(chan struct{})
	for i := range chunks {
		free <- i
	}
	var wg stdsync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		e := aheadEncoder{dict: t.dict}
		for start := 0; start < len(links); start += aheadChunk {
			var c int
			select {
			case c = <-free:
			case <-quit:
				return
			}
			for i, l := range links[start:min(start+aheadChunk, len(links))] {
				e.prepare(l, &chunks[c][i])
			}
			ready <- c // never blocks: there are as many places as chunks
		}
	}()
	defer wg.Wait()
	defer close(quit)
	for start := 0; start < len(links); start += aheadChunk {
		c := <-ready
		for i, l := range links[start:min(start+aheadChunk, len(links))] {
			var err error
			if p := &chunks[c][i]; p.ok {
				err = t.putValues(l, p.v)
			} else {
				err = t.putChecked(l)
			}
			if err != nil {
				return err
			}
		}
		free <- c
	}
	return nil
}
