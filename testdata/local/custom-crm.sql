-- Custom CRM: the local stand-in for the "Custom CRM" system of mappings/systems/custom-crm.yaml.
--
-- Build the database with:
--
--   sqlite3 testdata/local/custom-crm.db < testdata/local/custom-crm.sql
--
-- The script drops and recreates its tables, so it can be run again to reset the database.
--
-- Conventions, as in many home-grown CRMs:
--   * ids are INTEGER PRIMARY KEY (rowid aliases);
--   * money is NUMERIC(10,2). SQLite gives that NUMERIC affinity, so 18.00 is stored and read back
--     as the integer 18 and 8.90 as the real 8.9; the entity schemas call these columns `number`;
--   * flags are BOOLEAN, stored as 0/1 (CHECK constraints keep them that way);
--   * DATETIME columns hold ISO-8601 UTC text ('2024-09-02T08:14:00Z');
--   * products, customers and orders carry updated_at (last modified). Nothing maintains it
--     automatically: the application that edits a row sets it (there are no triggers).
--
-- Seed data: 13 products (two discontinued, one hidden, some without description, weight or
-- category, one with unlimited stock), 6 customers (several non-ASCII names, apostrophes, one
-- address without postal code), 8 orders with 1-4 lines each. Order 1003 (canceled) contains the
-- discontinued product NR-CHM-6CP, which the product-to-sesamproducts flow does not sync, so that
-- order waits for its reference. E-mail domains are the reserved example.com/.net/.org.

PRAGMA foreign_keys = ON;

BEGIN TRANSACTION;

DROP TABLE IF EXISTS order_lines;
DROP TABLE IF EXISTS orders;
DROP TABLE IF EXISTS customers;
DROP TABLE IF EXISTS products;

CREATE TABLE products (
    id              INTEGER PRIMARY KEY,
    sku             NVARCHAR(40)   NOT NULL UNIQUE,
    name            NVARCHAR(120)  NOT NULL,
    description     TEXT,
    unit_price      NUMERIC(10,2)  NOT NULL CHECK (unit_price >= 0),
    units_in_stock  INTEGER        NOT NULL DEFAULT 0 CHECK (units_in_stock >= 0),
    unlimited_stock BOOLEAN        NOT NULL DEFAULT 0 CHECK (unlimited_stock IN (0, 1)),
    discontinued    BOOLEAN        NOT NULL DEFAULT 0 CHECK (discontinued IN (0, 1)),
    visible         BOOLEAN        NOT NULL DEFAULT 1 CHECK (visible IN (0, 1)),
    weight_kg       REAL           CHECK (weight_kg IS NULL OR weight_kg >= 0),
    category        NVARCHAR(40),
    webshop_variant_id      NVARCHAR(64),  -- the web shop's id of the product's variant, for support staff
    webshop_availability    NVARCHAR(20),  -- 'in stock', 'sold out' or 'unlimited', as the web shop shows it
    updated_at      DATETIME       NOT NULL
);

CREATE INDEX products_updated_at ON products (updated_at);

CREATE TABLE customers (
    id                INTEGER PRIMARY KEY,
    first_name        NVARCHAR(40)   NOT NULL,
    last_name         NVARCHAR(40)   NOT NULL,
    email             NVARCHAR(254)  NOT NULL UNIQUE,
    phone             NVARCHAR(24),
    company           NVARCHAR(80),
    address1          NVARCHAR(120)  NOT NULL,
    address2          NVARCHAR(120),
    city              NVARCHAR(60)   NOT NULL,
    state             NVARCHAR(40),
    postal_code       NVARCHAR(20),
    country_code      CHAR(2)        NOT NULL,
    accepts_marketing BOOLEAN        NOT NULL DEFAULT 0 CHECK (accepts_marketing IN (0, 1)),
    created_at        DATETIME       NOT NULL,
    updated_at        DATETIME       NOT NULL
);

CREATE INDEX customers_updated_at ON customers (updated_at);

