-- Shop: the target system of the end-to-end sync tests (engine/sync/e2e_test.go), empty.
-- Run by the connector's `init` when the test's SHOP_DB file does not exist yet.
--
-- Product ids are text (the connector makes random ones for new rows); order items are a JSON
-- list in one column, not child rows. Constraints that the CRM lacks make some records fail
-- here: a title is required, a quantity cannot be negative. Two columns are reformatted by
-- triggers on every write, as some systems do: `label` is upper-cased, `amount` gets two
-- decimals ("10" is stored as "10.00"). Nothing maintains `modified`: the tests set it.

PRAGMA foreign_keys = ON;

CREATE TABLE products (
    id       TEXT PRIMARY KEY NOT NULL,
    sku      TEXT,
    title    TEXT NOT NULL,
    summary  TEXT,
    price    REAL,
    quantity INTEGER CHECK (quantity IS NULL OR quantity >= 0),
    code     INTEGER,
    label    TEXT,
    amount   TEXT,
    modified TEXT
);

CREATE TRIGGER products_label_insert AFTER INSERT ON products WHEN NEW.label IS NOT NULL BEGIN
    UPDATE products SET label = upper(NEW.label) WHERE id = NEW.id;
END;
CREATE TRIGGER products_label_update AFTER UPDATE OF label ON products WHEN NEW.label IS NOT NULL BEGIN
    UPDATE products SET label = upper(NEW.label) WHERE id = NEW.id;
END;
CREATE TRIGGER products_amount_insert AFTER INSERT ON products WHEN NEW.amount IS NOT NULL BEGIN
    UPDATE products SET amount = printf('%.2f', NEW.amount) WHERE id = NEW.id;
END;
CREATE TRIGGER products_amount_update AFTER UPDATE OF amount ON products WHEN NEW.amount IS NOT NULL BEGIN
    UPDATE products SET amount = printf('%.2f', NEW.amount) WHERE id = NEW.id;
END;

CREATE TABLE customers (
    id        INTEGER PRIMARY KEY,
    email     TEXT,
    full_name TEXT,
    phone     TEXT,
    city      TEXT
);

CREATE TABLE orders (
    id       INTEGER PRIMARY KEY,
    number   TEXT,
    customer INTEGER,
    state    TEXT,
    items    TEXT CHECK (items IS NULL OR json_valid(items))
);
