package state

// The SQLite store's write transaction (Tx) and the helpers of its values.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"
)

// Begin starts a write transaction with BEGIN IMMEDIATE, so that it holds SQLite's write
// lock from the start and never fails half-way because another writer got in first. It waits
// while another Tx of this Store is open (or until ctx ends); every Tx must end with Commit
// or Rollback. The statements of the Tx run with ctx.
func (s *SQLite) Begin(ctx context.Context) (Tx, error) { return s.begin(ctx, false) }

// BeginDeferred implements Deferring: the Tx commits with synchronous=NORMAL, which in WAL mode
// does not sync the log; the next ordinary Tx's commit (synchronous=FULL) syncs it, with every
// commit before it.
func (s *SQLite) BeginDeferred(ctx context.Context) (Tx, error) { return s.begin(ctx, true) }

func (s *SQLite) begin(ctx context.Context, deferred bool) (Tx, error) {
	if s.mode != ReadWrite {
		return nil, fmt.Errorf("the link state %s is open read-only; it cannot be written", s.path)
	}
	select {
	case s.writer <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	conn, err := s.writerConn(ctx)
	if err == nil && s.wdeferred != deferred {
		// The level of a connection, which SQLite does not let a transaction change.
		level := "FULL"
		if deferred {
			level = "NORMAL"
		}
		if _, err = conn.ExecContext(ctx, "PRAGMA synchronous = "+level); err != nil {
			s.dropWriterConn()
		} else {
			s.wdeferred = deferred
		}
	}
	if err == nil {
		if _, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			s.dropWriterConn()
		}
	}
	if err != nil {
		<-s.writer
		return nil, fmt.Errorf("begin a link state transaction: %w", err)
	}
	if s.wstmts == nil {
		s.wstmts = make(map[string]*sql.Stmt)
	}
	return &sqliteTx{s: s, ctx: ctx, conn: conn, stmts: s.wstmts, dict: s.dict.Load(), intents: &s.wintents}, nil
}

// dropWriterConn closes the connection of the Txs and its statements. The caller holds the
// writer token.
func (s *SQLite) dropWriterConn() {
	for _, st := range s.wstmts {
		st.Close()
	}
	s.wstmts = nil
	if s.wconn != nil {
		s.wconn.Raw(func(any) error { // the driver's statements are used within Raw only
			for _, st := range s.wraw {
				st.Close()
			}
			return nil
		})
		s.wconn.Close()
		s.wconn = nil
	}
	s.wraw = nil
}

