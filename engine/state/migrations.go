package state

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// applicationID marks an SQLite file as a dataflow link state ("dflw" in ASCII), in the
// header field SQLite reserves for this. It is how Open tells our file from another
// application's database, which it must never modify.
const applicationID = 0x64666c77

// migration brings the schema from version-1 to version. Migrations are never edited once
// released: a state file written by an older dataflow replays the ones it lacks, in order.
type migration struct {
	version int
	stmts   []string
	// copy, when set, runs after stmts: the part of a migration SQL cannot do.
	copy func(ctx context.Context, conn *sql.Conn) error
	// after runs after copy.
	after []string
}

// migrations is the schema history; the last version is what this dataflow writes.
//
// Times are UTC text in a fixed-width RFC 3339 form (see formatTime), so that they read well
// in the sqlite3 shell and sort as text. Ids of intents and runs are AUTOINCREMENT so that a
// deleted id is never handed out again: an intent id may serve as an idempotency key in a
// system, and run ids are shown to people.
var migrations = []migration{
	{version: 1, stmts: []string{
		`CREATE TABLE links (
			flow        TEXT NOT NULL,
			source_id   TEXT NOT NULL,
			target_id   TEXT NOT NULL,
			base        TEXT NOT NULL DEFAULT '{}', -- JSON object: property key -> {"s":..,"t":..}
			source_hash TEXT NOT NULL DEFAULT '',
			target_hash TEXT NOT NULL DEFAULT '',
			updated     TEXT NOT NULL DEFAULT '',
			PRIMARY KEY (flow, source_id),
			UNIQUE (flow, target_id)
		)`,
		`CREATE TABLE intents (
			id      INTEGER PRIMARY KEY AUTOINCREMENT,
			flow    TEXT NOT NULL,
			side    TEXT NOT NULL CHECK (side IN ('source', 'target')),
			from_id TEXT NOT NULL,
			data    TEXT,
			created TEXT NOT NULL
		)`,
		`CREATE TABLE watermarks (
			flow  TEXT NOT NULL,
			side  TEXT NOT NULL CHECK (side IN ('source', 'target')),
			value TEXT NOT NULL,
			PRIMARY KEY (flow, side)
		) WITHOUT ROWID`,
		`CREATE TABLE dead_letters (
			flow      TEXT NOT NULL,
			side      TEXT NOT NULL CHECK (side IN ('source', 'target')),
			record_id TEXT NOT NULL,
			reason    TEXT NOT NULL,
			attempts  INTEGER NOT NULL,
			first     TEXT NOT NULL,
			last      TEXT NOT NULL,
			PRIMARY KEY (flow, side, record_id)
		)`,
		`CREATE TABLE waiting (
			flow      TEXT NOT NULL,
			side      TEXT NOT NULL CHECK (side IN ('source', 'target')),
			record_id TEXT NOT NULL,
			reason    TEXT NOT NULL,
			since     TEXT NOT NULL,
			PRIMARY KEY (flow, side, record_id)
		)`,
		`CREATE TABLE runs (
			id       INTEGER PRIMARY KEY AUTOINCREMENT,
			started  TEXT NOT NULL,
			finished TEXT,          -- NULL while running, or when the run was killed
			status   TEXT NOT NULL,
			summary  TEXT           -- JSON
		)`,
	}},
	// Intents are listed per flow at the start of every flow's run, to recover creates a
	// killed run left unlinked.
	{version: 2, stmts: []string{
		`CREATE INDEX intents_by_flow ON intents (flow, id)`,
	}},
	// The delete check of a flow compares record counts between runs (see Counts).
	{version: 3, stmts: []string{
		`CREATE TABLE counts (
			flow    TEXT PRIMARY KEY,
			source  INTEGER NOT NULL, -- -1: not counted
			target  INTEGER NOT NULL,
			skipped INTEGER NOT NULL
		) WITHOUT ROWID`,
	}},
	// A run tells the links it made and merged by their run ids (see Link).
	{version: 4, stmts: []string{
		`ALTER TABLE links ADD COLUMN linked_in INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE links ADD COLUMN merged_in INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE links ADD COLUMN made TEXT NOT NULL DEFAULT ''`,
	}},
	// The delete check also compares the numbers of deletions of systems that count them.
	// Intents live from a batch's start to its links' commit, so the table holds a few
	// batches at most: listing them reads it whole, and an index cost two more writes per
	// created record.
	{version: 5, stmts: []string{
		`ALTER TABLE counts ADD COLUMN source_deletions INTEGER NOT NULL DEFAULT -1`,
		`ALTER TABLE counts ADD COLUMN target_deletions INTEGER NOT NULL DEFAULT -1`,
		`DROP INDEX IF EXISTS intents_by_flow`,
	}},
	// A flow's reconcile (a read of both sides whole, whatever the watermarks) runs on a
	// schedule: the state keeps when each flow last had one.
	{version: 6, stmts: []string{
		`CREATE TABLE reconciles (
			flow TEXT PRIMARY KEY,
			at   TEXT NOT NULL
		) WITHOUT ROWID`,
	}},
	// Changes the circuit breaker refused wait for a person's decision (see Pending).
	{version: 7, stmts: []string{
		`CREATE TABLE pending (
			id      INTEGER PRIMARY KEY AUTOINCREMENT,
			flow    TEXT NOT NULL,
			created TEXT NOT NULL,
			status  TEXT NOT NULL CHECK (status IN ('pending', 'approved')),
			summary TEXT NOT NULL,
			links   TEXT NOT NULL -- JSON: [{"s": source id, "t": target id, "m": missing side}]
		)`,
		// The fingerprint of the property table a flow's links were last all merged under:
		// another one makes the next run merge every linked pair again (an edited mapping).
		`CREATE TABLE fingerprints (
			flow  TEXT PRIMARY KEY,
			value TEXT NOT NULL
		) WITHOUT ROWID`,
		// The systems the links are of: a run against another database is refused.
		`CREATE TABLE systems (
			system    TEXT PRIMARY KEY,
			connector TEXT NOT NULL,
			location  TEXT NOT NULL -- a path or a URL, never a password
		) WITHOUT ROWID`,
	}},
	// Several processes share a state (dataflow serve workers on PostgreSQL): a run records
	// the one that made it. A SQLite state has one process at a time, but shows the same.
	{version: 8, stmts: []string{
		`ALTER TABLE runs ADD COLUMN worker TEXT NOT NULL DEFAULT ''`,
	}},
	// Compact link rows (see linkcodec.go): a link took 776 bytes for a product of the
	// benchmark, more than three times the target's own row, and took the page cache with it.
	// The flow is a number (its name was in the row and in both of its indexes), the base
	// binary with its keys numbered, digests their 16 bytes, the time an integer. The table is
	// WITHOUT ROWID, keyed by the flow and the source id: one index fewer than a rowid table
	// with a key of text, and the lookups by source id read the row where they find the key.
	// The view links shows the rows as schema 8 did, for people in the sqlite3 shell and
	// scripts that look a target id up (the base stays binary there).
	{version: 9, stmts: []string{
		`CREATE TABLE flows (
			id   INTEGER PRIMARY KEY,
			name TEXT NOT NULL UNIQUE
		)`,
		`CREATE TABLE base_keys (
			id   INTEGER PRIMARY KEY,
			name TEXT NOT NULL UNIQUE -- a property key of the bases
		)`,
		`CREATE TABLE link_rows (
			flow        INTEGER NOT NULL, -- flows.id
			source_id   TEXT NOT NULL,
			target_id   BLOB NOT NULL,    -- the bytes of an even number of lower-case hex digits, else text
			base        BLOB NOT NULL,    -- binary, keys by base_keys.id; or JSON text as in schema 8
			source_hash BLOB NOT NULL,    -- 16 bytes for a digest of 32 lower-case hex digits, else text
			target_hash BLOB NOT NULL,
			updated     INTEGER,          -- nanoseconds since 1970 UTC, NULL for none; text out of range
			linked_in   INTEGER NOT NULL,
			merged_in   INTEGER NOT NULL,
			made        INTEGER NOT NULL, -- 0 none, 1 source, 2 target; else text
			PRIMARY KEY (flow, source_id)
		) WITHOUT ROWID`,
		`CREATE UNIQUE INDEX link_targets ON link_rows (flow, target_id)`,
	}, copy: copyLinksToRows, after: []string{
		`DROP TABLE links`,
		`CREATE VIEW links AS
			SELECT f.name AS flow, l.source_id,
				CASE typeof(l.target_id) WHEN 'blob' THEN lower(hex(l.target_id)) ELSE l.target_id END AS target_id, l.base,
				CASE typeof(l.source_hash) WHEN 'blob' THEN lower(hex(l.source_hash)) ELSE l.source_hash END AS source_hash,
				CASE typeof(l.target_hash) WHEN 'blob' THEN lower(hex(l.target_hash)) ELSE l.target_hash END AS target_hash,
				CASE typeof(l.updated) WHEN 'integer' THEN strftime('%Y-%m-%dT%H:%M:%fZ', l.updated / 1e9, 'unixepoch')
					ELSE coalesce(l.updated, '') END AS updated,
				l.linked_in, l.merged_in,
				CASE l.made WHEN 0 THEN '' WHEN 1 THEN 'source' WHEN 2 THEN 'target' ELSE l.made END AS made
			FROM link_rows l JOIN flows f ON f.id = l.flow`,
	}},
	// The intents AddIntents records in one call are one row (see intentbatch.go): a row per
	// intent cost a statement's values and a cgo crossing per created record. A row holds the
	// ids last_id-count+1 .. last_id, and AUTOINCREMENT on the last keeps every id handed out
	// from being handed out again, those of intents deleted since too. The intents of schema 9
	// become rows of one, and the sequence goes on from theirs.
	{version: 10, stmts: []string{
		`CREATE TABLE intent_batches (
			last_id INTEGER PRIMARY KEY AUTOINCREMENT, -- the id of the row's last intent
			count   INTEGER NOT NULL,                  -- the ids of the row: last_id-count+1 .. last_id
			flow    TEXT NOT NULL,
			items   BLOB NOT NULL,                     -- the intents left, as intentbatch.go encodes them
			remaining INTEGER NOT NULL                 -- how many: sum(remaining) counts the pending intents
		)`,
	}, copy: copyIntentsToBatches, after: []string{
		`INSERT INTO sqlite_sequence (name, seq) SELECT 'intent_batches', 0
			WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'intent_batches')`,
		`UPDATE sqlite_sequence SET seq = max(seq,
				coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'intents'), 0),
				coalesce((SELECT max(id) FROM intents), 0))
			WHERE name = 'intent_batches'`,
		`DROP TABLE intents`,
	}},
}

