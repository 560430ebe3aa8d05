package main

// What a database stores, per table and index: the pages of each b-tree of a SQLite file
// (interior, leaf and overflow pages), times the page size. SQLite's dbstat virtual table
// gives the same, but go-sqlite3 compiles it in only under the sqlite_dbstat build tag, which
// `go run .` (and CI) would have to be told; reading the file format
// (https://www.sqlite.org/fileformat2.html, "B-tree Pages") needs nothing. dbsize_test.go
// checks the walk against the file's own page count and, under the tag, against dbstat.

import (
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// dbBytes is what a database file holds: the bytes of each b-tree by its name in
// sqlite_schema (sqlite_schema itself included), and of all pages in use.
type dbBytes struct {
	btrees map[string]int64
	tables map[string]string // the table each b-tree belongs to (itself, for a table)
	used   int64             // (page_count - freelist_count) × page_size
}

// indexBytes is the bytes of the indexes of a table.
func (m dbBytes) indexBytes(table string) int64 {
	var sum int64
	for name, t := range m.tables {
		if t == table && name != table {
			sum += m.btrees[name]
		}
	}
	return sum
}

// measureDB checkpoints a database into its main file and measures it. Nothing may write to it
// meanwhile.
func measureDB(path string) (dbBytes, error) {
	var m dbBytes
	if _, err := os.Stat(path); err != nil {
		return m, err
	}
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		return m, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	// The pages of a WAL database are in its -wal file until a checkpoint copies them back.
	if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return m, fmt.Errorf("%s: %w", path, err)
	}
	var pages, free, size int64
	for q, to := range map[string]*int64{"PRAGMA page_count": &pages, "PRAGMA freelist_count": &free, "PRAGMA page_size": &size} {
		if err := db.QueryRow(q).Scan(to); err != nil {
			return m, fmt.Errorf("%s: %w", path, err)
		}
	}
	m.used = (pages - free) * size
	roots := map[string]uint32{"sqlite_schema": 1}
	m.tables = map[string]string{"sqlite_schema": "sqlite_schema"}
	rows, err := db.Query("SELECT name, tbl_name, rootpage FROM sqlite_schema WHERE rootpage > 0")
	if err != nil {
		return m, fmt.Errorf("%s: %w", path, err)
	}
	for rows.Next() {
		var name, table string
		var root uint32
		if err := rows.Scan(&name, &table, &root); err != nil {
			rows.Close()
			return m, err
		}
		roots[name], m.tables[name] = root, table
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return m, err
	}
	f, err := os.Open(path)
	if err != nil {
		return m, err
	}
	defer f.Close()
	pf, err := openPageFile(f)
	if err != nil {
		return m, fmt.Errorf("%s: %w", path, err)
	}
	m.btrees = map[string]int64{}
	for name, root := range roots {
		n, err := pf.btreePages(root)
		if err != nil {
			return m, fmt.Errorf("%s: b-tree %s: %w", path, name, err)
		}
		m.btrees[name] = n * int64(pf.size)
	}
	return m, nil
}

// pageFile reads the pages of a database file.
type pageFile struct {
	f      *os.File
	size   int    // page size
	usable int    // page size less the reserved bytes at the end of every page
	pages  uint32 // pages in the file
	buf    []byte
}

func openPageFile(f *os.File) (*pageFile, error) {
	var hdr [100]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return nil, fmt.Errorf("reading the header: %w", err)
	}
	if string(hdr[:16]) != "SQLite format 3\x00" {
		return nil, errors.New("not a SQLite database")
	}
	size := int(binary.BigEndian.Uint16(hdr[16:]))
	if size == 1 {
		size = 65536
	}
	if size < 512 || size&(size-1) != 0 {
		return nil, fmt.Errorf("page size %d", size)
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return &pageFile{f: f, size: size, usable: size - int(hdr[20]), pages: uint32(st.Size() / int64(size)), buf: make([]byte, size)}, nil
}

func (pf *pageFile) read(n uint32) ([]byte, error) {
	if n < 1 || n > pf.pages {
		return nil, fmt.Errorf("page %d is not in the file (%d pages)", n, pf.pages)
	}
	if _, err := pf.f.ReadAt(pf.buf, int64(n-1)*int64(pf.size)); err != nil {
		return nil, err
	}
	return pf.buf, nil
}