CREATE TABLE orders (
    id                   INTEGER PRIMARY KEY,
    order_number         INTEGER        NOT NULL UNIQUE,
    customer_id          INTEGER        NOT NULL REFERENCES customers (id),
    customer_email       NVARCHAR(254)  NOT NULL,
    billing_first_name   NVARCHAR(40)   NOT NULL,
    billing_last_name    NVARCHAR(40)   NOT NULL,
    billing_address1     NVARCHAR(120)  NOT NULL,
    billing_address2     NVARCHAR(120),
    billing_city         NVARCHAR(60)   NOT NULL,
    billing_state        NVARCHAR(40),
    billing_postal_code  NVARCHAR(20),
    billing_country_code CHAR(2)        NOT NULL,
    billing_phone        NVARCHAR(24),
    order_date           DATETIME       NOT NULL,
    status               NVARCHAR(12)   NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'fulfilled', 'canceled')),
    currency             CHAR(3)        NOT NULL DEFAULT 'EUR',
    subtotal             NUMERIC(10,2)  NOT NULL,
    shipping_total       NUMERIC(10,2)  NOT NULL DEFAULT 0,
    tax_total            NUMERIC(10,2)  NOT NULL DEFAULT 0,
    grand_total          NUMERIC(10,2)  NOT NULL,
    updated_at           DATETIME       NOT NULL
);

CREATE INDEX orders_customer_id ON orders (customer_id);
CREATE INDEX orders_updated_at ON orders (updated_at);

CREATE TABLE order_lines (
    id          INTEGER PRIMARY KEY,
    order_id    INTEGER        NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id  INTEGER        NOT NULL REFERENCES products (id),
    quantity    INTEGER        NOT NULL CHECK (quantity > 0),
    unit_price  NUMERIC(10,2)  NOT NULL CHECK (unit_price >= 0)
);

CREATE INDEX order_lines_order_id ON order_lines (order_id);
CREATE INDEX order_lines_product_id ON order_lines (product_id);

INSERT INTO products (id, sku, name, description, unit_price, units_in_stock, unlimited_stock, discontinued, visible, weight_kg, category, updated_at) VALUES
    (1,  'NR-ESP-250', 'Espresso Blend "Nattravn" 250 g', 'Dark-roasted blend of Brazilian and Indian beans with notes of cocoa and hazelnut.', 8.90, 120, 0, 0, 1, 0.25, 'Coffee', '2024-08-14T09:12:00Z'),
    (2,  'NR-ETH-500', 'Ethiopia Yirgacheffe Filter Roast 500 g', 'Washed heirloom coffee from Gedeo, light roast: jasmine, bergamot, lemon.', 16.50, 64, 0, 0, 1, 0.50, 'Coffee', '2024-08-14T09:15:00Z'),
    (3,  'NR-DEC-250', 'Decaf Colombia 250 g', NULL, 9.40, 0, 0, 0, 1, 0.25, 'Coffee', '2024-09-30T16:02:00Z'),
    (4,  'NR-TEA-EGR', 'Earl Grey Loose Leaf 100 g', 'Ceylon black tea scented with cold-pressed bergamot oil.', 6.75, 80, 0, 0, 1, 0.10, 'Tea', '2024-07-01T10:00:00Z'),
    (5,  'NR-TEA-SEN', 'Sencha Uji 100 g', 'Steamed Japanese green tea from Kyoto prefecture — grassy and sweet.', 11.20, 35, 0, 0, 0, 0.10, 'Tea', '2024-10-02T13:45:00Z'),
    (6,  'NR-GRD-CER', 'Hand Grinder with Ceramic Burrs', 'Stepless adjustable hand grinder; stainless steel body, 30 g hopper.', 49.00, 14, 0, 0, 1, 0.65, 'Equipment', '2024-09-06T08:00:00Z'),
    (7,  'NR-KTL-GN1', 'Gooseneck Kettle 1 L', 'Stovetop kettle with a precision spout for pour-over brewing.', 59.90, 9, 0, 0, 1, 1.10, 'Equipment', '2024-10-01T12:05:00Z'),
    (8,  'NR-DRP-CER', 'Ceramic Dripper, Size 02', NULL, 24.00, 22, 0, 0, 1, 0.40, 'Equipment', '2024-08-20T07:30:00Z'),
    (9,  'NR-FLT-100', 'Paper Filters, Size 02 (100 pcs)', 'Oxygen-bleached paper filters for size 02 drippers.', 5.50, 0, 1, 0, 1, 0.15, 'Accessories', '2024-06-18T14:20:00Z'),
    (10, 'NR-MUG-FJD', 'Stoneware Mug "Fjord" 300 ml', 'Håndlaget i Bergen: hand-thrown stoneware with a blue-grey glaze. Dishwasher safe.', 18.00, 40, 0, 0, 1, 0.35, 'Accessories', '2024-10-04T07:10:00Z'),
    (11, 'NR-CHM-6CP', 'Glass Pour-over Brewer, 6 Cups', 'Replaced by the ceramic dripper (NR-DRP-CER).', 45.00, 0, 0, 1, 0, 0.70, 'Equipment', '2024-09-12T10:00:00Z'),
    (12, 'NR-ESP-1KG', 'Espresso Blend "Nattravn" 1 kg (old packaging)', NULL, 29.00, 3, 0, 1, 1, 1.00, 'Coffee', '2024-09-01T08:00:00Z'),
    (13, 'NR-SYR-VAN', 'Vanilla Syrup 250 ml', NULL, 7.50, 18, 0, 0, 1, NULL, NULL, '2024-09-18T11:11:00Z');

