-- Totals kept in the same transaction as the inserts they count, so the unfiltered client list
-- shows its total without counting a million rows on every request. Clients are never deleted
-- (Clients Delete blocks them), so inserts are the only change to the count.
CREATE TABLE row_counts (
    name TEXT PRIMARY KEY,
    n BIGINT NOT NULL
);
INSERT INTO row_counts (name, n) SELECT 'clients', COUNT(*) FROM clients;