// writerConn returns the connection of the Txs, opened with its page cache on first use. The
// caller holds the writer token.
func (s *SQLite) writerConn(ctx context.Context) (*sql.Conn, error) {
	if s.wconn != nil {
		return s.wconn, nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	for _, pragma := range []string{fmt.Sprintf("PRAGMA cache_size = -%d", writerCacheKiB), fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", writerCheckpointPages)} {
		if _, err := conn.ExecContext(ctx, pragma); err != nil {
			conn.Close()
			return nil, err
		}
	}
	s.wconn, s.wdeferred = conn, false // opened with synchronous=FULL (Open)
	return conn, nil
}

// sqliteTx is a write transaction on one dedicated connection. Its statements are prepared
// once and reused: a run may put ten thousand links in one Tx.
type sqliteTx struct {
	s     *SQLite
	ctx   context.Context
	conn  *sql.Conn
	stmts map[string]*sql.Stmt

	mu   sync.Mutex
	done bool

	// The statement of execLink, its arguments and result, for rawExec (rawFn: bound once).
	rawQuery string
	rawArgs  []driver.NamedValue
	rawRes   driver.Result
	rawFn    func(any) error

	bases   baseCodec      // the JSON form, for a base binaryCodec cannot hold
	binary  binaryCodec    // the binary form
	columns linkBuffers    // the stored forms of the link being put
	intents *intentEncoder // the row of AddIntents, and of a partial DeleteIntents (the store's)
	// dict is the store's copy of the numbered names when the Tx began; newFlows and newKeys
	// are the names the Tx numbered, which the store learns when the Tx commits.
	dict              *dictionary
	newFlows, newKeys map[string]int64
	// none holds the tables and flow sides (table + flow + side) known to have no rows in
	// this Tx, so that clearing a record there needs no statement: a run clears the dead
	// letter and the waiting entry of every record it links, and there rarely are any.
	none map[string]bool
}

// noneKey is the key of none for a table and a flow's side.
func noneKey(table, flow, side string) string { return table + "\x00" + flow + "\x00" + side }

// nothingToClear reports whether table has no row of the flow's side in the Tx: once known,
// without a statement, until a row is put there (see none).
func (t *sqliteTx) nothingToClear(table, flow, side string) (bool, error) {
	key := noneKey(table, flow, side)
	if t.none[key] {
		return true, nil
	}
	if t.done {
		return false, errTxDone
	}
	var any bool
	err := t.conn.QueryRowContext(t.ctx, "SELECT EXISTS (SELECT 1 FROM "+table+" WHERE flow = ? AND side = ?)", flow, side).Scan(&any)
	if err != nil {
		return false, err
	}
	if !any {
		if t.none == nil {
			t.none = make(map[string]bool)
		}
		t.none[key] = true
	}
	return !any, nil
}

var errTxDone = errors.New("the link state transaction has already been committed or rolled back")

const (
	sqlPutLink = `INSERT INTO link_rows (flow, source_id, target_id, base, source_hash, target_hash, updated, linked_in, merged_in, made)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (flow, source_id) DO UPDATE SET target_id = excluded.target_id, base = excluded.base,
			source_hash = excluded.source_hash, target_hash = excluded.target_hash, updated = excluded.updated,
			linked_in = excluded.linked_in, merged_in = excluded.merged_in, made = excluded.made`
	sqlUpdateLink = `UPDATE link_rows SET base = ?, source_hash = ?, target_hash = ?, updated = ?, linked_in = ?, merged_in = ?, made = ?
		WHERE flow = ? AND source_id = ? AND target_id = ?`
	sqlDeleteLink   = `DELETE FROM link_rows WHERE flow = (SELECT id FROM flows WHERE name = ?) AND source_id = ?`
	sqlSetWatermark = `INSERT INTO watermarks (flow, side, value) VALUES (?, ?, ?)
		ON CONFLICT (flow, side) DO UPDATE SET value = excluded.value`
	sqlSetCounts = `INSERT INTO counts (flow, source, target, skipped, source_deletions, target_deletions) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (flow) DO UPDATE SET source = excluded.source, target = excluded.target, skipped = excluded.skipped,
			source_deletions = excluded.source_deletions, target_deletions = excluded.target_deletions`
	sqlClearCounts   = `DELETE FROM counts WHERE flow = ?`
	sqlPutDeadLetter = `INSERT INTO dead_letters (flow, side, record_id, reason, attempts, first, last)
		VALUES (?, ?, ?, ?, 1, ?, ?)
		ON CONFLICT (flow, side, record_id) DO UPDATE SET reason = excluded.reason,
			attempts = attempts + 1, last = excluded.last`
	sqlClearDeadLetter = `DELETE FROM dead_letters WHERE flow = ? AND side = ? AND record_id = ?`
	// A record keeps the time it started waiting; only the reason follows the latest run.
	sqlPutWaiting = `INSERT INTO waiting (flow, side, record_id, reason, since) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (flow, side, record_id) DO UPDATE SET reason = excluded.reason`
	sqlClearWaiting = `DELETE FROM waiting WHERE flow = ? AND side = ? AND record_id = ?`
	sqlStartRun     = `INSERT INTO runs (started, status, worker) VALUES (?, 'running', ?)`
	sqlFinishRun    = `UPDATE runs SET finished = ?, status = ?, summary = ? WHERE id = ?`
)

// exec runs a statement of the Tx, preparing it on first use.
func (t *sqliteTx) exec(query string, args ...any) (sql.Result, error) {
	if t.done {
		return nil, errTxDone
	}
	st, ok := t.stmts[query]
	if !ok {
		var err error
		if st, err = t.conn.PrepareContext(t.ctx, query); err != nil {
			return nil, err
		}
		t.stmts[query] = st
	}
	return st.ExecContext(t.ctx, args...)
}

// execLink runs a statement of put, as exec does, straight on the driver's statement with the
// Tx's buffer of arguments (see rawExec); exec where the connection is not go-sqlite3's.
func (t *sqliteTx) execLink(query string, args ...any) (driver.Result, error) {
	if t.done {
		return nil, errTxDone
	}
	if err := t.ctx.Err(); err != nil { // as database/sql would, but every time
		return nil, err
	}
	t.rawQuery, t.rawRes = query, nil
	t.rawArgs = t.rawArgs[:0]
	for i, a := range args {
		t.rawArgs = append(t.rawArgs, driver.NamedValue{Ordinal: i + 1, Value: a})
	}
	if t.rawFn == nil {
		t.rawFn = t.rawExec
	}
	err := t.conn.Raw(t.rawFn)
	clear(t.rawArgs) // the values are the link's, and the Tx's buffers
	if errors.Is(err, errNotGoSQLite) {
		return t.exec(query, args...)
	}
	return t.rawRes, err
}

var errNotGoSQLite = errors.New("not a go-sqlite3 connection")

// rawExec runs t.rawQuery with t.rawArgs on the driver's connection dc, preparing the
// statement on first use (kept with the connection, in the store's wraw). database/sql would
// copy the arguments into a slice of driver.NamedValue per call and wrap the result, which
// cost bench i 85 MB of allocations for its 200k links. The statement runs with the Tx's
// context as database/sql would run it; an error is the driver's, as through database/sql.
func (t *sqliteTx) rawExec(dc any) error {
	c, ok := dc.(*sqlite3.SQLiteConn)
	if !ok || t.s == nil { // a migration's Tx: the caller owns the connection
		return errNotGoSQLite
	}
	st := t.s.wraw[t.rawQuery]
	if st == nil {
		ds, err := c.Prepare(t.rawQuery)
		if err != nil {
			return err
		}
		if st, ok = ds.(*sqlite3.SQLiteStmt); !ok {
			ds.Close()
			return errNotGoSQLite
		}
		if t.s.wraw == nil {
			t.s.wraw = make(map[string]*sqlite3.SQLiteStmt)
		}
		t.s.wraw[t.rawQuery] = st
	}
	var err error
	t.rawRes, err = st.ExecContext(t.ctx, t.rawArgs)
	return err
}

// PutLink inserts or replaces the link of l.SourceID. A target already linked to another
// source record of the flow gives an error wrapping ErrTargetLinked; the Tx stays usable.
func (t *sqliteTx) PutLink(l *Link) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.putChecked(l)
}

