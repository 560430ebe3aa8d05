-- The CRM of the PocketBase tests: contacts in SQLite, created by the connector's init.
CREATE TABLE contacts (
    id      INTEGER PRIMARY KEY,
    email   TEXT UNIQUE,
    name    TEXT,
    company TEXT
);