INSERT INTO customers (id, first_name, last_name, email, phone, company, address1, address2, city, state, postal_code, country_code, accepts_marketing, created_at, updated_at) VALUES
    (1, 'Ingrid', 'Solberg', 'ingrid.solberg@example.com', '+47 912 34 567', 'Kaffebaren Grünerløkka AS', 'Thorvald Meyers gate 12', NULL, 'Oslo', NULL, '0555', 'NO', 1, '2023-11-02T10:21:00Z', '2024-10-08T09:30:00Z'),
    (2, 'Jürgen', 'Müller', 'juergen.mueller@example.net', '+49 89 1234567', NULL, 'Sendlinger Straße 7', 'Hinterhaus, 3. OG', 'München', 'Bayern', '80331', 'DE', 0, '2024-02-14T18:05:00Z', '2024-09-05T17:40:00Z'),
    (3, 'Zoë', 'Ångström', 'zoe.angstrom@example.org', NULL, NULL, 'Kungsgatan 12', NULL, 'Göteborg', NULL, '411 19', 'SE', 1, '2024-05-30T07:45:00Z', '2024-09-11T10:02:00Z'),
    (4, 'José', 'Núñez', 'jose.nunez@example.com', '+34 954 123 456', NULL, 'Calle Sierpes 48', '2º B', 'Sevilla', 'Andalucía', '41004', 'ES', 0, '2024-06-11T20:30:00Z', '2024-09-20T19:25:00Z'),
    (5, 'Siobhán', 'O''Brien', 'siobhan.obrien@example.com', '+353 1 555 0142', 'O''Brien & Daughters Ltd', '14 Fitzwilliam Square', NULL, 'Dublin', 'Co. Dublin', 'D02 X285', 'IE', 1, '2024-09-29T12:40:00Z', '2024-10-01T12:00:00Z'),
    (6, '芳', '王', 'fang.wang@example.net', '+852 5555 0188', NULL, 'Flat 12B, 88 Queen''s Road Central', 'Central', 'Hong Kong', NULL, NULL, 'HK', 0, '2024-10-03T03:30:00Z', '2024-10-03T03:45:00Z');

