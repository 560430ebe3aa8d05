-- source.sql, and triggers that stamp every insert and update that does not set updated_at
-- itself (the engine's writes) with the time in the clock table.
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
CREATE TRIGGER items_stamp_insert AFTER INSERT ON items WHEN NEW.updated_at IS NULL
BEGIN
    UPDATE items SET updated_at = (SELECT now FROM clock) WHERE id = NEW.id;
END;
CREATE TRIGGER items_stamp_update AFTER UPDATE ON items WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE items SET updated_at = (SELECT now FROM clock) WHERE id = NEW.id;
END;
-- A change of an item's parts stamps the item, as a write of the item does.
CREATE TRIGGER parts_stamp_insert AFTER INSERT ON parts
BEGIN
    UPDATE items SET updated_at = (SELECT now FROM clock) WHERE id = NEW.item_id;
END;
CREATE TRIGGER parts_stamp_update AFTER UPDATE ON parts
BEGIN
    UPDATE items SET updated_at = (SELECT now FROM clock) WHERE id = NEW.item_id;
END;
CREATE TRIGGER parts_stamp_delete AFTER DELETE ON parts
BEGIN
    UPDATE items SET updated_at = (SELECT now FROM clock) WHERE id = OLD.item_id;
END;
