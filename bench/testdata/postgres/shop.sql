-- The target of scenario h: the items of shop.sql in PostgreSQL. Text ids made by the writer,
-- the stock as text, the price an amount string, and a modified_at stamp the shop sets itself.
CREATE TABLE items (
    id          text PRIMARY KEY,
    sku         text,
    title       text,
    description text,
    category    text,
    brand       text,
    barcode     text,
    stock       text,
    weight_kg   double precision,
    visible     boolean,
    price       text,
    margin      double precision,
    handle      text,
    modified_at timestamptz DEFAULT now()
);
CREATE INDEX items_modified_at ON items (modified_at, id);