// putChecked is PutLink with the Tx's lock held.
func (t *sqliteTx) putChecked(l *Link) error {
	if l == nil || l.Flow == "" || l.SourceID == "" || l.TargetID == "" {
		return errors.New("put link: a link needs a flow, a source id and a target id")
	}
	if t.done {
		return fmt.Errorf("put link of flow %q, source %q: %w", l.Flow, l.SourceID, errTxDone)
	}
	return t.put(l, "", "")
}

// encodeBase returns the stored form of l's base: binary, or JSON text for a base that has
// more than plain values. The keys it has no number for yet are numbered in the order of their
// names, so that a state written twice the same way has the same numbers.
func (t *sqliteTx) encodeBase(l *Link) (any, error) {
	out, m, unknown, ok := binaryBaseOf(&t.binary, l, t.knownKey)
	if len(unknown) > 0 {
		for _, k := range unknown {
			if _, err := t.keyNumber(k); err != nil {
				return nil, err
			}
		}
		out, m, _, ok = binaryBaseOf(&t.binary, l, t.knownKey)
	}
	switch {
	case !ok:
		return t.bases.encode(m)
	case out == nil:
		return emptyBase, nil
	}
	return t.columns.base.set(out), nil
}

// emptyBase is the stored form of a base without properties (not NULL: a nil []byte is),
// boxed once: a []byte put in an any is copied to the heap each time.
var emptyBase any = []byte{}

// put writes the row of a link. rawBase and rawTime, when not "", are stored as the link's
// base and time, as they are: the text of schema 8 that did not decode.
func (t *sqliteTx) put(l *Link, rawBase, rawTime string) error {
	v, err := t.values(l, rawBase, rawTime)
	if err != nil {
		return err
	}
	return t.putValues(l, v)
}

