-- The source system of the model-based sync test (engine/sync/model_test.go): one table of
-- items with integer ids, a unique code (the merge key) and a last-modified stamp, and the
-- items' parts as child rows (the list `parts`; ids never reused).
-- The clock table holds the test's fake time; source-stamped.sql adds triggers that stamp
-- every write with it, the way many systems stamp their records themselves.
CREATE TABLE items (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    code       TEXT UNIQUE NOT NULL,
    name       TEXT,
    qty        INTEGER,
    price      NUMERIC(10,2),
    active     BOOLEAN,
    updated_at TEXT,
    thing_id   TEXT -- the store's id of the item's thing, in the flow-back variant of the model test
);
CREATE INDEX items_updated_at ON items (updated_at);
CREATE TABLE parts (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id INTEGER NOT NULL,
    label   TEXT NOT NULL,
    qty     INTEGER
);
CREATE INDEX parts_item ON parts (item_id);
CREATE TABLE clock (now TEXT NOT NULL);
INSERT INTO clock VALUES ('2025-01-01T00:00:00.000000Z');
