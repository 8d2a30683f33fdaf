-- The client directory: investors and strategy providers. name_key ("first last", lower-cased)
-- and last_key (last name, lower-cased) are written by the application, so prefix search and
-- sort by name are plain range scans on an index, the same on both databases.
CREATE TABLE clients (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    last_key TEXT NOT NULL,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL,
    phone TEXT NOT NULL,
    country TEXT NOT NULL,
    city TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL CHECK (role IN ('investor', 'strategy_provider', 'both')),
    status TEXT NOT NULL CHECK (status IN ('active', 'blocked')),
    language TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT clients_email_key_unique UNIQUE (email_key)
);
-- Search (prefix ranges) and sort; each ends in id so the order is total.
CREATE INDEX clients_name ON clients (name_key, id);
CREATE INDEX clients_last ON clients (last_key, id);
CREATE INDEX clients_phone ON clients (phone, id);
CREATE INDEX clients_registered ON clients (registered_at, id);
-- Filters, in keyset (id) order.
CREATE INDEX clients_country ON clients (country, id);
CREATE INDEX clients_role ON clients (role, id);
CREATE INDEX clients_status ON clients (status, id);
