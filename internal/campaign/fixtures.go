package campaign

// The campaign's systems and dataflow. Neither side has a unique constraint on the code, so
// that a duplicate the engine made would show instead of failing. Both stamp every change with
// the time, as real systems do, so runs read incrementally by watermark.

const dataflowYAML = `dataflow: campaign
source: shop
target: store
flows:
  - id: items-to-things
    source: Item
    target: Thing
    sync: both
    create: {target: always, source: always}
    merge:
      - [{source: code, target: %s}]
    conflict: newest
    delete: keep
    properties:
      - {source: code, target: %s}
      - {source: name, target: %s}
      - {source: qty, target: %s}
      - {source: price, target: %s}
`

const shopYAML = `system: shop
name: Campaign Shop
connector: sqlite
path: shop.db
init: shop.sql
entities:
  Item:
    table: items
    id: id
    updated: updated_at
`

const shopSQL = `
CREATE TABLE items (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    code       TEXT NOT NULL,
    name       TEXT,
    qty        INTEGER,
    price      NUMERIC(10,2),
    updated_at TEXT
);
CREATE INDEX items_updated_at ON items (updated_at);
CREATE TRIGGER items_stamp_insert AFTER INSERT ON items WHEN NEW.updated_at IS NULL
BEGIN
    UPDATE items SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id;
END;
CREATE TRIGGER items_stamp_update AFTER UPDATE ON items WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE items SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id;
END;
`

const storeYAML = `system: store
name: Campaign Store
connector: sqlite
path: store.db
init: store.sql
entities:
  Thing:
    table: things
    id: id
    updated: modifiedOn
`

const storeSQL = `
CREATE TABLE things (
    id         TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(8)))),
    sku        TEXT,
    title      TEXT,
    amount     INTEGER,
    cost       NUMERIC(10,2),
    modifiedOn TEXT
);
CREATE INDEX things_modifiedOn ON things (modifiedOn);
CREATE TRIGGER things_stamp_insert AFTER INSERT ON things WHEN NEW.modifiedOn IS NULL
BEGIN
    UPDATE things SET modifiedOn = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id;
END;
CREATE TRIGGER things_stamp_update AFTER UPDATE ON things WHEN NEW.modifiedOn IS OLD.modifiedOn
BEGIN
    UPDATE things SET modifiedOn = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id;
END;
`
