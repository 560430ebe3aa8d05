package pgstate

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The state lives in a schema of its own, beside whatever else the database holds (River's
// job tables go to the public schema).
const schema = "dataflow_state"

// migrateKey is the transaction-level advisory lock under which a store migrates, so that
// workers starting together migrate once.
const migrateKey int64 = 0x64666d6967726174

// migrations is the schema history, never edited once released; version i+1 is
// migrations[i]. Times are timestamptz; bases, summaries and data are text (the bytes the
// engine wrote, which jsonb would reorder). Ids are identities: never handed out twice.
var migrations = [][]string{
	{
		`CREATE TABLE dataflow_state.meta (
			key   text PRIMARY KEY,
			value text NOT NULL
		)`,
		`CREATE TABLE dataflow_state.links (
			flow        text COLLATE "C" NOT NULL,
			source_id   text COLLATE "C" NOT NULL,
			target_id   text COLLATE "C" NOT NULL,
			base        text NOT NULL DEFAULT '{}',
			source_hash text NOT NULL DEFAULT '',
			target_hash text NOT NULL DEFAULT '',
			updated     timestamptz,
			linked_in   bigint NOT NULL DEFAULT 0,
			merged_in   bigint NOT NULL DEFAULT 0,
			made        text NOT NULL DEFAULT '',
			PRIMARY KEY (flow, source_id),
			CONSTRAINT links_target UNIQUE (flow, target_id)
		)`,
		`CREATE TABLE dataflow_state.intents (
			id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			flow    text COLLATE "C" NOT NULL,
			side    text NOT NULL CHECK (side IN ('source', 'target')),
			from_id text COLLATE "C" NOT NULL,
			data    text,
			created timestamptz NOT NULL
		)`,
		`CREATE TABLE dataflow_state.watermarks (
			flow  text COLLATE "C" NOT NULL,
			side  text NOT NULL CHECK (side IN ('source', 'target')),
			value text NOT NULL,
			PRIMARY KEY (flow, side)
		)`,
		`CREATE TABLE dataflow_state.dead_letters (
			flow      text COLLATE "C" NOT NULL,
			side      text NOT NULL CHECK (side IN ('source', 'target')),
			record_id text COLLATE "C" NOT NULL,
			reason    text NOT NULL,
			attempts  integer NOT NULL,
			first     timestamptz NOT NULL,
			last      timestamptz NOT NULL,
			PRIMARY KEY (flow, side, record_id)
		)`,
		`CREATE TABLE dataflow_state.waiting (
			flow      text COLLATE "C" NOT NULL,
			side      text NOT NULL CHECK (side IN ('source', 'target')),
			record_id text COLLATE "C" NOT NULL,
			reason    text NOT NULL,
			since     timestamptz NOT NULL,
			PRIMARY KEY (flow, side, record_id)
		)`,
		// flows and token: what a worker's run was leased (see Lease), to tell afterwards
		// which runs of a flow there were and that none overlapped.
		`CREATE TABLE dataflow_state.runs (
			id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			started  timestamptz NOT NULL,
			finished timestamptz,
			status   text NOT NULL,
			summary  text,
			worker   text NOT NULL DEFAULT '',
			flows    text[] NOT NULL DEFAULT '{}',
			tokens   bigint[] NOT NULL DEFAULT '{}'
		)`,
		`CREATE TABLE dataflow_state.counts (
			flow             text COLLATE "C" PRIMARY KEY,
			source           bigint NOT NULL,
			target           bigint NOT NULL,
			skipped          integer NOT NULL,
			source_deletions bigint NOT NULL DEFAULT -1,
			target_deletions bigint NOT NULL DEFAULT -1
		)`,
		`CREATE TABLE dataflow_state.reconciles (
			flow text COLLATE "C" PRIMARY KEY,
			at   timestamptz NOT NULL
		)`,
		`CREATE TABLE dataflow_state.pending (
			id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			flow    text COLLATE "C" NOT NULL,
			created timestamptz NOT NULL,
			status  text NOT NULL CHECK (status IN ('pending', 'approved')),
			summary text NOT NULL,
			links   text NOT NULL
		)`,
		`CREATE TABLE dataflow_state.fingerprints (
			flow  text COLLATE "C" PRIMARY KEY,
			value text NOT NULL
		)`,
		`CREATE TABLE dataflow_state.systems (
			system    text COLLATE "C" PRIMARY KEY,
			connector text NOT NULL,
			location  text NOT NULL
		)`,
		// The lease of each flow: the worker that runs it, until when, and the fencing token,
		// one more at every take-over.
		`CREATE TABLE dataflow_state.leases (
			flow    text COLLATE "C" PRIMARY KEY,
			token   bigint NOT NULL,
			worker  text NOT NULL,
			expires timestamptz NOT NULL
		)`,
	},
	// The intents AddIntents records in one call are one row, as SQLite keeps them
	// (state.IntentEncoder): a row per intent cost six array elements per created record. ids
	// are the row's ids (from the sequence of intents, which the old rows keep, so that no id
	// is handed out twice), first_id and last_id the least and the greatest; items the
	// intents left, which a partial delete rewrites. The old table stays for the intents of
	// schema 1 (read beside the rows until they are deleted).
	{
		`CREATE TABLE dataflow_state.intent_batches (
			first_id bigint PRIMARY KEY,
			last_id  bigint NOT NULL,
			flow     text COLLATE "C" NOT NULL,
			ids      bigint[] NOT NULL,
			items    bytea NOT NULL
		)`,
	},
}

// schemaVersion is the version this dataflow writes and reads.
var schemaVersion = len(migrations)

// schemaVersionOf reads the state's version: 0 when there is no state in the database.
func schemaVersionOf(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int, error) {
	// Asked without touching a missing table: that error would abort the caller's transaction.
	var exists bool
	if err := q.QueryRow(ctx, "SELECT to_regclass('"+schema+".meta') IS NOT NULL").Scan(&exists); err != nil || !exists {
		return 0, err
	}
	var v int
	err := q.QueryRow(ctx, "SELECT coalesce(max(value::int), 0) FROM "+schema+".meta WHERE key = 'version'").Scan(&v)
	return v, err
}

// migrate brings the schema up to date in one transaction, so that a kill during a migration
// leaves the old version intact.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrateKey); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema); err != nil {
		return err
	}
	from, err := schemaVersionOf(ctx, tx)
	if err != nil {
		return err
	}
	if from > schemaVersion {
		return fmt.Errorf("it was written by a newer dataflow (schema %d, this one knows %d); run that dataflow or a newer one", from, schemaVersion)
	}
	if from == schemaVersion {
		return nil
	}
	for v := from + 1; v <= schemaVersion; v++ {
		for _, stmt := range migrations[v-1] {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("schema %d: %w", v, err)
			}
		}
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+schema+".meta (key, value) VALUES ('version', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
		fmt.Sprint(schemaVersion)); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
