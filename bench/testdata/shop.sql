-- The target system of the benchmark ("Shop"): items and orders with text ids made by the
-- connector, other names and types (the stock is text, the price an amount string), and a
-- modified_at stamp the shop sets itself when a row is inserted.
CREATE TABLE items (
    id          TEXT PRIMARY KEY,
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
CREATE TABLE orders (
    id          TEXT PRIMARY KEY,
    number      TEXT,
    customer    TEXT,
    status      TEXT,
    total       REAL,
    modified_at TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX orders_modified_at ON orders (modified_at);
CREATE TABLE order_lines (
    id         INTEGER PRIMARY KEY,
    order_id   TEXT NOT NULL,
    item_id    TEXT,
    quantity   INTEGER,
    unit_price REAL
);
CREATE INDEX order_lines_order_id ON order_lines (order_id);
