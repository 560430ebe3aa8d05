-- The source system of the benchmark ("ERP"): products and orders with lines. The generator
-- (bench/generate.go) fills it with a fixed seed.
CREATE TABLE products (
    id          INTEGER PRIMARY KEY,
    sku         TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT,
    category    TEXT NOT NULL,
    brand       TEXT NOT NULL,
    ean         TEXT,
    qty         INTEGER NOT NULL,
    price       NUMERIC(10,2) NOT NULL,
    cost        NUMERIC(10,2) NOT NULL,
    weight_kg   REAL,
    active      BOOLEAN NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX products_updated_at ON products (updated_at);
CREATE TABLE orders (
    id         INTEGER PRIMARY KEY,
    number     TEXT NOT NULL UNIQUE,
    customer   TEXT NOT NULL,
    status     TEXT NOT NULL,
    total      NUMERIC(10,2) NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX orders_updated_at ON orders (updated_at);
CREATE TABLE order_lines (
    id         INTEGER PRIMARY KEY,
    order_id   INTEGER NOT NULL,
    product_id INTEGER NOT NULL,
    quantity   INTEGER NOT NULL,
    unit_price NUMERIC(10,2) NOT NULL
);
CREATE INDEX order_lines_order_id ON order_lines (order_id);
