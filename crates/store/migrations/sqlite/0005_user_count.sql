-- The staff total, kept like the client total (0004): users are never deleted (they are
-- disabled), so inserts are the only change, and the users list shows its total without a count.
INSERT INTO row_counts (name, n) SELECT 'users', COUNT(*) FROM users;
