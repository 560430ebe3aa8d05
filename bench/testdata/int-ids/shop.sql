-- The integer-id target of scenario i: the items of shop.sql with an INTEGER PRIMARY KEY that
-- SQLite assigns on insert (a rowid alias), as a shop whose ids are numbers would have it. The
-- other columns, and the modified_at stamp the shop sets itself, are shop.sql's, so that the
-- id is the only difference from scenario a's target.
CREATE TABLE items (
    id          INTEGER PRIMARY KEY,
    sku         TEXT,
    title       TEXT,
    description TEXT,
    category    TEXT,
    brand       TEXT,
    barcode     TEXT,
    stock       TEXT,
    weight_kg   REAL,
    visible     BOOLEAN,
    price       TEXT,
    margin      REAL,
    handle      TEXT,
    modified_at TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX items_modified_at ON items (modified_at);
