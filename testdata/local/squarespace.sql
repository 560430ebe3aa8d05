-- Squarespace stand-in: a local SQLite database shaped like the Commerce API's records, for the
-- quick start and for tests without network (mappings/systems/squarespace.yaml, `init`).
-- Objects and lists are JSON text, as the API sends them. Triggers do what Squarespace does
-- by itself: stamp createdOn/modifiedOn, give new product variants ids, and create an
-- inventory item for each variant of a new product.

PRAGMA foreign_keys = ON;

BEGIN TRANSACTION;

CREATE TABLE products (
    id                TEXT PRIMARY KEY,
    type              TEXT NOT NULL DEFAULT 'PHYSICAL',
    storePageId       TEXT NOT NULL DEFAULT '5f1a2b3c4d5e6f7a8b9c0d1e',
    name              TEXT NOT NULL,
    description       TEXT,
    url               TEXT,
    urlSlug           TEXT,
    tags              TEXT NOT NULL DEFAULT '[]',
    isVisible         BOOLEAN NOT NULL DEFAULT 0,
    seoOptions        TEXT,
    variantAttributes TEXT NOT NULL DEFAULT '[]',
    variants          TEXT NOT NULL DEFAULT '[]',
    images            TEXT NOT NULL DEFAULT '[]',
    createdOn         TEXT,
    modifiedOn        TEXT
);

CREATE TABLE inventory (
    variantId   TEXT PRIMARY KEY,
    sku         TEXT NOT NULL,
    descriptor  TEXT NOT NULL,
    isUnlimited BOOLEAN NOT NULL DEFAULT 0,
    quantity    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE orders (
    id                     TEXT PRIMARY KEY,
    orderNumber            TEXT,
    createdOn              TEXT,
    modifiedOn             TEXT,
    channel                TEXT NOT NULL DEFAULT 'web',
    testmode               BOOLEAN NOT NULL DEFAULT 0,
    customerEmail          TEXT,
    billingAddress         TEXT,
    shippingAddress        TEXT,
    fulfillmentStatus      TEXT NOT NULL DEFAULT 'PENDING' CHECK (fulfillmentStatus IN ('PENDING', 'FULFILLED', 'CANCELED')),
    lineItems              TEXT NOT NULL DEFAULT '[]',
    internalNotes          TEXT NOT NULL DEFAULT '[]',
    shippingLines          TEXT NOT NULL DEFAULT '[]',
    discountLines          TEXT NOT NULL DEFAULT '[]',
    formSubmission         TEXT,
    fulfillments           TEXT NOT NULL DEFAULT '[]',
    subtotal               TEXT,
    shippingTotal          TEXT,
    discountTotal          TEXT,
    taxTotal               TEXT,
    refundedTotal          TEXT,
    grandTotal             TEXT,
    channelName            TEXT,
    externalOrderReference TEXT,
    fulfilledOn            TEXT,
    priceTaxInterpretation TEXT NOT NULL DEFAULT 'EXCLUSIVE'
);

CREATE INDEX products_modified ON products (modifiedOn);
CREATE INDEX orders_modified ON orders (modifiedOn);
CREATE INDEX inventory_sku ON inventory (sku);

-- Timestamps, like the API's: ISO 8601 UTC with milliseconds.
CREATE TRIGGER products_created AFTER INSERT ON products BEGIN
    UPDATE products SET
        createdOn = COALESCE(NEW.createdOn, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        modifiedOn = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
        variants = (SELECT json_group_array(
                        CASE WHEN json_extract(value, '$.id') IS NULL
                             THEN json_set(value, '$.id', lower(hex(randomblob(12))))
                             ELSE json(value) END)
                    FROM json_each(NEW.variants))
    WHERE id = NEW.id;
    -- Squarespace keeps an inventory item for every variant.
    INSERT INTO inventory (variantId, sku, descriptor, isUnlimited, quantity)
        SELECT json_extract(value, '$.id'), COALESCE(json_extract(value, '$.sku'), ''), NEW.name,
               COALESCE(json_extract(value, '$.stock.unlimited'), 0), COALESCE(json_extract(value, '$.stock.quantity'), 0)
        FROM json_each((SELECT variants FROM products WHERE id = NEW.id));
END;

CREATE TRIGGER products_modified AFTER UPDATE ON products BEGIN
    UPDATE products SET modifiedOn = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id;
END;

-- Squarespace numbers every order itself, imported ones too (an import's own number is its
-- externalOrderReference), and fills in each line's product, SKU and product name from the
-- variant the line names.
CREATE TRIGGER orders_created AFTER INSERT ON orders BEGIN
    UPDATE orders SET
        createdOn = COALESCE(NEW.createdOn, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        modifiedOn = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
        orderNumber = COALESCE(NEW.orderNumber,
            (SELECT CAST(COALESCE(MAX(CAST(orderNumber AS INTEGER)), 0) + 1 AS TEXT) FROM orders)),
        lineItems = (SELECT json_group_array(
                        CASE WHEN v.value IS NULL THEN json(li.value)
                             ELSE json_set(li.value, '$.productId', p.id, '$.sku', json_extract(v.value, '$.sku'),
                                           '$.productName', p.name) END)
                     FROM json_each(NEW.lineItems) li
                     LEFT JOIN (products p JOIN json_each(p.variants) v)
                            ON json_extract(v.value, '$.id') = json_extract(li.value, '$.variantId'))
    WHERE id = NEW.id;
END;

CREATE TRIGGER orders_modified AFTER UPDATE ON orders BEGIN
    UPDATE orders SET modifiedOn = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id;
END;

COMMIT;
