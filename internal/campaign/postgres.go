package campaign

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// PostgresTarget is a target system in a PostgreSQL database (the connector postgres), stamped
// by a trigger like the SQLite store: its ids are text the database makes (gen_random_uuid),
// read back through RETURNING.
type PostgresTarget struct {
	DSN string // an empty database the campaign may fill
}

const storePostgresYAML = `system: store
name: Campaign Store
connector: postgres
dsn: ${STORE_DSN}
entities:
  Thing:
    table: things
    id: id
    updated: modifiedOn
`

const storePostgresSQL = `
CREATE TABLE things (
    id           text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    sku          text,
    title        text,
    amount       integer,
    cost         numeric(10,2),
    "modifiedOn" timestamptz
);
CREATE INDEX things_modified_on ON things ("modifiedOn", id);
CREATE FUNCTION things_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (TG_OP = 'INSERT' AND NEW."modifiedOn" IS NULL)
        OR (TG_OP = 'UPDATE' AND NEW."modifiedOn" IS NOT DISTINCT FROM OLD."modifiedOn") THEN
        NEW."modifiedOn" := clock_timestamp();
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER things_stamp BEFORE INSERT OR UPDATE ON things FOR EACH ROW EXECUTE FUNCTION things_stamp();
`

// Setup creates the table and writes the store's system file.
func (p PostgresTarget) Setup(ctx context.Context, dir string) ([]string, error) {
	c, err := pgx.Connect(ctx, p.DSN)
	if err != nil {
		return nil, err
	}
	defer c.Close(ctx)
	if _, err := c.PgConn().Exec(ctx, storePostgresSQL).ReadAll(); err != nil {
		return nil, fmt.Errorf("creating the store's table: %w", err)
	}
	return []string{"STORE_DSN=" + p.DSN}, writeFiles(dir, map[string]string{"mappings/systems/store.yaml": storePostgresYAML})
}

// Props implements Target.
func (PostgresTarget) Props() [4]string { return [4]string{"sku", "title", "amount", "cost"} }

// Stop implements Target: the server is the caller's.
func (PostgresTarget) Stop() error { return nil }

// Side connects to the store's database.
func (p PostgresTarget) Side(ctx context.Context, dir string) (Side, error) {
	c, err := pgx.Connect(ctx, p.DSN)
	if err != nil {
		return nil, err
	}
	return &postgresSide{c: c}, nil
}

// postgresSide edits and reads the store's table directly, as its users' programs do.
type postgresSide struct{ c *pgx.Conn }

func (s *postgresSide) Create(ctx context.Context, it Item) error {
	_, err := s.c.Exec(ctx, `INSERT INTO things (sku, title, amount, cost) VALUES ($1, $2, $3, $4::numeric)`, it.Code, it.Name, it.Qty, it.Price)
	return err
}

func (s *postgresSide) set(ctx context.Context, col, code string, v any) (bool, error) {
	tag, err := s.c.Exec(ctx, `UPDATE things SET `+col+` = $1 WHERE sku = $2`, v, code)
	return tag.RowsAffected() > 0, err
}

func (s *postgresSide) SetName(ctx context.Context, code, name string) (bool, error) {
	return s.set(ctx, "title", code, name)
}

func (s *postgresSide) SetQty(ctx context.Context, code string, qty int64) (bool, error) {
	return s.set(ctx, "amount", code, qty)
}

func (s *postgresSide) Snapshot(ctx context.Context) (map[string][]Item, error) {
	rows, err := s.c.Query(ctx, `SELECT sku, coalesce(title, ''), coalesce(amount, 0)::bigint, coalesce(to_char(cost, 'FM999999990.00'), '0.00') FROM things`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]Item{}
	for rows.Next() {
		var it Item
		if err := rows.Scan(&it.Code, &it.Name, &it.Qty, &it.Price); err != nil {
			return nil, err
		}
		out[it.Code] = append(out[it.Code], it)
	}
	return out, rows.Err()
}

func (s *postgresSide) Close() error { return s.c.Close(context.Background()) }
