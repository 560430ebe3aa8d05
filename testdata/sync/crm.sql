-- CRM: the source system of the end-to-end sync tests (engine/sync/e2e_test.go).
-- Run by the connector's `init` when the test's CRM_DB file does not exist yet.
--
-- Ten products with distinct updated_at values (so the incremental read of a second run
-- returns only the newest), three customers, two orders with lines. Money is NUMERIC(10,2)
-- (SQLite stores 10.00 as the integer 10 and 2.50 as the real 2.5); flags are BOOLEAN 0/1;
-- nothing maintains updated_at: the tests set it when they edit a row, as an application would.

PRAGMA foreign_keys = ON;

CREATE TABLE products (
    id          INTEGER PRIMARY KEY,
    sku         TEXT UNIQUE,
    name        TEXT,
    description TEXT,
    price       NUMERIC(10,2),
    stock       INTEGER,
    code        TEXT,                                   -- a numeric code kept as text
    active      BOOLEAN NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    updated_at  TEXT NOT NULL DEFAULT '2024-01-01T00:00:00Z'
);

CREATE TABLE customers (
    id    INTEGER PRIMARY KEY,
    email TEXT,
    name  TEXT,
    phone TEXT,
    city  TEXT
);

CREATE TABLE orders (
    id          INTEGER PRIMARY KEY,
    number      TEXT NOT NULL,
    customer_id INTEGER REFERENCES customers (id),
    status      TEXT,
    updated_at  TEXT NOT NULL DEFAULT '2024-01-01T00:00:00Z'
);

CREATE TABLE order_lines (
    id         INTEGER PRIMARY KEY,
    order_id   INTEGER NOT NULL REFERENCES orders (id),
    product_id INTEGER NOT NULL,
    quantity   INTEGER NOT NULL,
    unit_price NUMERIC(10,2)
);

INSERT INTO products (id, sku, name, description, price, stock, code, updated_at) VALUES
    (1,  'P-01', 'Espresso beans',   'Dark roast, 1 kg',  18.00,  40, '101', '2024-01-01T00:00:01Z'),
    (2,  'P-02', 'Filter coffee',    'Light roast, 1 kg', 16.50,  25, '102', '2024-01-01T00:00:02Z'),
    (3,  'P-03', 'Grüner Tee',       NULL,                 0.99, 100, '103', '2024-01-01T00:00:03Z'),
    (4,  'P-04', 'Milk jug',         '350 ml, steel',      9.90,   7, '104', '2024-01-01T00:00:04Z'),
    (5,  'P-05', 'Tamper',           NULL,                24.00,   3, '105', '2024-01-01T00:00:05Z'),
    (6,  'P-06', 'Grinder',          'Conical burrs',    129.00,   2, '106', '2024-01-01T00:00:06Z'),
    (7,  'P-07', 'Descaler',         NULL,                 7.25,  12, '107', '2024-01-01T00:00:07Z'),
    (8,  'P-08', 'Cups (6)',         'Porcelain',         21.00,   9, '108', '2024-01-01T00:00:08Z'),
    (9,  'P-09', 'Kettle',           'Gooseneck',         45.00,   4, '109', '2024-01-01T00:00:09Z'),
    (10, 'P-10', 'Scale',            NULL,                35.00,   6, '110', '2024-01-01T00:00:10Z');

INSERT INTO customers (id, email, name, phone, city) VALUES
    (1, 'ann@example.com',   'Ann Ødegård',  '+47 555 0101', 'Oslo'),
    (2, 'bob@example.com',   'Bob O''Brien', NULL,           'Dublin'),
    (3, 'chloe@example.com', 'Chloé Martin', '+33 555 0103', NULL);

INSERT INTO orders (id, number, customer_id, status, updated_at) VALUES
    (1, 'SO-1001', 1, 'open',    '2024-01-02T00:00:00Z'),
    (2, 'SO-1002', 2, 'shipped', '2024-01-02T00:00:01Z');

INSERT INTO order_lines (id, order_id, product_id, quantity, unit_price) VALUES
    (1, 1, 1, 2, 18.00),
    (2, 1, 3, 1, 0.99),
    (3, 2, 4, 1, 9.90);