// putValues writes the row of a link, of the stored forms v of its columns.
func (t *sqliteTx) putValues(l *Link, v linkValues) error {
	if l.storedTarget == l.TargetID { // TargetID is not empty
		// A link read from the store, saved again with its ids (a merge): an upsert would
		// also rewrite the entry of the unchanged target id in its index, nearly doubling the
		// pages a run that merges writes.
		res, err := t.execLink(sqlUpdateLink, v.base, v.sh, v.th, v.updated, l.LinkedIn, l.MergedIn, v.made, v.flow, l.SourceID, v.target)
		if err != nil {
			return fmt.Errorf("put link of flow %q, source %q: %w", l.Flow, l.SourceID, err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 1 {
			return nil
		}
		// Gone or relinked since it was read: insert it as any other.
	}
	if _, err := t.execLink(sqlPutLink, v.flow, l.SourceID, v.target, v.base, v.sh, v.th, v.updated, l.LinkedIn, l.MergedIn, v.made); err != nil {
		return t.putFailed(l, v, err)
	}
	return nil
}

// putFailed returns the error of a link's insert: ErrTargetLinked, naming the source the
// target is linked to, for a target already linked. Apart from put, whose error variable
// errors.As would move to the heap on every link.
func (t *sqliteTx) putFailed(l *Link, v linkValues, err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique {
		var other string
		if t.conn.QueryRowContext(t.ctx, "SELECT source_id FROM link_rows WHERE flow = ? AND target_id = ?",
			v.flow, v.target).Scan(&other) == nil {
			return fmt.Errorf("link flow %q source %q to target %q: the target is already linked to source %q: %w",
				l.Flow, l.SourceID, l.TargetID, other, ErrTargetLinked)
		}
	}
	return fmt.Errorf("put link of flow %q, source %q: %w", l.Flow, l.SourceID, err)
}

// linkValues are the stored forms of a link's columns.
type linkValues struct {
	flow                                int64
	base, target, sh, th, updated, made any
}

// values returns the stored forms of a link's columns (see put for rawBase and rawTime). The
// bytes of the base, the digests and the target id are the Tx's buffers, valid until the next
// call.
func (t *sqliteTx) values(l *Link, rawBase, rawTime string) (linkValues, error) {
	flow, err := t.flowNumber(l.Flow)
	if err != nil {
		return linkValues{}, fmt.Errorf("put link of flow %q, source %q: %w", l.Flow, l.SourceID, err)
	}
	v := linkValues{flow: flow}
	if rawBase != "" {
		v.base = rawBase
	} else if v.base, err = t.encodeBase(l); err != nil {
		return linkValues{}, fmt.Errorf("put link of flow %q, source %q: base: %w", l.Flow, l.SourceID, err)
	}
	t.columns.set(l, &v)
	if rawTime != "" {
		v.updated = rawTime
	}
	return v, nil
}

// PutLinks puts links as PutLink puts each, in order, up to the first link PutLink refuses,
// whose error it returns. Each link is one execution of the statement the store keeps
// prepared: a statement of several links (a multi-row INSERT, with or without its upsert)
// cost more CPU per link than this for links of the benchmark's shape (about 8.3 µs against
// 6.9 with 2 or 50 links a statement, BenchmarkPutProductLinks' links), so fewer statements
// would be slower here; PostgreSQL's PutLinks, where a statement is a round trip, has them.
func (t *sqliteTx) PutLinks(links []*Link) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(links) >= aheadMin && t.s != nil && !t.done {
		return t.putAhead(links)
	}
	for _, l := range links {
		if err := t.putChecked(l); err != nil {
			return err
		}
	}
	return nil
}

// DeleteLink forgets the link of a source record; a missing link is not an error.
func (t *sqliteTx) DeleteLink(flow, sourceID string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.exec(sqlDeleteLink, flow, sourceID); err != nil {
		return fmt.Errorf("delete link of flow %q, source %q: %w", flow, sourceID, err)
	}
	return nil
}

// AddIntent records an intent and returns its id, which is never reused. A zero Created is
// the time of the call; in.ID is ignored.
func (t *sqliteTx) AddIntent(in *Intent) (int64, error) {
	if in == nil {
		return 0, errors.New("add intent: an intent needs a flow")
	}
	ids, err := t.AddIntents([]Intent{*in})
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

const (
	// sqlAddIntents records a row of intents (?3) of a flow (?2), ?1 of them: its ids follow
	// the highest ever handed out, as AUTOINCREMENT knows it, and the row is keyed by its last.
	sqlAddIntents = `INSERT INTO intent_batches (last_id, count, flow, items, remaining)
		VALUES (max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'intent_batches'), 0),
			coalesce((SELECT max(last_id) FROM intent_batches), 0)) + ?1, ?1, ?2, ?3, ?1)`
	sqlDeleteIntentRow = `DELETE FROM intent_batches WHERE last_id = ?`
	// sqlDeleteWholeRow deletes the row of exactly the ids last_id-count+1 .. last_id.
	sqlDeleteWholeRow = `DELETE FROM intent_batches WHERE last_id = ? AND count = ?`
	sqlIntentRowOf    = `SELECT last_id, count, flow, items FROM intent_batches WHERE last_id >= ? ORDER BY last_id LIMIT 1`
	sqlSetIntentRow   = `UPDATE intent_batches SET items = ?, remaining = ? WHERE last_id = ?`
)

// AddIntents records intents as AddIntent records each and returns their ids in order: the
// intents of a flow, one after another, are one row (see intentbatch.go), so a batch of a
// run is one statement. Every intent is checked before any is written.
func (t *sqliteTx) AddIntents(ins []Intent) ([]int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(ins) == 0 {
		return []int64{}, nil
	}
	for i := range ins {
		if err := checkIntent(&ins[i]); err != nil {
			return nil, err
		}
	}
	if t.done {
		return nil, fmt.Errorf("add intents of flow %q: %w", ins[0].Flow, errTxDone)
	}
	ids := make([]int64, len(ins))
	now := sync.OnceValue(t.now) // one time for the intents of a call that have none
	for from := 0; from < len(ins); {
		to := from + 1
		for to < len(ins) && ins[to].Flow == ins[from].Flow {
			to++
		}
		e := t.intentEncoder()
		e.reset()
		e.grow(ins[from:to])
		for i := from; i < to; i++ {
			e.add(&ins[i], int64(i-from), now)
		}
		res, err := t.exec(sqlAddIntents, int64(to-from), ins[from].Flow, e.buf)
		var se sqlite3.Error
		if errors.As(err, &se) && se.Code == sqlite3.ErrMismatch { // past the largest integer
			err = errors.New("the intent ids are used up")
		}
		if err != nil {
			return nil, fmt.Errorf("add intents of flow %q: %w", ins[from].Flow, err)
		}
		last, err := res.LastInsertId()
		if err != nil {
			return nil, fmt.Errorf("add intents of flow %q: %w", ins[from].Flow, err)
		}
		for i := from; i < to; i++ {
			ids[i] = last - int64(to-1-i)
		}
		from = to
	}
	return ids, nil
}

// intentEncoder returns the encoder of the rows of intents: the store's, whose buffer the
// Txs reuse (a row of a batch of a run takes some hundred kilobytes), or one of the Tx's own
// for a migration's.
func (t *sqliteTx) intentEncoder() *intentEncoder {
	if t.intents == nil {
		t.intents = &intentEncoder{}
	}
	return t.intents
}

// now is the store's clock (a migration's Tx has no store).
func (t *sqliteTx) now() time.Time {
	if t.s == nil {
		return time.Now()
	}
	return t.s.now()
}

// DeleteIntent forgets an intent, once its record is linked; a missing one is not an error.
func (t *sqliteTx) DeleteIntent(id int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.deleteIntents([]int64{id}); err != nil {
		return fmt.Errorf("delete intent %d: %w", id, err)
	}
	return nil
}

// DeleteIntents deletes intents by id; missing ones are not an error. The ids of a whole row,
// in order (a batch whose creates all settled), take one statement; others take a look at each
// row they are of, which is deleted when none of its intents is left and rewritten without them
// else, so that the others stay for the recovery of a killed run.
func (t *sqliteTx) DeleteIntents(ids []int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.deleteIntents(ids); err != nil {
		return fmt.Errorf("delete intents: %w", err)
	}
	return nil
}

func (t *sqliteTx) deleteIntents(ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	if t.done {
		return errTxDone
	}
	if consecutive(ids) {
		res, err := t.exec(sqlDeleteWholeRow, ids[len(ids)-1], int64(len(ids)))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err == nil && n == 1 {
			return nil
		}
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	for len(sorted) > 0 {
		var (
			last, count int64
			flow        string
			items       []byte
		)
		err := t.conn.QueryRowContext(t.ctx, sqlIntentRowOf, sorted[0]).Scan(&last, &count, &flow, &items)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // none of the ids left is recorded
		}
		if err != nil {
			return err
		}
		first := last - count + 1
		n := 0 // the ids of the row, from sorted[0]
		for n < len(sorted) && sorted[n] <= last {
			n++
		}
		gone := sorted[:n]
		sorted = sorted[n:]
		for len(gone) > 0 && gone[0] < first {
			gone = gone[1:] // before the row: not recorded
		}
		if len(gone) == 0 {
			continue
		}
		kept, n, err := t.intentEncoder().without(flow, first, items, gone)
		if err != nil {
			return fmt.Errorf("intents %d to %d: %w", first, last, err)
		}
		if n == 0 {
			_, err = t.exec(sqlDeleteIntentRow, last)
		} else {
			_, err = t.exec(sqlSetIntentRow, kept, int64(n), last)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// consecutive reports whether ids are the ids from the first on, one after another.
func consecutive(ids []int64) bool {
	for i, id := range ids {
		if id != ids[0]+int64(i) {
			return false
		}
	}
	return true
}

// SetWatermark sets the watermark of a side of a flow.
func (t *sqliteTx) SetWatermark(flow, side, value string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := checkSide(side); err != nil {
		return fmt.Errorf("set watermark of flow %q: %w", flow, err)
	}
	if _, err := t.exec(sqlSetWatermark, flow, side, value); err != nil {
		return fmt.Errorf("set watermark of flow %q: %w", flow, err)
	}
	return nil
}

// SetCounts records the counts of a flow.
func (t *sqliteTx) SetCounts(flow string, c Counts) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.exec(sqlSetCounts, flow, c.Source, c.Target, c.Skipped, c.SourceDeletions, c.TargetDeletions); err != nil {
		return fmt.Errorf("set counts of flow %q: %w", flow, err)
	}
	return nil
}

// ClearCounts forgets the counts of a flow; none recorded is not an error.
func (t *sqliteTx) ClearCounts(flow string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.exec(sqlClearCounts, flow); err != nil {
		return fmt.Errorf("clear counts of flow %q: %w", flow, err)
	}
	return nil
}

// PutDeadLetter records a failure: a new dead letter with one attempt, or one more attempt
// of a known one, which keeps its first time and takes the latest reason.
func (t *sqliteTx) PutDeadLetter(flow, side, recordID, reason string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := checkSide(side); err != nil {
		return fmt.Errorf("put dead letter of flow %q: %w", flow, err)
	}
	now := formatTime(t.s.now())
	delete(t.none, noneKey("dead_letters", flow, side))
	if _, err := t.exec(sqlPutDeadLetter, flow, side, recordID, reason, now, now); err != nil {
		return fmt.Errorf("put dead letter of flow %q, record %q: %w", flow, recordID, err)
	}
	return nil
}

// ClearDeadLetter forgets a failure; a missing one is not an error.
func (t *sqliteTx) ClearDeadLetter(flow, side, recordID string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if none, err := t.nothingToClear("dead_letters", flow, side); none || err != nil {
		if err != nil {
			return fmt.Errorf("clear dead letter of flow %q, record %q: %w", flow, recordID, err)
		}
		return nil
	}
	if _, err := t.exec(sqlClearDeadLetter, flow, side, recordID); err != nil {
		return fmt.Errorf("clear dead letter of flow %q, record %q: %w", flow, recordID, err)
	}
	return nil
}

// PutWaiting records that a record waits, since now or since it started waiting.
func (t *sqliteTx) PutWaiting(flow, side, recordID, reason string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := checkSide(side); err != nil {
		return fmt.Errorf("put waiting record of flow %q: %w", flow, err)
	}
	delete(t.none, noneKey("waiting", flow, side))
	if _, err := t.exec(sqlPutWaiting, flow, side, recordID, reason, formatTime(t.s.now())); err != nil {
		return fmt.Errorf("put waiting record of flow %q, record %q: %w", flow, recordID, err)
	}
	return nil
}

// ClearWaiting forgets a waiting record; a missing one is not an error.
func (t *sqliteTx) ClearWaiting(flow, side, recordID string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if none, err := t.nothingToClear("waiting", flow, side); none || err != nil {
		if err != nil {
			return fmt.Errorf("clear waiting record of flow %q, record %q: %w", flow, recordID, err)
		}
		return nil
	}
	if _, err := t.exec(sqlClearWaiting, flow, side, recordID); err != nil {
		return fmt.Errorf("clear waiting record of flow %q, record %q: %w", flow, recordID, err)
	}
	return nil
}

// StartRun logs a run with status "running", started now, and returns its id. A run killed
// before FinishRun stays "running" with no finish time.
func (t *sqliteTx) StartRun() (int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	worker := ""
	if w := t.s.worker.Load(); w != nil {
		worker = *w
	}
	res, err := t.exec(sqlStartRun, formatTime(t.s.now()), worker)
	if err != nil {
		return 0, fmt.Errorf("start run: %w", err)
	}
	return res.LastInsertId()
}

// FinishRun records the end of a run, now.
func (t *sqliteTx) FinishRun(id int64, status string, summary json.RawMessage) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	sum, err := jsonText(summary)
	if err != nil {
		return fmt.Errorf("finish run %d: summary: %w", id, err)
	}
	res, err := t.exec(sqlFinishRun, formatTime(t.s.now()), status, sum, id)
	if err != nil {
		return fmt.Errorf("finish run %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("finish run %d: there is no such run", id)
	}
	return nil
}

// Commit commits durably. It is not interrupted by the end of the Begin context: once a
// commit starts, the caller must learn whether it happened. A failed Commit rolls back.
func (t *sqliteTx) Commit() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return errTxDone
	}
	_, err := t.conn.ExecContext(context.WithoutCancel(t.ctx), "COMMIT")
	if err != nil {
		t.conn.ExecContext(context.WithoutCancel(t.ctx), "ROLLBACK")
		err = fmt.Errorf("commit the link state: %w", err)
	} else {
		t.s.learn(t.newFlows, t.newKeys)
	}
	t.end()
	return err
}

// Rollback discards the Tx. After Commit or Rollback it does nothing, so that it can be
// deferred.
func (t *sqliteTx) Rollback() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return nil
	}
	_, err := t.conn.ExecContext(context.WithoutCancel(t.ctx), "ROLLBACK")
	if err != nil && t.inTx() {
		err = fmt.Errorf("roll back the link state: %w", err)
	} else {
		err = nil // SQLite had already rolled back (after an I/O error, say)
	}
	t.end()
	return err
}

