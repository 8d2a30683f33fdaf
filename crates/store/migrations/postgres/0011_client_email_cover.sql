-- A scoped email-prefix search reads a few hundred email-index entries to find a page of clients
-- in scope, each probed by id: with the id in the index that is an index-only scan, not a heap
-- fetch per entry (SQLite's unique index already holds the rowid).
CREATE INDEX clients_email_cover ON clients (email_key) INCLUDE (id);