// btreePages counts the pages of the b-tree at root: its interior and leaf pages, and the
// overflow pages of cells whose payload does not fit on their page.
func (pf *pageFile) btreePages(root uint32) (int64, error) {
	seen := map[uint32]bool{}
	stack := []uint32{root}
	var count int64
	visit := func(n uint32) error {
		if seen[n] {
			return fmt.Errorf("page %d is reached twice: the file is corrupt", n)
		}
		seen[n] = true
		count++
		return nil
	}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if err := visit(n); err != nil {
			return 0, err
		}
		p, err := pf.read(n)
		if err != nil {
			return 0, err
		}
		hdr := 0
		if n == 1 {
			hdr = 100 // the file header comes first on page 1
		}
		typ := p[hdr]
		ptrs := hdr + 8
		switch typ {
		case 0x02, 0x05: // index and table interior pages: the right-most child follows the header
			stack = append(stack, binary.BigEndian.Uint32(p[hdr+8:]))
			ptrs = hdr + 12
		case 0x0a, 0x0d: // index and table leaves
		default:
			return 0, fmt.Errorf("page %d has type %#x, not a b-tree page", n, typ)
		}
		cells := int(binary.BigEndian.Uint16(p[hdr+3:]))
		if ptrs+2*cells > pf.usable {
			return 0, fmt.Errorf("page %d: %d cells do not fit", n, cells)
		}
		var overflow []uint32
		for i := 0; i < cells; i++ {
			off := int(binary.BigEndian.Uint16(p[ptrs+2*i:]))
			if off >= pf.usable {
				return 0, fmt.Errorf("page %d: cell %d is outside the page", n, i)
			}
			c := p[off:pf.usable]
			if typ == 0x02 || typ == 0x05 {
				if len(c) < 4 {
					return 0, fmt.Errorf("page %d: cell %d is cut short", n, i)
				}
				stack = append(stack, binary.BigEndian.Uint32(c))
				if typ == 0x05 {
					continue // a table interior cell is a child and a key: no payload
				}
				c = c[4:]
			}
			payload, k := sqliteVarint(c)
			c = c[k:]
			if typ == 0x0d {
				_, k = sqliteVarint(c) // the rowid
				c = c[k:]
			}
			local, spills := pf.localPayload(typ, payload)
			if !spills {
				continue
			}
			if int64(len(c)) < local+4 {
				return 0, fmt.Errorf("page %d: cell %d is cut short", n, i)
			}
			overflow = append(overflow, binary.BigEndian.Uint32(c[local:]))
		}
		// Overflow chains are read after the cells: reading a page reuses the buffer.
		for _, next := range overflow {
			for next != 0 {
				if err := visit(next); err != nil {
					return 0, err
				}
				op, err := pf.read(next)
				if err != nil {
					return 0, err
				}
				next = binary.BigEndian.Uint32(op)
			}
		}
	}
	return count, nil
}

// localPayload is how much of a cell's payload is on its b-tree page, and whether the rest
// spills onto overflow pages (the file format's X, M and K).
func (pf *pageFile) localPayload(typ byte, payload int64) (int64, bool) {
	u := int64(pf.usable)
	x := (u-12)*64/255 - 23 // index cells
	if typ == 0x0d {
		x = u - 35 // table leaf cells
	}
	if payload <= x {
		return payload, false
	}
	m := (u-12)*32/255 - 23
	if k := m + (payload-m)%(u-4); k <= x {
		return k, true
	}
	return m, true
}

// sqliteVarint decodes SQLite's big-endian varint (1 to 9 bytes; the ninth gives all 8 bits)
// and returns it with its length; 0, len(b) when b is cut short.
func sqliteVarint(b []byte) (int64, int) {
	var v uint64
	for i := 0; i < 9; i++ {
		if i >= len(b) {
			return 0, len(b)
		}
		if i == 8 {
			return int64(v<<8 | uint64(b[i])), 9
		}
		v = v<<7 | uint64(b[i]&0x7f)
		if b[i] < 0x80 {
			return int64(v), i + 1
		}
	}
	return int64(v), 9
}