INSERT INTO orders (id, order_number, customer_id, customer_email, billing_first_name, billing_last_name, billing_address1, billing_address2, billing_city, billing_state, billing_postal_code, billing_country_code, billing_phone, order_date, status, currency, subtotal, shipping_total, tax_total, grand_total, updated_at) VALUES
    (1, 1001, 1, 'ingrid.solberg@example.com', 'Ingrid', 'Solberg', 'Thorvald Meyers gate 12', NULL, 'Oslo', NULL, '0555', 'NO', '+47 912 34 567', '2024-09-02T08:14:00Z', 'fulfilled', 'EUR', 35.80, 4.90, 8.14, 48.84, '2024-09-03T11:20:00Z'),
    (2, 1002, 2, 'juergen.mueller@example.net', 'Jürgen', 'Müller', 'Sendlinger Straße 7', 'Hinterhaus, 3. OG', 'München', 'Bayern', '80331', 'DE', '+49 89 1234567', '2024-09-05T17:40:00Z', 'fulfilled', 'EUR', 76.50, 0.00, 15.30, 91.80, '2024-09-06T09:05:00Z'),
    (3, 1003, 3, 'zoe.angstrom@example.org', 'Zoë', 'Ångström', 'Kungsgatan 12', NULL, 'Göteborg', NULL, '411 19', 'SE', NULL, '2024-09-11T10:02:00Z', 'canceled', 'EUR', 50.50, 0.00, 10.10, 60.60, '2024-09-11T15:47:00Z'),
    (4, 1004, 4, 'jose.nunez@example.com', 'José', 'Núñez', 'Calle Sierpes 48', '2º B', 'Sevilla', 'Andalucía', '41004', 'ES', '+34 954 123 456', '2024-09-20T19:25:00Z', 'fulfilled', 'EUR', 38.95, 4.90, 8.77, 52.62, '2024-09-23T08:30:00Z'),
    (5, 1005, 5, 'siobhan.obrien@example.com', 'Siobhán', 'O''Brien', '14 Fitzwilliam Square', NULL, 'Dublin', 'Co. Dublin', 'D02 X285', 'IE', '+353 1 555 0142', '2024-10-01T12:00:00Z', 'pending', 'EUR', 119.10, 0.00, 23.82, 142.92, '2024-10-01T12:00:00Z'),
    (6, 1006, 6, 'fang.wang@example.net', '芳', '王', 'Flat 12B, 88 Queen''s Road Central', 'Central', 'Hong Kong', NULL, NULL, 'HK', '+852 5555 0188', '2024-10-03T03:45:00Z', 'pending', 'EUR', 72.00, 14.90, 0.00, 86.90, '2024-10-04T07:12:00Z'),
    (7, 1007, 1, 'ingrid.solberg@example.com', 'Ingrid', 'Solberg', 'Thorvald Meyers gate 12', NULL, 'Oslo', NULL, '0555', 'NO', '+47 912 34 567', '2024-10-08T09:30:00Z', 'pending', 'EUR', 18.30, 4.90, 4.64, 27.84, '2024-10-08T09:30:00Z'),
    (8, 1008, 2, 'juergen.mueller@example.net', 'Jürgen', 'Müller', 'Sendlinger Straße 7', 'Hinterhaus, 3. OG', 'München', 'Bayern', '80331', 'DE', NULL, '2024-10-09T14:05:00Z', 'pending', 'EUR', 28.50, 4.90, 6.68, 40.08, '2024-10-09T16:40:00Z');

INSERT INTO order_lines (id, order_id, product_id, quantity, unit_price) VALUES
    (1,  1, 1,  2, 8.90),
    (2,  1, 10, 1, 18.00),
    (3,  2, 6,  1, 49.00),
    (4,  2, 2,  1, 16.50),
    (5,  2, 9,  2, 5.50),
    (6,  3, 11, 1, 45.00),
    (7,  3, 9,  1, 5.50),
    (8,  4, 4,  3, 6.75),
    (9,  4, 5,  1, 11.20),
    (10, 4, 13, 1, 7.50),
    (11, 5, 7,  1, 59.90),
    (12, 5, 8,  1, 24.00),
    (13, 5, 9,  1, 5.50),
    (14, 5, 2,  2, 14.85),
    (15, 6, 10, 4, 18.00),
    (16, 7, 1,  1, 8.90),
    (17, 7, 3,  1, 9.40),
    (18, 8, 4,  2, 6.75),
    (19, 8, 13, 2, 7.50);

COMMIT;