// inTx reports whether SQLite still has a transaction open on the connection.
func (t *sqliteTx) inTx() bool {
	open := false
	t.conn.Raw(func(dc any) error {
		if c, ok := dc.(*sqlite3.SQLiteConn); ok {
			open = !c.AutoCommit()
		}
		return nil
	})
	return open
}

// end releases the writer token; the connection stays the store's, with its statements, for
// the next Tx. A connection still in a transaction (a ROLLBACK failed) is discarded rather
// than handed to the next Tx.
func (t *sqliteTx) end() {
	if t.s == nil { // a migration's: the caller owns the connection
		t.closeStatements()
		t.done = true
		return
	}
	bad := t.conn.Raw(func(dc any) error {
		if c, ok := dc.(*sqlite3.SQLiteConn); ok && !c.AutoCommit() {
			return driver.ErrBadConn
		}
		return nil
	})
	if bad != nil {
		t.s.dropWriterConn()
	} else if len(t.stmts) > maxKeptStatements {
		t.closeStatements()
		t.s.wstmts = nil
	}
	t.done = true
	<-t.s.writer
}

// maxKeptStatements bounds the statements kept with the connection of the Txs: more would
// be statements of texts made for one Tx (none are today), which are closed then.
const maxKeptStatements = 100

func (t *sqliteTx) closeStatements() {
	for _, st := range t.stmts {
		st.Close()
	}
}

func checkSide(side string) error {
	if side != Source && side != Target {
		return fmt.Errorf("side is %q; it must be %q or %q", side, Source, Target)
	}
	return nil
}

// jsonText is the text to store for a JSON value, nil (NULL) for none.
func jsonText(v json.RawMessage) (any, error) {
	if len(v) == 0 {
		return nil, nil
	}
	if !compactJSON(v) && !json.Valid(v) { // compact JSON, as json.Marshal writes it, is checked faster
		return nil, errors.New("not valid JSON")
	}
	return string(v), nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeFormat)
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// unique returns ids without repeats, in their first order.
func unique(ids []string) []string {
	seen := make(map[string]struct{}, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if _, ok := seen[id]; !ok {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out
}
