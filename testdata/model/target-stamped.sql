-- target.sql, and triggers that stamp every insert and update that does not set modifiedOn
-- itself (the engine's writes) with the time in the clock table, as Squarespace does.
CREATE TABLE things (
    id         TEXT PRIMARY KEY,
    sku        TEXT,
    title      TEXT,
    amount     TEXT,
    cost       REAL,
    enabled    BOOLEAN,
    modifiedOn TEXT,
    parts      TEXT NOT NULL DEFAULT '[]', -- JSON list of {id, qty}: the id is the part's label
    item_id    INTEGER -- the shop's id of the thing's item, in the flow-back variant of the model test
);
CREATE INDEX things_modifiedOn ON things (modifiedOn);
CREATE INDEX things_sku ON things (sku); -- the merge key: linking looks records up by it
CREATE TABLE clock (now TEXT NOT NULL);
INSERT INTO clock VALUES ('2025-01-01T00:00:00.000000Z');
CREATE TRIGGER things_stamp_insert AFTER INSERT ON things WHEN NEW.modifiedOn IS NULL
BEGIN
    UPDATE things SET modifiedOn = (SELECT now FROM clock) WHERE id = NEW.id;
END;
CREATE TRIGGER things_stamp_update AFTER UPDATE ON things WHEN NEW.modifiedOn IS OLD.modifiedOn
BEGIN
    UPDATE things SET modifiedOn = (SELECT now FROM clock) WHERE id = NEW.id;
END;