// schemaVersion is the version this dataflow writes and reads.
var schemaVersion = migrations[len(migrations)-1].version

// migrate brings the state file on conn from version from to the last of ms, in the write
// transaction the caller holds, so that a kill during a migration leaves the old version
// intact. A new file (from 0) also gets its application id, in the same transaction.
func migrate(ctx context.Context, conn *sql.Conn, from int, ms []migration) error {
	if from == 0 {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", applicationID)); err != nil {
			return err
		}
	}
	to := from
	for _, m := range ms {
		if m.version <= from {
			continue
		}
		for _, stmt := range m.stmts {
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("schema %d: %w", m.version, err)
			}
		}
		if m.copy != nil {
			if err := m.copy(ctx, conn); err != nil {
				return fmt.Errorf("schema %d: %w", m.version, err)
			}
		}
		for _, stmt := range m.after {
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("schema %d: %w", m.version, err)
			}
		}
		to = m.version
	}
	if to == from {
		return nil
	}
	// PRAGMA takes no parameters; to is an int from our own table.
	_, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", to))
	return err
}

// copyLinksToRows copies the links of schema 8 into the rows of schema 9, a thousand at a time
// in key order. A base that does not decode (a corrupt one) is kept as its text, which gives
// its link the error it gave before; so is a time that does not parse.
func copyLinksToRows(ctx context.Context, conn *sql.Conn) error {
	w := &sqliteTx{ctx: ctx, conn: conn, stmts: make(map[string]*sql.Stmt), dict: emptyDictionary}
	defer w.closeStatements()
	const page = `SELECT flow, source_id, target_id, base, source_hash, target_hash, updated, linked_in, merged_in, made
		FROM links WHERE (flow, source_id) > (?, ?) ORDER BY flow, source_id LIMIT 1000`
	type old struct {
		l       Link
		base    []byte
		updated string
	}
	var codec baseCodec
	afterFlow, afterSource := "", ""
	for {
		rows, err := conn.QueryContext(ctx, page, afterFlow, afterSource)
		if err != nil {
			return err
		}
		var batch []old
		for rows.Next() {
			var o old
			if err := rows.Scan(&o.l.Flow, &o.l.SourceID, &o.l.TargetID, &o.base, &o.l.SourceHash, &o.l.TargetHash, &o.updated,
				&o.l.LinkedIn, &o.l.MergedIn, &o.l.Made); err != nil {
				rows.Close()
				return err
			}
			batch = append(batch, o)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, o := range batch {
			var err error
			l, rawBase := o.l, string(o.base)
			if base, err := codec.decode(o.base); err == nil {
				l.Base, rawBase = base, ""
			}
			var rawTime string
			if l.Updated, err = parseTime(o.updated); err != nil {
				l.Updated = time.Time{}
				rawTime = o.updated
			}
			if err := w.put(&l, rawBase, rawTime); err != nil {
				return fmt.Errorf("copy the link of flow %q, source %q: %w", l.Flow, l.SourceID, err)
			}
		}
		if len(batch) < 1000 {
			return nil
		}
		afterFlow, afterSource = batch[len(batch)-1].l.Flow, batch[len(batch)-1].l.SourceID
	}
}

// copyIntentsToBatches copies the intents of schema 9 into rows of one intent each, with their
// ids and their times as stored (an intent's id and time make the idempotency key of its
// create).
func copyIntentsToBatches(ctx context.Context, conn *sql.Conn) error {
	rows, err := conn.QueryContext(ctx, "SELECT id, flow, side, from_id, data, created FROM intents ORDER BY id")
	if err != nil {
		return err
	}
	type old struct {
		id                          int64
		flow, side, fromID, created string
		data                        []byte
	}
	var all []old
	for rows.Next() {
		var (
			o    old
			data sql.NullString
		)
		if err := rows.Scan(&o.id, &o.flow, &o.side, &o.fromID, &data, &o.created); err != nil {
			rows.Close()
			return err
		}
		if data.Valid {
			o.data = []byte(data.String)
		}
		all = append(all, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var e intentEncoder
	for _, o := range all {
		e.reset()
		e.appendEntry(0, o.side, o.fromID, o.data, o.created)
		if _, err := conn.ExecContext(ctx, "INSERT INTO intent_batches (last_id, count, flow, items, remaining) VALUES (?, 1, ?, ?, 1)",
			o.id, o.flow, e.buf); err != nil {
			return fmt.Errorf("copy intent %d: %w", o.id, err)
		}
	}
	return nil
}
