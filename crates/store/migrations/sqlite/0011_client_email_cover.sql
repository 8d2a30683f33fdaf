-- Nothing to do on SQLite: the unique index on clients.email_key already holds the rowid, so a
-- scoped email-prefix search probes client tags straight from it (PostgreSQL gets a covering
-- index in its 0011).
SELECT 1;
